"""Channel-range equalization before int8: same float function, even ranges, closer int8."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import export_helpers as h
from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.errors import ConfigError
from lean_kd.export import tflite
from lean_kd.export.equalize import _rescale, equalize_channel_ranges, find_chains
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    contract_outputs,
    log_mel_image,
    waveform_input,
)
from lean_kd_runtime.tflite_graph import operator_name

pytestmark = pytest.mark.trains  # random-init models: `make test-seeds` reruns them

L = keras.layers
SKEW = 100.0  # one channel this many times the others, as in YAMNet's last blocks


def small_network() -> keras.Model:
    """The three chain forms: conv -> BN without gamma (YAMNet's), depthwise -> BN with
    gamma, and a chain read by a dense layer through pooling and a reshape."""
    keras.utils.set_random_seed(shifted_seed(0))
    x = inputs = keras.Input((12, 8, 1))
    x = L.Conv2D(6, 3, padding="same", use_bias=False, name="conv")(x)
    x = L.BatchNormalization(scale=False, name="conv/bn")(x)
    x = L.ReLU(name="conv/relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = L.BatchNormalization(name="depthwise/bn")(x)
    x = L.ReLU(name="depthwise/relu")(x)
    x = L.Conv2D(5, 1, name="pointwise")(x)
    x = L.BatchNormalization(scale=False, name="pointwise/bn")(x)
    x = L.ReLU(name="pointwise/relu")(x)
    x = L.AveragePooling2D((1, 8), name="frequency_mean")(x)
    x = L.Reshape((12, 5), name="sequence")(x)
    outputs = L.Dense(3, name="head")(x)
    model = keras.Model(inputs, outputs)
    for norm in ("conv/bn", "depthwise/bn", "pointwise/bn"):  # channel 0 spans SKEW x the rest
        layer = model.get_layer(norm)
        weights = layer.get_weights()
        weights[-1] = np.where(np.arange(weights[-1].size) == 0, 1 / SKEW**2, 1.0)
        layer.set_weights(weights)
    return model


def windows(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(shifted_seed(seed))
    return [rng.normal(size=(1, 12, 8, 1)).astype(np.float32) for _ in range(count)]


def channel_spread(model: keras.Model, relu: str, inputs: list[np.ndarray]) -> float:
    """Largest channel maximum over the median one, at a ReLU's output."""
    probe = keras.Model(model.input, model.get_layer(relu).output)
    values = probe(np.concatenate(inputs)).numpy()
    maxima = values.reshape(-1, values.shape[-1]).max(axis=0)
    return float(maxima.max() / np.median(maxima))


def test_chains_keep_the_float_function_and_even_out_channel_ranges():
    model = small_network()
    calibration, test = windows(16, seed=1), np.concatenate(windows(8, seed=2))
    chains = find_chains(model)
    assert [(c.norm.name, c.consumer.name) for c in chains] == [
        ("conv/bn", "depthwise"),
        ("depthwise/bn", "pointwise"),
        ("pointwise/bn", "head"),
    ]
    assert [c.producer.name if c.producer else None for c in chains] == ["conv", None, "pointwise"]
    relus = ["conv/relu", "depthwise/relu", "pointwise/relu"]
    before_spread = [channel_spread(model, relu, calibration) for relu in relus]
    before = model(test).numpy()

    assert equalize_channel_ranges(model, calibration) == 3

    np.testing.assert_allclose(model(test).numpy(), before, rtol=1e-4, atol=1e-4)
    after_spread = [channel_spread(model, relu, calibration) for relu in relus]
    assert min(before_spread) > SKEW / 10
    for old, new in zip(before_spread, after_spread):  # sqrt(a_i / w_i): spread ~ its root
        assert new < min(old / 2, 2 * np.sqrt(old)), (before_spread, after_spread)


def test_what_cannot_be_rescaled_exactly_is_left_alone():
    x = inputs = keras.Input((12, 8, 1))
    x = L.Conv2D(4, 3, padding="same", name="conv")(x)
    x = L.BatchNormalization(name="capped/bn")(x)
    x = L.ReLU(max_value=6.0, name="capped/relu")(x)  # relu6(c x) != c relu6(x)
    x = L.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = L.BatchNormalization(name="shared/bn")(x)
    relu = L.ReLU(name="shared/relu")(x)
    a = L.Conv2D(4, 1, name="a")(relu)  # two readers of one ReLU
    b = L.Conv2D(4, 1, name="b")(relu)
    x = L.BatchNormalization(name="concat/bn")(L.Add()([a, b]))
    x = L.ReLU(name="concat/relu")(x)
    x = L.Concatenate()([x, x])  # mixes channels of two tensors: not per-channel
    outputs = L.Dense(2)(x)
    assert find_chains(keras.Model(inputs, outputs)) == []


def trained_contract_model(channels: int = 8) -> keras.Model:
    """A small log-mel CNN with the three chain forms, trained on the tones for a few seconds."""
    keras.utils.set_random_seed(shifted_seed(0))
    spec = ModelSpec(len(h.LABELS), sample_rate=h.SAMPLE_RATE, num_samples=h.SAMPLE_RATE)
    waveform = waveform_input(spec)
    x = log_mel_image(waveform, spec, FrontendOptions())  # [B, 98, 64, 1]
    x = L.Conv2D(channels, 3, strides=2, use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization(scale=False)(x))
    x = L.DepthwiseConv2D(3, strides=2, use_bias=False)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    x = L.Conv2D(channels, 1, use_bias=False)(x)
    embeddings = L.GlobalAveragePooling2D()(L.ReLU()(L.BatchNormalization(scale=False)(x)))
    logits = L.Dense(len(h.LABELS))(embeddings)
    model = keras.Model(waveform, contract_outputs(spec, logits=logits, embeddings=embeddings))
    windows, labels = h.tone_windows(60, seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    model.fit(windows, {"logits": labels}, epochs=15, batch_size=20, verbose=0)
    return model


@pytest.mark.heavy
def test_equalized_int8_export_follows_the_float_model_more_closely():
    model = trained_contract_model()
    test, _ = h.tone_windows(24, seed=3)
    for chain in find_chains(model):  # one channel of each chain SKEW x larger, same function
        factors = np.ones(chain.relu.output.shape[-1])
        factors[0] = 1 / SKEW
        _rescale(chain, factors)
    expected = keras_scores(model, test)
    errors = {}
    for equalize in (False, True):
        flatbuffer = tflite.convert(
            model, quant="int8", calibration=h.calibration(30), equalize_channels=equalize
        )
        errors[equalize] = np.abs(tflite_scores(flatbuffer, test) - expected).max()
    assert errors[True] < errors[False] / 2, errors
    np.testing.assert_allclose(keras_scores(model, test), expected)  # the model is not changed


def conv_types(flatbuffer: bytes) -> list[tuple[str, str]]:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flatbuffer, 0))
    graph, names = model.subgraphs[0], {v: k for k, v in vars(schema.TensorType).items()}
    found = []
    for op in graph.operators:
        if operator_name(model.operatorCodes[op.opcodeIndex]) == "CONV_2D":
            data, weights = (graph.tensors[op.inputs[i]].type for i in (0, 1))
            found.append((names[data], names[weights]))
    return found


@pytest.mark.heavy
def test_dynamic_layers_keep_int8_weights_and_float_activations():
    model = trained_contract_model(channels=32)  # 32 x 32: enough weights for int8 ones
    names = [layer.name for layer in model.layers if isinstance(layer, L.Conv2D)]
    flatbuffer = tflite.convert(
        model, quant="int8", calibration=h.calibration(30), dynamic_layers=(names[-1],)
    )
    conv = conv_types(flatbuffer)  # (input type, weight type) of each CONV_2D
    assert sorted(conv) == [("FLOAT32", "INT8"), ("INT8", "INT8")]  # the named one: hybrid
    test, _ = h.tone_windows(24, seed=3)
    assert np.abs(keras_scores(model, test) - tflite_scores(flatbuffer, test)).max() < 0.05
    with pytest.raises(ConfigError, match=r"no layer or block named \['layer99'\]"):
        tflite.convert(
            model, quant="int8", calibration=h.calibration(30), dynamic_layers=("layer99",)
        )
