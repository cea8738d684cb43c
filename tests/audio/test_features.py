"""The log-mel frontend: values, presets, Keras layer behaviour."""

import numpy as np
import pytest

from lean_kd._keras import keras, tf
from lean_kd.audio.features import (
    PANNS_PRESET,
    TRANSFORMS,
    YAMNET_PRESET,
    LogMelSpectrogram,
    frame_patches,
    log_mel,
    log_mel_fast,
    log_mel_fft,
    mel_matrix,
    preset,
)
from lean_kd.config import LogMelConfig
from lean_kd.errors import ConfigError


def tone(freq, rate=16000, seconds=1.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def mel_centres_hz(config):
    """Centre frequency of each HTK mel band, as tf.signal spaces them."""
    to_mel = lambda f: 1127.0 * np.log1p(f / 700.0)  # noqa: E731
    edges = np.linspace(to_mel(config.mel_min_hz), to_mel(config.mel_max_hz), config.mel_bins + 2)
    return 700.0 * np.expm1(edges[1:-1] / 1127.0)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6000.0])
def test_tone_peaks_in_the_right_mel_band(freq):
    features = log_mel(tf.constant(tone(freq)[None]), YAMNET_PRESET).numpy()[0]
    band = int(features.mean(axis=0).argmax())
    expected = int(np.argmin(np.abs(mel_centres_hz(YAMNET_PRESET) - freq)))
    assert abs(band - expected) <= 1


def test_yamnet_preset_values():
    c = YAMNET_PRESET
    assert (c.window_samples, c.hop_samples, c.fft_size, c.mel_bins) == (400, 160, 512, 64)
    assert (c.mel_min_hz, c.mel_max_hz, c.log_offset) == (125.0, 7500.0, 0.001)
    assert (c.patch_frames, c.patch_hop_frames) == (96, 48)
    # 0.975 s, the official YAMNet input, gives exactly one 96-frame patch
    assert c.num_frames(15600) == 96


def test_panns_preset_values():
    c = PANNS_PRESET
    assert (c.sample_rate, c.window_samples, c.hop_samples, c.fft_size) == (32000, 1024, 320, 1024)
    assert (c.mel_min_hz, c.mel_max_hz) == (50.0, 14000.0)
    features = log_mel(tf.constant(tone(1000, rate=32000)[None]), c)
    assert features.shape == (1, c.num_frames(32000), 64)


def test_silence_is_the_log_offset_floor():
    features = log_mel(tf.zeros([1, 16000]), YAMNET_PRESET).numpy()
    np.testing.assert_allclose(features, np.log(0.001), rtol=1e-6)


def test_matches_a_numpy_reference_of_the_same_algorithm():
    x = np.random.default_rng(0).normal(scale=0.1, size=16000).astype(np.float32)
    c = YAMNET_PRESET
    frames = np.lib.stride_tricks.sliding_window_view(x, c.window_samples)[:: c.hop_samples]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(c.window_samples) / c.window_samples)
    magnitude = np.abs(np.fft.rfft(frames * window, n=c.fft_size))
    reference = np.log(magnitude @ mel_matrix(c).numpy() + c.log_offset)
    ours = log_mel(tf.constant(x[None]), c).numpy()[0]
    np.testing.assert_allclose(ours, reference, atol=2e-4)


def test_mean_normalisation_zeroes_each_band_mean():
    c = preset("yamnet", mean_normalize=True)
    features = log_mel(tf.constant(tone(800)[None]), c).numpy()[0]
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)


def test_patches_follow_96_frames_with_48_hop():
    features = tf.reshape(tf.range(200 * 64, dtype=tf.float32), [1, 200, 64])
    patches = frame_patches(features, YAMNET_PRESET).numpy()
    assert patches.shape == (1, 3, 96, 64)  # starts at frames 0, 48, 96
    np.testing.assert_array_equal(patches[0, 1, 0], features.numpy()[0, 48])


def test_layer_in_a_model_round_trips_through_config(tmp_path):
    inputs = keras.Input([16000])
    model = keras.Model(inputs, LogMelSpectrogram(YAMNET_PRESET)(inputs))
    assert model.output_shape == (None, 98, 64)
    path = tmp_path / "frontend.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    x = tone(440)[None]
    np.testing.assert_array_equal(model(x).numpy(), reloaded(x).numpy())


def test_bad_frontend_settings():
    with pytest.raises(ConfigError, match="mel_min_hz"):
        LogMelConfig(mel_min_hz=8000, mel_max_hz=100)
    with pytest.raises(ConfigError, match="sample_rate must be > 0"):
        LogMelConfig(sample_rate=0)
    with pytest.raises(ConfigError, match="fft_length 256 is shorter"):
        LogMelConfig(fft_length=256)
    with pytest.raises(ConfigError, match="Unknown log-mel preset"):
        preset("vggish")
    with pytest.warns(UserWarning, match="Nyquist"):
        mel_matrix(LogMelConfig(sample_rate=8000, mel_max_hz=7500))


@pytest.mark.parametrize("config", [YAMNET_PRESET, PANNS_PRESET], ids=["yamnet", "panns"])
def test_log_mel_fast_equals_log_mel(config):
    rng = np.random.default_rng(0)
    rate = config.sample_rate
    t = np.arange(rate) / rate
    tone_in_noise = np.sin(2 * np.pi * 1000 * t) + 0.01 * rng.uniform(-1, 1, rate)
    silent_end = np.concatenate([rng.uniform(-1, 1, rate // 2), np.zeros(rate - rate // 2)])
    clips = tf.constant(np.stack([tone_in_noise, silent_end]).astype(np.float32))
    exact, fast = log_mel(clips, config).numpy(), log_mel_fast(clips, config).numpy()
    assert fast.shape == exact.shape == (2, config.num_frames(rate), config.mel_bins)
    np.testing.assert_allclose(fast, exact, atol=2e-5, rtol=0)
    assert fast[1, -1].max() == pytest.approx(np.log(config.log_offset))  # silent frames exact
    short = tf.constant(np.zeros([1, config.window_samples - 1], np.float32))
    assert log_mel_fast(short, config).shape[1] == 0  # (log_mel's RFFT refuses such an input)


def _float64_log_mel(clips: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """The frontend's algorithm in float64 numpy: the reference both float32 forms approach."""
    frames = np.lib.stride_tricks.sliding_window_view(
        clips.astype(np.float64), config.window_samples, axis=-1
    )[..., :: config.hop_samples, :]
    n = np.arange(config.window_samples)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / config.window_samples)
    magnitude = np.abs(np.fft.rfft(frames * window, n=config.fft_size))
    return np.log(magnitude @ mel_matrix(config).numpy().astype(np.float64) + config.log_offset)


@pytest.mark.parametrize(
    "config",
    [YAMNET_PRESET, PANNS_PRESET, LogMelConfig(window_seconds=408 / 16000)],
    ids=["yamnet", "panns", "window-padded-in-stage-1"],
)
def test_fft_in_matrix_products_is_as_exact_as_rfft(config):
    rate = config.sample_rate
    rng = np.random.default_rng(0)
    t = np.arange(rate) / rate
    clips = np.stack([
        0.5 * np.sin(2 * np.pi * 440 * t),  # one bin loud, the rest at float32 rounding
        np.concatenate([rng.uniform(-1, 1, rate // 2), np.zeros(rate - rate // 2)]),
        1e-3 * rng.uniform(-1, 1, rate),  # quiet
    ]).astype(np.float32)  # fmt: skip
    reference = _float64_log_mel(clips, config)
    fft = log_mel_fft(tf.constant(clips), config).numpy()
    rfft = log_mel(tf.constant(clips), config).numpy()
    assert fft.shape == rfft.shape
    for i in range(len(clips)):  # per clip: as close to float64 as RFFT2D gets
        rfft_error = np.abs(rfft[i] - reference[i]).max()
        assert np.abs(fft[i] - reference[i]).max() <= 2 * rfft_error + 1e-5


def test_layer_transforms():
    x = tf.constant(tone(440)[None])
    layers = {name: LogMelSpectrogram(YAMNET_PRESET, transform=name) for name in TRANSFORMS}
    for layer in layers.values():
        np.testing.assert_allclose(layer(x).numpy(), layers["rfft"](x).numpy(), atol=1e-2)
        assert LogMelSpectrogram.from_config(layer.get_config()).transform == layer.transform
    assert LogMelSpectrogram(YAMNET_PRESET, dft_matmul=True).transform == "dft"  # older configs
    with pytest.raises(ConfigError, match="Unknown log-mel transform 'fourier'"):
        LogMelSpectrogram(YAMNET_PRESET, transform="fourier")
