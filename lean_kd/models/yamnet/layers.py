"""Weight-free Keras layers of YAMNet's frontend: padding, patch framing, patch folding.

They keep YAMNet's waveform -> patches contract inside the model graph (so an exported model
takes a waveform) and work with a static or a variable number of samples.
"""

from __future__ import annotations

from typing import Any

from lean_kd._keras import keras, tf
from lean_kd.audio.features import frame_patches
from lean_kd.config import LogMelConfig, from_dict, to_dict


def min_patch_samples(config: LogMelConfig) -> int:
    """Samples needed for one patch: ``(patch_frames - 1) * hop + window`` (15600 for YAMNet)."""
    return (config.patch_frames - 1) * config.hop_samples + config.window_samples


def patch_hop_samples(config: LogMelConfig) -> int:
    """Samples between the starts of two patches (7680 for YAMNet)."""
    return config.patch_hop_frames * config.hop_samples


def padded_samples(num_samples: int, config: LogMelConfig) -> int:
    """Length after YAMNet's padding: at least one patch, then a whole number of patch hops."""
    first = min_patch_samples(config)
    hop = patch_hop_samples(config)
    rest = max(num_samples, first) - first
    return first + -(-rest // hop) * hop


def num_patches(num_samples: int, config: LogMelConfig) -> int:
    """Patches YAMNet makes from ``num_samples`` (after padding); always >= 1."""
    return 1 + (
        padded_samples(num_samples, config) - min_patch_samples(config)
    ) // patch_hop_samples(config)


class _FrontendLayer(keras.layers.Layer):
    """Base: a layer configured by a :class:`LogMelConfig`, serialised by its config."""

    def __init__(self, config: LogMelConfig | dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = (
            config if isinstance(config, LogMelConfig) else from_dict(LogMelConfig, config)
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": to_dict(self.config)}


@keras.utils.register_keras_serializable(package="lean_kd")
class WaveformPadding(_FrontendLayer):
    """Zero-pad ``[B, samples]`` at the end as the official YAMNet does (``pad_waveform``).

    Short clips get one full patch; longer ones are padded to a whole number of patch hops so
    the tail is scored instead of dropped.
    """

    def call(self, waveform: tf.Tensor) -> tf.Tensor:
        samples = waveform.shape[-1]
        if samples is not None:  # static length: constant padding, TFLite-friendly
            return tf.pad(waveform, [[0, 0], [0, padded_samples(samples, self.config) - samples]])
        first = min_patch_samples(self.config)
        hop = patch_hop_samples(self.config)
        samples = tf.shape(waveform)[-1]
        rest = tf.maximum(samples, first) - first
        target = first + (rest + hop - 1) // hop * hop
        return tf.pad(waveform, [[0, 0], [0, target - samples]])  # [B, padded_samples]

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        samples = input_shape[-1]
        padded = None if samples is None else padded_samples(int(samples), self.config)
        return tf.TensorShape([input_shape[0], padded])


@keras.utils.register_keras_serializable(package="lean_kd")
class LogMelPatches(_FrontendLayer):
    """Log-mel ``[B, frames, mel]`` -> overlapping patches ``[B, patches, patch_frames, mel]``."""

    def call(self, log_mel: tf.Tensor) -> tf.Tensor:
        return frame_patches(log_mel, self.config)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        frames = input_shape[1]
        count = None
        if frames is not None:
            count = 1 + (int(frames) - self.config.patch_frames) // self.config.patch_hop_frames
        return tf.TensorShape([input_shape[0], count, self.config.patch_frames, input_shape[2]])


@keras.utils.register_keras_serializable(package="lean_kd")
class FoldPatches(keras.layers.Layer):
    """``[B, P, ...]`` -> ``[B * P, ...]``, so the backbone sees every patch as one example."""

    def call(self, patches: tf.Tensor) -> tf.Tensor:
        inner = patches.shape[2:]
        if inner.is_fully_defined():
            return tf.reshape(patches, [-1, *inner])
        return tf.reshape(patches, tf.concat([[-1], tf.shape(patches)[2:]], axis=0))

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        batch, count = input_shape[0], input_shape[1]
        folded = None if batch is None or count is None else batch * count
        return tf.TensorShape([folded, *input_shape[2:]])


@keras.utils.register_keras_serializable(package="lean_kd")
class UnfoldPatches(keras.layers.Layer):
    """Inverse of :class:`FoldPatches`: ``([B * P, ...], reference [B, P, ...])`` -> ``[B, P, ...]``."""

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        folded, reference = inputs
        count, inner = reference.shape[1], folded.shape[1:]
        if count is not None and inner.is_fully_defined():
            return tf.reshape(folded, [-1, count, *inner])
        leading = tf.shape(reference)[:2]
        return tf.reshape(folded, tf.concat([leading, tf.shape(folded)[1:]], axis=0))

    def compute_output_shape(self, input_shape: list[tf.TensorShape]) -> tf.TensorShape:
        folded, reference = (tf.TensorShape(s) for s in input_shape)
        return tf.TensorShape([reference[0], reference[1], *folded[1:]])
