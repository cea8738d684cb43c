"""Average precision, mAP and top-1 accuracy in numpy (no scikit-learn on the device).

:func:`average_precision` computes exactly what ``sklearn.metrics.average_precision_score``
computes for one class: sort by score (stable, descending), one precision/recall point per
distinct score (tied scores enter together), then ``AP = sum((R_n - R_{n-1}) * P_n)``, the
step-wise area without interpolation. mAP averages it over the classes that have at least one
positive clip (a class with no positives has no defined AP and is reported as null).
"""

from __future__ import annotations

import numpy as np


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float | None:
    """AP of one class: ``y_true`` 0/1 per clip, ``y_score`` per clip; None without positives."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_score = np.asarray(y_score, dtype=np.float64)
    order = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[order], y_true[order]
    last_of_ties = np.r_[np.flatnonzero(np.diff(y_score)), y_true.size - 1]
    true_pos = np.cumsum(y_true)[last_of_ties]
    if true_pos[-1] == 0:
        return None
    predicted_pos = last_of_ties + 1
    precision = true_pos / predicted_pos
    recall = true_pos / true_pos[-1]
    # sklearn's curve runs from high recall to low and ends at (recall 0, precision 1)
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def mean_average_precision(
    targets: np.ndarray, scores: np.ndarray
) -> tuple[float | None, list[float | None]]:
    """``(mAP, per-class AP)`` for ``[clips, classes]`` 0/1 targets and scores."""
    per_class = [average_precision(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    defined = [ap for ap in per_class if ap is not None]
    return (float(np.mean(defined)) if defined else None), per_class


def top1_accuracy(targets: np.ndarray, scores: np.ndarray) -> float:
    """Share of clips whose highest-scoring class is one of their labels."""
    best = scores.argmax(axis=1)
    return float(targets[np.arange(len(best)), best].mean())
