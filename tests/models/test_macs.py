"""MAC counter against MACs computed by hand for tiny models."""

import logging

import pytest

from lean_kd._keras import keras, tf
from lean_kd.audio.features import YAMNET_PRESET, LogMelSpectrogram
from lean_kd.models.macs import count_macs, layer_macs

L = keras.layers


def macs_of(input_shape, *layers):
    x = inputs = keras.Input(shape=input_shape)
    for layer in layers:
        x = layer(x)
    return layer_macs(keras.Model(inputs, x))


@pytest.mark.parametrize(
    ("input_shape", "layer", "expected"),
    [
        # 8x6 output positions x 4 filters, each 3x3x3 taps
        ((8, 6, 3), L.Conv2D(4, 3, padding="same", name="x"), 8 * 6 * 4 * 27),
        # stride 2, valid: output 3x2
        ((8, 6, 3), L.Conv2D(4, 3, strides=2, name="x"), 3 * 2 * 4 * 27),
        # groups: each filter sees 2 of the 4 input channels
        ((8, 6, 4), L.Conv2D(6, 1, groups=2, name="x"), 8 * 6 * 6 * 2),
        ((10, 3), L.Conv1D(5, 4, name="x"), 7 * 5 * 4 * 3),
        # depthwise, multiplier 2: 8 output channels, one 3x3 filter each
        (
            (8, 6, 4),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="x"),
            8 * 6 * 8 * 9,
        ),
        # separable: depthwise 8*6*4*9 + pointwise 8*6*4*5
        (
            (8, 6, 4),
            L.SeparableConv2D(5, 3, padding="same", name="x"),
            8 * 6 * 4 * 9 + 8 * 6 * 4 * 5,
        ),
        # transposed: every input value is spread over 2x2 taps of 3 filters
        ((4, 5, 2), L.Conv2DTranspose(3, 2, strides=2, name="x"), 4 * 5 * 2 * 4 * 3),
        ((5, 7), L.Dense(16, name="x"), 5 * 7 * 16),
        ((7, 3), L.LSTM(5, return_sequences=True, name="x"), 7 * 4 * 5 * (3 + 5)),
        ((7, 3), L.GRU(5, name="x"), 7 * 3 * 5 * (3 + 5)),
        ((7, 3), L.Bidirectional(L.LSTM(5), name="x"), 2 * 7 * 4 * 5 * (3 + 5)),
        ((8, 6, 4), L.BatchNormalization(name="x"), 0),
    ],
)
def test_single_layer(input_shape, layer, expected):
    assert macs_of(input_shape, layer)["x"] == expected


def test_multi_head_attention():
    query, value = keras.Input(shape=(4, 8)), keras.Input(shape=(6, 10))
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5, name="mha")
    model = keras.Model([query, value], mha(query, value))
    projections = 2 * (4 * 8 * 3 + 6 * 10 * 3 + 6 * 10 * 5)  # q, k, v per head
    attention = 2 * 4 * 6 * (3 + 5)  # q.k scores and the weighted sum of values
    output = 4 * 8 * 2 * 5  # heads * value_dim -> 8 features per query
    assert layer_macs(model)["mha"] == projections + attention + output


def test_log_mel_counts_the_mel_projection():
    frames = YAMNET_PRESET.num_frames(16000)
    assert frames == 98
    assert macs_of((16000,), LogMelSpectrogram(YAMNET_PRESET, name="x"))["x"] == 98 * 257 * 64


def test_whole_model_sums_layers_and_descends_into_nested_models():
    inner_in = keras.Input(shape=(5,))
    inner = keras.Model(
        inner_in, L.Dense(3, name="d")(L.Dense(4, name="c")(inner_in)), name="inner"
    )
    x = keras.Input(shape=(6,))
    model = keras.Model(x, inner(L.Dense(5, name="a")(x)))
    assert layer_macs(model) == {"a": 30, "inner/c": 20, "inner/d": 12}
    assert count_macs(model) == 62


def test_time_folded_into_batch_is_counted_per_fold():
    # [B, 4, 6] -> [B * 4, 6] (as YAMNet folds patches into the batch): 4 rows per example
    x = keras.Input(shape=(4, 6))
    folded = L.Lambda(lambda t: tf.reshape(t, [-1, 6]), name="fold")(x)
    model = keras.Model(x, L.Dense(2, name="d")(folded))
    assert layer_macs(model)["d"] == 4 * 6 * 2


def test_layer_without_counter_warns(caplog):
    class Scale(L.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],))

        def call(self, x):
            return x * self.w

    with caplog.at_level(logging.WARNING, logger="lean_kd.models.macs"):
        assert macs_of((3,), Scale(name="scale"))["scale"] == 0
    assert "No MAC counter for layer scale (Scale)" in caplog.text
