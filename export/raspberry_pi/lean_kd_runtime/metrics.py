"""Evaluation metrics in plain numpy: mAP, AUC-PR, ROC-AUC, d-prime, accuracy, clip aggregation.

This module imports neither TensorFlow nor lean_kd's Keras code, so that the device-side runners
(``export/raspberry_pi``) can copy its logic and report the same numbers as training. The Keras
wrappers used during ``fit`` live in :mod:`lean_kd.training.keras_metrics` and call these functions.

Definitions (all match scikit-learn on the same input; the tests check it):

- **Average precision (AP)** of one class is sklearn's ``average_precision_score``: the step-wise
  sum ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds, no interpolation; tied
  scores form one threshold.
- **mAP** is the mean AP over the classes that have at least one positive example. A class
  without positives has no defined AP (recall is 0/0); it is excluded rather than counted as 0,
  and its entry in the per-class AP is NaN (``None`` in :func:`evaluate_scores`).
- **AUC-PR** is the area under the precision-recall curve measured as AP (the step-wise estimate
  above, not the trapezoid, which is optimistic on PR curves). Macro AUC-PR is therefore mAP;
  micro AUC-PR is the AP of all (example, class) pairs pooled, which weights frequent classes
  more and is what a flattened ``keras.metrics.AUC(curve="PR")`` approximates.
- **ROC-AUC** is the mean over classes that have both positives and negatives of the
  Mann-Whitney statistic (ties count one half), as sklearn's ``roc_auc_score(average="macro")``.
- **d-prime** is ``sqrt(2) * Phi^-1(auc)`` (AudioSet papers), from the macro ROC-AUC.
- **Accuracy / top-k accuracy** (single-label): an example counts as correct when fewer than k
  other classes score at least as high as its true class, so ties count as errors and a model
  with constant output scores 0 instead of a lucky 1/C.
- **Confusion matrix** (single-label): counts [C, C], rows = true class, columns = the arg-max
  class (the first of tied maxima, as ``np.argmax``), so its trace can exceed accuracy * N
  when scores tie.

Scores may be logits or probabilities: AP and ROC-AUC depend only on the ranking within a class
and accuracy on the ranking within an example. Average probabilities, not logits, when scoring
clips from windows (:func:`aggregate_windows`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np

from .errors import DataError

log = logging.getLogger(__name__)

# d' of a perfect (or perfectly inverted) ranking is infinite; the AUC is clipped to
# [eps, 1 - eps] so that reports stay finite and JSON-safe (d' at most about 6.7).
_D_PRIME_AUC_EPS = 1e-6


def aggregate_windows(
    window_scores: np.ndarray, clip_index: np.ndarray, *, num_clips: int | None = None
) -> np.ndarray:
    """Clip scores as the mean of each clip's window scores.

    Args:
        window_scores: float [N, C], one row per window (probabilities, see module docstring).
        clip_index: int [N], the clip each window belongs to (0 .. num_clips - 1).
        num_clips: number of clips; defaults to ``max(clip_index) + 1``.

    Returns:
        float64 [num_clips, C], row ``i`` is the mean over the windows of clip ``i``.

    Raises:
        DataError: shapes disagree, an index is negative or >= num_clips, or a clip has no window.
    """
    window_scores = _as_2d_float(window_scores, "window_scores")
    clip_index = np.asarray(clip_index)
    if clip_index.ndim != 1 or not np.issubdtype(clip_index.dtype, np.integer):
        raise DataError(
            f"Expected clip_index as integers of shape [N], got dtype {clip_index.dtype} "
            f"and shape {clip_index.shape}"
        )
    if len(clip_index) != len(window_scores):
        raise DataError(
            f"clip_index has {len(clip_index)} entries but window_scores has "
            f"{len(window_scores)} rows"
        )
    if num_clips is None:
        num_clips = int(clip_index.max()) + 1
    if clip_index.min() < 0 or clip_index.max() >= num_clips:
        raise DataError(
            f"Expected clip_index in [0, {num_clips - 1}], got values in "
            f"[{clip_index.min()}, {clip_index.max()}]"
        )
    counts = np.bincount(clip_index, minlength=num_clips)  # [num_clips]
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise DataError(
            f"{len(empty)} of {num_clips} clips have no window (first: {empty[:5].tolist()}); "
            "every clip index must occur in clip_index"
        )
    sums = np.zeros((num_clips, window_scores.shape[1]), dtype=np.float64)
    np.add.at(sums, clip_index, window_scores)
    return sums / counts[:, None]


def _binary_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """AP of one binary problem (float [N], {0, 1} [N]); NaN without positives."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    hits = np.asarray(labels, dtype=np.float64)[order]
    # Last position of each group of tied scores: one threshold per distinct score.
    ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_pos = np.cumsum(hits)[ends]
    if true_pos[-1] == 0:
        return math.nan
    precision = true_pos / (ends + 1)
    recall_steps = np.diff(np.r_[0.0, true_pos]) / true_pos[-1]
    return float(np.sum(recall_steps * precision))


def per_class_average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AP of each class: float64 [C], NaN for classes without positives."""
    scores, labels = _check_multi_label(scores, labels)
    return np.array(
        [_binary_average_precision(scores[:, c], labels[:, c]) for c in range(scores.shape[1])]
    )


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """mAP: mean AP over the classes with at least one positive (float [N, C], {0, 1} [N, C])."""
    return _nanmean(per_class_average_precision(scores, labels), "mAP", "a positive example")


def auc_pr(scores: np.ndarray, labels: np.ndarray, *, average: str = "micro") -> float:
    """Area under the PR curve as AP; ``average`` is "micro" (pooled) or "macro" (= mAP)."""
    if average == "macro":
        return mean_average_precision(scores, labels)
    if average != "micro":
        raise DataError(f"Expected average 'micro' or 'macro', got {average!r}")
    scores, labels = _check_multi_label(scores, labels)
    value = _binary_average_precision(scores.ravel(), labels.ravel())
    if math.isnan(value):
        raise DataError("AUC-PR is undefined: no label is positive")
    return value


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Macro ROC-AUC over the classes that have both positive and negative examples."""
    scores, labels = _check_multi_label(scores, labels)
    per_class = np.array(
        [_binary_roc_auc(scores[:, c], labels[:, c]) for c in range(scores.shape[1])]
    )
    return _nanmean(per_class, "ROC-AUC", "both positive and negative examples")


def d_prime(auc: float) -> float:
    """Sensitivity index ``sqrt(2) * Phi^-1(auc)``; the AUC is clipped to [1e-6, 1 - 1e-6]."""
    if not 0.0 <= auc <= 1.0:
        raise DataError(f"Expected an AUC in [0, 1], got {auc}")
    clipped = min(max(auc, _D_PRIME_AUC_EPS), 1.0 - _D_PRIME_AUC_EPS)
    return math.sqrt(2.0) * NormalDist().inv_cdf(clipped)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Single-label accuracy; ``labels`` as class ids [N] or one-hot / soft [N, C]."""
    return top_k_accuracy(scores, labels, k=1)


def top1_hit_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose best-scoring class is one of their labels ({0, 1} [N, C]);
    the accuracy of single-label data, and its natural extension to multi-label data."""
    scores = _as_2d_float(scores, "scores")
    best = np.argmax(scores, axis=1)
    return float(np.mean(np.asarray(labels)[np.arange(len(best)), best] > 0))


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, *, k: int) -> float:
    """Fraction of examples whose true class is among the k best (ties count as errors)."""
    scores = _as_2d_float(scores, "scores")
    class_ids = _class_ids(labels, scores.shape)
    if not 1 <= k <= scores.shape[1]:
        raise DataError(f"Expected k in [1, {scores.shape[1]}] (the class count), got {k}")
    true_scores = scores[np.arange(len(scores)), class_ids]  # [N]
    rivals = np.sum(scores >= true_scores[:, None], axis=1) - 1  # [N], classes not worse
    return float(np.mean(rivals < k))


def confusion_matrix(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 [C, C]: row = true class, column = arg-max class; ``labels`` as for accuracy."""
    scores = _as_2d_float(scores, "scores")
    num_classes = scores.shape[1]
    pairs = _class_ids(labels, scores.shape) * num_classes + np.argmax(scores, axis=1)  # [N]
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, -1)


def evaluate_scores(
    scores: np.ndarray, labels: np.ndarray, *, multi_label: bool, top_k: int = 5
) -> dict[str, Any]:
    """Every metric above as plain Python values (JSON-ready).

    Args:
        scores: float [N, C] (clip scores; see :func:`aggregate_windows` for windows).
        labels: multi-label: {0, 1} [N, C]; single-label: class ids [N] or one-hot [N, C].
        multi_label: tagging (no accuracy) or single-label classification.
        top_k: k of the extra top-k accuracy (single-label, reported only when k < C).

    Returns:
        ``map``, ``micro_auc_pr``, ``macro_auc_pr``, ``roc_auc``, ``d_prime`` (None when
        ROC-AUC is undefined), ``per_class_ap`` (list, None for classes without positives),
        ``num_examples``, ``num_classes``, ``num_classes_with_positives``; single-label adds
        ``accuracy``, ``top_{k}_accuracy`` and ``confusion_matrix`` (list of C lists of C ints,
        see :func:`confusion_matrix`).
    """
    scores = _as_2d_float(scores, "scores")
    result: dict[str, Any] = {}
    if not multi_label:
        class_ids = _class_ids(labels, scores.shape)
        result["accuracy"] = accuracy(scores, class_ids)
        if top_k < scores.shape[1]:
            result[f"top_{top_k}_accuracy"] = top_k_accuracy(scores, class_ids, k=top_k)
        result["confusion_matrix"] = confusion_matrix(scores, class_ids).tolist()
        labels = np.eye(scores.shape[1])[class_ids]  # one-hot [N, C]
    per_class = per_class_average_precision(scores, labels)
    map_value = _nanmean(per_class, "mAP", "a positive example")
    roc = _defined_or_none(roc_auc, scores, labels)
    result.update(
        map=map_value,
        micro_auc_pr=auc_pr(scores, labels, average="micro"),
        macro_auc_pr=map_value,
        roc_auc=roc,
        d_prime=None if roc is None else d_prime(roc),
        per_class_ap=[None if math.isnan(ap) else float(ap) for ap in per_class],
        num_examples=int(scores.shape[0]),
        num_classes=int(scores.shape[1]),
        num_classes_with_positives=int(np.sum(~np.isnan(per_class))),
    )
    return result


def _binary_roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney U / (P * N) with average ranks for ties; NaN if one side is empty."""
    positives = labels.astype(bool)
    num_pos, num_neg = int(positives.sum()), int((~positives).sum())
    if num_pos == 0 or num_neg == 0:
        return math.nan
    rank_sum = float(np.sum(_average_ranks(scores)[positives]))
    return (rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank (scipy's ``rankdata`` "average")."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    is_start = np.r_[True, sorted_values[1:] != sorted_values[:-1]]  # first of a tie group
    starts = np.flatnonzero(is_start)
    ends = np.r_[starts[1:], len(values)]  # exclusive end of each tie group
    group = np.cumsum(is_start) - 1  # [N], tie group of each sorted value
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[group]
    return ranks


def _nanmean(values: np.ndarray, metric: str, requirement: str) -> float:
    defined = values[~np.isnan(values)]
    if len(defined) == 0:
        raise DataError(f"{metric} is undefined: no class has {requirement}")
    return float(np.mean(defined))


def _defined_or_none(fn: Callable[..., float], *args: np.ndarray) -> float | None:
    try:
        return fn(*args)
    except DataError as err:
        log.warning("%s", err)
        return None


def _as_2d_float(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"Expected {what} of shape [N, C] with N, C >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise DataError(f"{what} contains NaN or infinite values")
    return array


def _check_multi_label(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = _as_2d_float(scores, "scores")
    labels = np.asarray(labels)
    if labels.shape != scores.shape:
        raise DataError(f"Expected labels of shape {scores.shape} like scores, got {labels.shape}")
    if not np.all((labels == 0) | (labels == 1)):
        raise DataError("Expected binary labels (0 or 1); threshold soft labels first")
    return scores, labels.astype(np.int64)


def _class_ids(labels: np.ndarray, scores_shape: tuple[int, ...]) -> np.ndarray:
    """Class ids [N] from ids [N] or one-hot / soft labels [N, C] (the largest entry)."""
    labels = np.asarray(labels)
    num_examples, num_classes = scores_shape
    if labels.shape == (num_examples, num_classes):
        if np.any(labels.max(axis=1) <= 0):
            row = int(np.argmin(labels.max(axis=1)))
            raise DataError(f"Expected one positive entry per single-label row, row {row} has none")
        return np.argmax(labels, axis=1)
    if labels.shape != (num_examples,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"Expected single-label labels as int class ids [{num_examples}] or one-hot "
            f"[{num_examples}, {num_classes}], got dtype {labels.dtype} and shape {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(
            f"Expected class ids in [0, {num_classes - 1}], got [{labels.min()}, {labels.max()}]"
        )
    return labels
