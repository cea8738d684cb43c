"""Wave Encoder: the 25 ms patch reshape on a known waveform, LSTM shapes, bad lengths."""

import numpy as np
import pytest

from lean_kd._keras import keras
from lean_kd.errors import ConfigError
from lean_kd.models.wave_encoder import WaveEncoderConfig, wave_encoder, wave_patches


def encoder_model(config, samples, sample_rate=16000):
    waveform = keras.Input(shape=(samples,), name="waveform")
    patches = wave_patches(waveform, config, sample_rate=sample_rate)
    return keras.Model(waveform, patches)


def test_patches_are_consecutive_25_ms_slices():
    model = encoder_model(WaveEncoderConfig(), 16000)
    waveform = np.arange(2 * 16000, dtype=np.float32).reshape(2, 16000)  # sample n has value n
    patches = model(waveform).numpy()
    assert patches.shape == (2, 40, 400)
    t, i = np.meshgrid(np.arange(40), np.arange(400), indexing="ij")
    np.testing.assert_array_equal(patches[0], t * 400 + i)  # patch t, row i = sample t*400+i
    np.testing.assert_array_equal(patches[1], 16000 + t * 400 + i)


@pytest.mark.parametrize(
    ("samples", "sample_rate", "patch_seconds", "shape"),
    [
        (32000, 16000, 0.025, (80, 400)),
        (8000, 8000, 0.025, (40, 200)),
        (16000, 16000, 0.01, (100, 160)),
    ],
)
def test_other_lengths_and_rates(samples, sample_rate, patch_seconds, shape):
    config = WaveEncoderConfig(patch_seconds=patch_seconds)
    assert config.num_patches(samples, sample_rate) == shape[0]
    model = encoder_model(config, samples, sample_rate)
    assert model.output.shape.as_list() == [None, *shape]


def test_bidirectional_lstm_output_and_weights():
    config = WaveEncoderConfig(lstm_units=16, lstm_layers=3)
    waveform = keras.Input(shape=(16000,))
    model = keras.Model(waveform, wave_encoder(waveform, config, sample_rate=16000))
    context = model(np.random.default_rng(0).normal(size=(2, 16000)).astype(np.float32)).numpy()
    assert context.shape == (2, 40, 32) == (2, 40, config.output_size)
    assert np.all(np.abs(context) < 1)  # LSTM outputs o * tanh(c)
    bilstms = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert [layer.name for layer in bilstms] == [f"wave_encoder/bilstm{i}" for i in (1, 2, 3)]
    lstm = bilstms[0].forward_layer  # default settings: TFLite fuses them into one op
    assert (lstm.activation.__name__, lstm.recurrent_activation.__name__) == ("tanh", "sigmoid")
    assert lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.return_sequences
    # per direction 4 gates x units x (inputs + units + bias)
    expected = 2 * 4 * 16 * (400 + 17) + 2 * 2 * 4 * 16 * (32 + 17)
    assert model.count_params() == expected


def test_backward_direction_reads_the_patches_in_reverse():
    config = WaveEncoderConfig(lstm_units=4, lstm_layers=1)
    waveform = keras.Input(shape=(16000,))
    model = keras.Model(waveform, wave_encoder(waveform, config, sample_rate=16000))
    x = np.random.default_rng(1).normal(size=(1, 16000)).astype(np.float32)
    out = model(x).numpy()[0]  # [40, 8]: forward units then backward units
    tail = np.zeros_like(x)
    tail[:, -400:] = x[:, -400:]  # only the last patch kept
    # the forward state at t=0 sees only patch 0; the backward state at t=39 only patch 39
    np.testing.assert_allclose(model(tail).numpy()[0, -1, 4:], out[-1, 4:], atol=1e-6)
    head = np.zeros_like(x)
    head[:, :400] = x[:, :400]
    np.testing.assert_allclose(model(head).numpy()[0, 0, :4], out[0, :4], atol=1e-6)


@pytest.mark.parametrize(
    ("samples", "sample_rate", "patch_seconds", "message"),
    [
        (16001, 16000, 0.025, "expected num_samples a multiple of 400, got 16001"),
        (300, 16000, 0.025, "expected num_samples a multiple of 400, got 300"),
        (22050, 22050, 0.025, "is 551.25 samples; expected a whole number"),
    ],
)
def test_bad_lengths(samples, sample_rate, patch_seconds, message):
    config = WaveEncoderConfig(patch_seconds=patch_seconds)
    with pytest.raises(ConfigError, match=message):
        encoder_model(config, samples, sample_rate)


def test_variable_length_input_is_rejected():
    with pytest.raises(ConfigError, match="fixed input length"):
        encoder_model(WaveEncoderConfig(), None)


@pytest.mark.parametrize(
    "options",
    [
        {"patch_seconds": 0},
        {"lstm_units": 0},
        {"lstm_layers": -1},
        {"lstm_units": 1.5},
        {"lstm_layers": True},
    ],
)
def test_bad_options(options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        WaveEncoderConfig(**options)
