"""The frozen model a linear probe reads: a window length and per-window outputs.

A :class:`Backbone` turns windows ``[B, window_samples]`` into ``embeddings`` ``[B, D]`` and
``scores`` ``[B, K]``. Two kinds exist:

- :func:`yamnet_backbone`: the pretrained YAMNet (lean_kd's Keras port with the official
  weights) on 0.975 s windows, its 1024-d embedding and 521 AudioSet scores;
- :func:`checkpoint_backbone`: any lean_kd Keras checkpoint that follows the model contract,
  on windows of its input length, its ``embeddings`` and the probabilities of its ``logits``.

``identity`` names the weights (sha256 of the file), so cached window outputs of other
weights are never reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.audio.features import YAMNET_PRESET
from lean_kd.errors import ModelError
from lean_kd.models.contract import model_spec
from lean_kd.models.yamnet.network import YAMNetConfig
from lean_kd.models.yamnet.pretrained import resolve_yamnet_weights, sha256_of
from lean_kd.models.yamnet.weights import pretrained_yamnet

OUTPUTS = ("embeddings", "scores")
# One YAMNet patch: 96 frames of 10 ms plus the 25 ms analysis window = 15600 samples (0.975 s).
YAMNET_WINDOW_SAMPLES = (YAMNET_PRESET.patch_frames - 1) * YAMNET_PRESET.hop_samples + (
    YAMNET_PRESET.window_samples
)


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A frozen model reduced to what the probe needs."""

    name: str  # for reports: "yamnet" or the checkpoint's path
    identity: str  # what its weights are (sha256 of the file, or a TF-Hub handle)
    sample_rate: int
    window_samples: int
    run: Callable[[np.ndarray], dict[str, np.ndarray]]  # [B, window] -> {output: [B, size]}


def yamnet_backbone(weights: str | Path | None = None) -> Backbone:
    """The pretrained YAMNet: ``weights`` or, when None, $LEAN_KD_YAMNET / the cache / a download.

    Raises :class:`ModelError` when no weights are found.
    """
    source = resolve_yamnet_weights(weights)
    model = pretrained_yamnet(YAMNetConfig(input_samples=YAMNET_WINDOW_SAMPLES), weights=source)
    run = _compiled(model, lambda out: (out["embeddings"], out["scores"]), YAMNET_WINDOW_SAMPLES)
    return Backbone(
        "yamnet", _identity(source), YAMNET_PRESET.sample_rate, YAMNET_WINDOW_SAMPLES, run
    )


def checkpoint_backbone(path: str | Path) -> Backbone:
    """A saved lean_kd model (``.keras`` / ``.h5``) with an ``embeddings`` output.

    Raises :class:`ModelError` for an unloadable file or a model without ``embeddings``
    (checked before any audio is read).
    """
    from lean_kd.models.registry import load_model

    path = Path(path)
    return model_backbone(load_model(path), name=str(path), identity=_identity(str(path)))


def model_backbone(model: keras.Model, *, name: str, identity: str) -> Backbone:
    """A contract model in memory on windows of its input length: its ``embeddings`` and the
    probabilities of its ``logits``. ``identity`` must change whenever its weights do."""
    outputs = model.output if isinstance(model.output, dict) else {}
    if "embeddings" not in outputs or "logits" not in outputs:
        raise ModelError(
            f"{name}: a probe needs a model with 'embeddings' and 'logits' outputs (the lean_kd "
            f"model contract); this one gives {sorted(outputs) or type(model.output).__name__}"
        )
    spec = model_spec(model)
    run = _compiled(
        model,
        lambda out: (out["embeddings"], _activation(out["logits"], spec.multi_label)),
        spec.num_samples,
    )
    return Backbone(name, identity, spec.sample_rate, spec.num_samples, run)


def _activation(logits: tf.Tensor, multi_label: bool) -> tf.Tensor:
    return tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits)


def _compiled(model: keras.Model, pick: Callable, window_samples: int) -> Callable:
    """``windows [B, window] -> {"embeddings": [B, D], "scores": [B, K]}`` as numpy, one trace."""

    @tf.function(input_signature=[tf.TensorSpec([None, window_samples], tf.float32)])
    def forward(windows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return pick(model(windows, training=False))

    def run(windows: np.ndarray) -> dict[str, np.ndarray]:
        embeddings, scores = forward(tf.convert_to_tensor(windows, tf.float32))
        return {"embeddings": embeddings.numpy(), "scores": scores.numpy()}

    return run


def _identity(source: str) -> str:
    """sha256 of a weights file; the handle itself for a SavedModel folder or TF-Hub URL."""
    path = Path(source)
    return f"sha256:{sha256_of(path)}" if path.is_file() else source


__all__ = [
    "OUTPUTS",
    "YAMNET_WINDOW_SAMPLES",
    "Backbone",
    "checkpoint_backbone",
    "model_backbone",
    "yamnet_backbone",
]
