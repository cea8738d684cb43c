"""Log-mel frontend in TensorFlow, usable in tf.data and inside a Keras model graph.

The algorithm is YAMNet's reference float frontend: periodic Hann window, |STFT| with a
power-of-two FFT, HTK mel matrix from ``tf.signal.linear_to_mel_weight_matrix``, then
``log(mel + offset)``. With a power-of-two FFT the graph converts to builtin TFLite ops
(RFFT2D, COMPLEX_ABS, FULLY_CONNECTED, LOG), so an exported model can take a waveform.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from lean_kd._keras import keras, tf
from lean_kd.config import LogMelConfig, from_dict, to_dict
from lean_kd.errors import ConfigError

YAMNET_PRESET = LogMelConfig()
PANNS_PRESET = LogMelConfig(
    sample_rate=32000,
    window_seconds=1024 / 32000,
    hop_seconds=320 / 32000,
    fft_length=1024,
    mel_bins=64,
    mel_min_hz=50.0,
    mel_max_hz=14000.0,
    log_offset=1e-6,
)
PRESETS = {"yamnet": YAMNET_PRESET, "panns": PANNS_PRESET}


def preset(name: str, **overrides: Any) -> LogMelConfig:
    """A named frontend preset ('yamnet' or 'panns'), optionally with fields overridden."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown log-mel preset {name!r}; expected one of {sorted(PRESETS)}"
        ) from None
    return dataclasses.replace(base, **overrides)


def mel_matrix(config: LogMelConfig) -> tf.Tensor:
    """``[fft_size // 2 + 1, mel_bins]`` float32 HTK mel filterbank."""
    nyquist = config.sample_rate / 2
    if config.mel_max_hz > nyquist:
        warnings.warn(
            f"mel_max_hz {config.mel_max_hz} is above the Nyquist frequency {nyquist}; "
            "the top mel bands will be empty",
            stacklevel=2,
        )
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=config.mel_bins,
        num_spectrogram_bins=config.fft_size // 2 + 1,
        sample_rate=config.sample_rate,
        lower_edge_hertz=config.mel_min_hz,
        upper_edge_hertz=min(config.mel_max_hz, nyquist),
    )


def log_mel(
    waveform: tf.Tensor, config: LogMelConfig, *, matrix: tf.Tensor | None = None
) -> tf.Tensor:
    """Waveform ``[..., samples]`` float32 -> log-mel ``[..., frames, mel_bins]`` float32.

    The form for model graphs: it converts to TFLite's builtin RFFT2D and COMPLEX_ABS ops."""
    stft = tf.signal.stft(
        waveform,
        frame_length=config.window_samples,
        frame_step=config.hop_samples,
        fft_length=config.fft_size,
        window_fn=tf.signal.hann_window,
    )  # [..., frames, fft_size // 2 + 1] complex64
    return _log_of_mel(tf.abs(stft), config, matrix)


def log_mel_fast(
    waveform: tf.Tensor, config: LogMelConfig, *, matrix: tf.Tensor | None = None
) -> tf.Tensor:
    """:func:`log_mel` within 2e-5, about a quarter cheaper on CPU: the form for tf.data.

    Frames are cut ``fft_size`` long with the Hann window zero-padded to match (the FFT then
    pads nothing per frame; the waveform gets the same zeros once at its end, so the frame count
    is unchanged), and the modulus is ``sqrt(re^2 + im^2)``: ``tf.abs`` of a complex tensor
    calls ``hypot``, which guards against an overflow that spectra of waveforms in [-1, 1]
    cannot reach.
    """
    extra = config.fft_size - config.window_samples
    window = tf.pad(tf.signal.hann_window(config.window_samples), [[0, extra]])
    rank = waveform.shape.rank
    waveform = tf.pad(waveform, [[0, 0]] * (rank - 1) + [[0, extra]])
    frames = tf.signal.frame(waveform, config.fft_size, config.hop_samples)
    stft = tf.signal.rfft(frames * window, [config.fft_size])
    magnitude = tf.sqrt(tf.square(tf.math.real(stft)) + tf.square(tf.math.imag(stft)))
    return _log_of_mel(magnitude, config, matrix)


def _log_of_mel(magnitude: tf.Tensor, config: LogMelConfig, matrix: tf.Tensor | None) -> tf.Tensor:
    """``|STFT|`` ``[..., frames, bins]`` -> log-mel, mean-normalised if configured."""
    if matrix is None:
        matrix = mel_matrix(config)
    mel = tf.tensordot(magnitude, matrix, axes=1)  # [..., frames, mel_bins]
    features = tf.math.log(mel + config.log_offset)
    if config.mean_normalize:
        features = features - tf.reduce_mean(features, axis=-2, keepdims=True)
    return features


def frame_patches(features: tf.Tensor, config: LogMelConfig) -> tf.Tensor:
    """Log-mel ``[B, frames, mel]`` -> patches ``[B, patches, patch_frames, mel]`` (YAMNet)."""
    return tf.signal.frame(
        features, frame_length=config.patch_frames, frame_step=config.patch_hop_frames, axis=1
    )


@keras.utils.register_keras_serializable(package="lean_kd")
class LogMelSpectrogram(keras.layers.Layer):
    """Keras layer: waveform ``[B, samples]`` -> log-mel ``[B, frames, mel_bins]``.

    Has no trainable weights; the mel matrix is a constant so that the layer serialises by
    its config alone and TFLite folds it into a FULLY_CONNECTED op.
    """

    def __init__(self, config: LogMelConfig | dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = (
            from_dict(LogMelConfig, config) if not isinstance(config, LogMelConfig) else config
        )
        self._matrix = mel_matrix(self.config)

    def call(self, waveform: tf.Tensor) -> tf.Tensor:
        return log_mel(waveform, self.config, matrix=self._matrix)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        samples = input_shape[-1]
        frames = None if samples is None else self.config.num_frames(int(samples))
        return tf.TensorShape([input_shape[0], frames, self.config.mel_bins])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": to_dict(self.config)}
