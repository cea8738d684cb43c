"""LEAN's Wave Encoder: raw waveform -> 25 ms patches -> stacked bidirectional LSTMs.

The waveform ``[B, samples]`` is reshaped (no overlap, no features) into ``T = samples /
patch_samples`` patches, 40 x 400 samples for 1 s at 16 kHz, and two ``Bidirectional(LSTM)``
layers of 128 units turn them into temporal context vectors ``C_t`` ``[B, T, 2 * units]``.

The LSTMs keep Keras' defaults (tanh / sigmoid, no recurrent dropout, ``unroll=False``): only
then does the TFLite converter fuse each direction into one UNIDIRECTIONAL_SEQUENCE_LSTM op
instead of a WHILE loop with extra subgraphs (which MediaPipe rejects).
The fused op keeps its final state in variable tensors that the NEXT invocation starts from
(tensorflow#47813; giving ``initial_state`` zeros does not help): a TFLite runner must call
``interpreter.reset_all_variables()`` before each ``invoke()`` (measured: up to 0.14 off on the
second window otherwise, 1e-7 with the reset).
"""

from __future__ import annotations

import dataclasses

from lean_kd._keras import keras, tf
from lean_kd.errors import ConfigError

PREFIX = "wave_encoder"


@dataclasses.dataclass(frozen=True)
class WaveEncoderConfig:
    """Wave Encoder options (defaults: the LEAN paper's 25 ms patches and 2 x BiLSTM(128))."""

    patch_seconds: float = 0.025
    lstm_units: int = 128  # per direction: C_t has 2 * lstm_units features
    lstm_layers: int = 2

    def __post_init__(self) -> None:
        if not self.patch_seconds > 0:
            raise ConfigError(f"patch_seconds must be > 0, got {self.patch_seconds}")
        for name in ("lstm_units", "lstm_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be an integer > 0, got {value!r}")

    @property
    def output_size(self) -> int:
        """Features of ``C_t``: both directions of the last LSTM."""
        return 2 * self.lstm_units

    def patch_samples(self, sample_rate: int) -> int:
        """Samples per patch (400 at 16 kHz); the patch must be a whole number of samples."""
        exact = sample_rate * self.patch_seconds
        samples = int(round(exact))
        if samples < 1 or abs(exact - samples) > 1e-6:
            raise ConfigError(
                f"patch_seconds {self.patch_seconds} at {sample_rate} Hz is {exact:g} samples; "
                "expected a whole number of samples >= 1"
            )
        return samples

    def num_patches(self, num_samples: int, sample_rate: int) -> int:
        """Patches ``T`` of a ``num_samples`` waveform (40 for 1 s at 16 kHz)."""
        size = self.patch_samples(sample_rate)
        if num_samples < size or num_samples % size:
            raise ConfigError(
                f"The Wave Encoder cuts the waveform into {size}-sample patches "
                f"({self.patch_seconds * 1000:g} ms at {sample_rate} Hz): expected num_samples a "
                f"multiple of {size}, got {num_samples}"
            )
        return num_samples // size


def wave_patches(waveform: tf.Tensor, config: WaveEncoderConfig, *, sample_rate: int) -> tf.Tensor:
    """``[B, samples]`` -> non-overlapping patches ``[B, T, patch_samples]`` (row-major).

    Patch ``t`` holds samples ``t * patch_samples ... (t + 1) * patch_samples - 1``.
    """
    samples = waveform.shape[-1]
    if samples is None:
        raise ConfigError("The Wave Encoder needs a fixed input length, got [B, None]")
    count = config.num_patches(int(samples), sample_rate)
    size = config.patch_samples(sample_rate)
    return keras.layers.Reshape((count, size), name=f"{PREFIX}/patches")(waveform)  # [B, T, 400]


def wave_encoder(waveform: tf.Tensor, config: WaveEncoderConfig, *, sample_rate: int) -> tf.Tensor:
    """Apply the Wave Encoder flat: waveform ``[B, samples]`` -> ``C_t`` ``[B, T, 2 * units]``."""
    x = wave_patches(waveform, config, sample_rate=sample_rate)  # [B, T, patch_samples]
    for index in range(1, config.lstm_layers + 1):
        lstm = keras.layers.LSTM(config.lstm_units, return_sequences=True, name=f"lstm{index}")
        x = keras.layers.Bidirectional(lstm, name=f"{PREFIX}/bilstm{index}")(x)  # [B, T, 2 * units]
    return x
