"""Clip-level inference for any contract model (the LEAN evaluation protocol).

A clip of any length is split into windows of the model's input length (1 s for the default
models) with 50 % overlap (:func:`lean_kd.audio.windows.split_windows`: a short clip is one
zero-padded window, the tail of a long one a final zero-padded window). Every window gets
probabilities (sigmoid or softmax of its logits, per the model's spec) and a clip's score is
the mean of its windows' probabilities. Windows of many clips are batched together; the result
does not depend on the batching beyond float32 rounding (TF kernels may sum in another order for
another batch shape: differences of ~1e-7 were measured).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.audio.io import valid_audio
from lean_kd.audio.windows import split_windows
from lean_kd.errors import AudioInputError, ConfigError
from lean_kd.models.contract import ModelSpec, check_waveform, model_spec
from lean_kd_runtime.metrics import aggregate_windows


@dataclasses.dataclass(frozen=True)
class ClipScores:
    """Scores of a set of clips and of the windows they were cut into."""

    clip_scores: np.ndarray  # [clips, C] float32: mean of each clip's window scores
    window_scores: np.ndarray  # [windows, C] float32
    clip_index: np.ndarray  # [windows] int: which clip each window belongs to

    def windows_of(self, clip: int) -> np.ndarray:
        """``[n, C]`` scores of clip ``clip``'s windows."""
        return self.window_scores[self.clip_index == clip]


def probabilities(logits: np.ndarray | tf.Tensor, spec: ModelSpec) -> np.ndarray:
    """Sigmoid (multi-label) or softmax (single-label) of ``[..., C]`` logits."""
    activation = tf.sigmoid if spec.multi_label else tf.nn.softmax
    return activation(tf.convert_to_tensor(logits, tf.float32)).numpy()


def window_scores(model: keras.Model, windows: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Probabilities ``[n, C]`` of windows ``[n, num_samples]``, run ``batch_size`` at a time."""
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0, got {batch_size}")
    spec = model_spec(model)
    windows = check_waveform(windows, spec)
    logits = [
        model(windows[start : start + batch_size], training=False)["logits"].numpy()
        for start in range(0, len(windows), batch_size)
    ]
    if not logits:
        return np.zeros([0, spec.num_classes], np.float32)
    return probabilities(np.concatenate(logits), spec)


def clip_scores(
    model: keras.Model, clips: Sequence[np.ndarray], *, batch_size: int = 64, overlap: float = 0.5
) -> ClipScores:
    """Score clips of any length ``[samples]`` (at the model's sample rate) by their windows."""
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if len(clips) == 0:
        raise AudioInputError("Expected at least one clip, got none")
    spec = model_spec(model)
    window = spec.num_samples
    hop = max(1, int(round(window * (1 - overlap))))
    pieces = []
    for number, clip in enumerate(clips):
        clip = np.asarray(clip)
        if clip.ndim != 1:
            raise AudioInputError(
                f"Expected clip {number} as a 1-D waveform [samples], got shape {clip.shape}"
            )
        pieces.append(
            split_windows(valid_audio(clip, source=f"clip {number}"), window=window, hop=hop)
        )
    clip_index = np.concatenate([np.full(len(p), n) for n, p in enumerate(pieces)])
    scores = window_scores(model, np.concatenate(pieces), batch_size=batch_size)
    return ClipScores(mean_by_clip(scores, clip_index, len(clips)), scores, clip_index)


def mean_by_clip(scores: np.ndarray, clip_index: np.ndarray, num_clips: int) -> np.ndarray:
    """Mean of the rows of ``scores`` ``[windows, C]`` that share a clip index -> ``[clips, C]`` float32."""
    return aggregate_windows(scores, np.asarray(clip_index, np.int64), num_clips=num_clips).astype(
        np.float32
    )


def keras_scorer(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """A contract model as a scorer: ``waveform [B, num_samples] -> probabilities [B, C]``."""
    spec = model_spec(model)

    def score(waveform: np.ndarray) -> np.ndarray:
        logits = model(check_waveform(waveform, spec), training=False)["logits"]
        return probabilities(logits, spec)

    return score


def scored_windows(
    score: Callable[[np.ndarray], np.ndarray], windows: Iterable
) -> tuple[ClipScores, np.ndarray]:
    """Score ``AudioPipeline.windows(split)`` batches with ``score`` and average them per clip.

    ``score`` maps a window batch ``[B, samples]`` to probabilities ``[B, C]`` (a Keras model
    through :func:`keras_scorer`, or a TFLite interpreter), so every model format is evaluated
    by the same windowing and aggregation. Clips the pipeline skipped (unreadable files) are
    left out. Returns ``(ClipScores, labels [clips, C])`` in the split's clip order.
    """
    scores, labels, index = [], [], []
    for inputs, batch_labels in windows:
        scores.append(np.asarray(score(np.asarray(inputs["waveform"])), np.float32))
        labels.append(np.asarray(batch_labels))
        index.append(np.asarray(inputs["clip_index"]))
    if not scores:
        raise AudioInputError("Expected at least one window batch, got an empty dataset")
    rows, clip_index = np.unique(np.concatenate(index), return_inverse=True)  # [clips], [windows]
    clip_labels = np.zeros([len(rows), labels[0].shape[1]], np.float32)
    clip_labels[clip_index] = np.concatenate(labels)
    window_scores = np.concatenate(scores)  # [windows, C]
    clip_scores = mean_by_clip(window_scores, clip_index, len(rows))
    return ClipScores(clip_scores, window_scores, clip_index), clip_labels
