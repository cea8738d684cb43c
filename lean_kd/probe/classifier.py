"""The probe's classifier: standardised features, then logistic regression (scikit-learn).

Features are z-scored with the training clips' mean and standard deviation (1 where a feature
is constant), so one ``C`` suits embeddings and scores alike. Single-label data gets one
multinomial logistic regression (lbfgs, L2); multi-label data one binary regression per class
(one-vs-rest). The fitted probe is plain arrays, so it scores without scikit-learn:

    logits = ((x - mean) / scale) @ coef.T + intercept        # [N, C]
    scores = softmax over trained classes (single-label) | sigmoid (multi-label)

A class absent from the training clips cannot be learnt: single-label it scores 0; multi-label
(a column that is all 0 or all 1) it gets that constant as its score.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from lean_kd.errors import ConfigError, DataError
from lean_kd.files import write_atomic

logger = logging.getLogger(__name__)

CONSTANT_LOGIT = 20.0  # multi-label class constant in training: sigmoid(+-20) = 1 - 2e-9 or 2e-9
_ARRAYS = ("mean", "scale", "coef", "intercept", "trained")


@dataclasses.dataclass(frozen=True)
class LinearProbe:
    """A fitted probe; see the module docstring for how it scores."""

    mean: np.ndarray  # [F] training feature means
    scale: np.ndarray  # [F] training feature standard deviations (1 where constant)
    coef: np.ndarray  # [C, F] weights on standardised features
    intercept: np.ndarray  # [C]
    trained: np.ndarray  # [C] bool: the class was learnt (single-label: present in training)
    multi_label: bool

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        *,
        multi_label: bool,
        C: float = 1.0,
        max_iter: int = 1000,
    ) -> LinearProbe:
        """Fit on ``features`` float [N, F] and ``labels`` {0, 1} [N, C] (one-hot or multi-hot)."""
        features, labels = _checked(features, labels)
        if not C > 0 or max_iter <= 0:
            raise ConfigError(f"Expected C > 0 and max_iter > 0, got C={C}, max_iter={max_iter}")
        mean = features.mean(axis=0)
        std = features.std(axis=0)
        scale = np.where(std > 1e-12, std, 1.0)
        z = (features - mean) / scale  # [N, F]
        fit = _fit_multi_label if multi_label else _fit_single_label
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            coef, intercept, trained = fit(z, labels, C=C, max_iter=max_iter)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            logger.warning("Logistic regression did not converge in %d lbfgs iterations", max_iter)
        return cls(mean, scale, coef, intercept, trained, multi_label)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """``[N, C]`` float64 decision values of ``features`` ``[N, F]``."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(self.mean):
            raise DataError(
                f"Expected features of shape [N, {len(self.mean)}] (as in training), "
                f"got {features.shape}"
            )
        return ((features - self.mean) / self.scale) @ self.coef.T + self.intercept

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, C]``: softmax over the trained classes, or sigmoid per class."""
        logits = self.logits(features)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        logits = np.where(self.trained, logits, -np.inf)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: str | Path, *, info: Mapping[str, Any] | None = None) -> None:
        """Write the arrays (and ``info`` as JSON) to an ``.npz`` file atomically."""
        buffer = io.BytesIO()
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        text = json.dumps({**(info or {}), "multi_label": self.multi_label})
        np.savez(buffer, info=np.array(text), **arrays)
        write_atomic(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> LinearProbe:
        """A probe written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                info = json.loads(str(data["info"]))
                return cls(*(data[name] for name in _ARRAYS), bool(info["multi_label"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a probe written by LinearProbe.save ({exc})") from None


def _fit_single_label(z: np.ndarray, labels: np.ndarray, *, C: float, max_iter: int):
    """Multinomial regression on the classes present; absent classes keep zero weights."""
    num_classes = labels.shape[1]
    if np.any(labels.sum(axis=1) != 1):
        raise DataError("Single-label probe: expected exactly one positive label per clip")
    y = labels.argmax(axis=1)
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(
            f"The probe needs clips of at least two classes to learn, got {len(present)}"
        )
    model = LogisticRegression(C=C, max_iter=max_iter).fit(z, y)
    weights, bias = model.coef_, model.intercept_
    if len(present) == 2:  # binary: one row w; the softmax of [-d/2, d/2] is sigmoid(d)
        weights, bias = np.vstack([-weights / 2, weights / 2]), np.r_[-bias / 2, bias / 2]
    coef = np.zeros((num_classes, z.shape[1]))
    intercept = np.zeros(num_classes)
    coef[present], intercept[present] = weights, bias
    trained = np.zeros(num_classes, bool)
    trained[present] = True
    return coef, intercept, trained


def _fit_multi_label(z: np.ndarray, labels: np.ndarray, *, C: float, max_iter: int):
    """One binary regression per class (one-vs-rest); constant columns get a constant score."""
    num_classes = labels.shape[1]
    coef = np.zeros((num_classes, z.shape[1]))
    intercept = np.zeros(num_classes)
    trained = np.zeros(num_classes, bool)
    for c in range(num_classes):
        column = labels[:, c]
        if column.min() == column.max():
            intercept[c] = CONSTANT_LOGIT if column[0] else -CONSTANT_LOGIT
            continue
        model = LogisticRegression(C=C, max_iter=max_iter).fit(z, column)
        coef[c], intercept[c], trained[c] = model.coef_[0], model.intercept_[0], True
    return coef, intercept, trained


def _checked(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.ndim != 2 or len(features) != len(labels) or not len(features):
        raise DataError(
            f"Expected features [N, F] and labels [N, C] with the same N >= 1, got "
            f"{features.shape} and {labels.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise DataError("Probe features contain NaN or infinite values")
    if not np.all((labels == 0) | (labels == 1)):
        raise DataError("Expected labels of 0 and 1 (one-hot or multi-hot)")
    return features, labels.astype(np.int64)


__all__ = ["LinearProbe"]
