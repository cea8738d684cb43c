"""Keras metrics that report the exact numpy mAP and AUC-PR of :mod:`lean_kd_runtime.metrics`.

``keras.metrics.AUC(curve="PR")`` approximates the PR curve with fixed thresholds; checkpoints
chosen on it can disagree with the mAP reported at the end. These metrics instead keep every
score and label of the epoch and compute the numpy metric in ``result()``, so validation numbers
during ``fit`` equal :func:`lean_kd_runtime.metrics.evaluate_scores` on the same data.

Memory is O(examples x classes) per epoch and ``result()`` (which Keras calls after every batch)
costs a sort per class: right for validation sets of a few thousand clips, wasteful on training
batches of a large dataset. Under ``tf.distribute.MirroredStrategy`` each replica keeps its own
buffer and ``result()`` concatenates the replicas' buffers; under MultiWorkerMirroredStrategy the
value covers the local worker's share only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.errors import ConfigError, DataError
from lean_kd_runtime.metrics import auc_pr, mean_average_precision

_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "sigmoid": tf.sigmoid,
    "softmax": tf.nn.softmax,
    "linear": tf.identity,
}


def _empty_buffer(shape: Any, dtype: Any = None) -> tf.Tensor:
    """Initializer of the growing buffers: an empty vector whatever the declared shape."""
    return tf.zeros([0], dtype=dtype or tf.float32)


class _ScoreBuffer(keras.metrics.Metric):
    """Accumulates flattened scores and {0, 1} labels; ``result()`` applies ``metric_fn``.

    ``activation`` maps ``y_pred`` to scores ("sigmoid" for tagging logits, "softmax" for
    single-label logits, "linear" when ``y_pred`` already holds scores). ``y_true`` may be soft
    (mixup, label smoothing): entries >= 0.5 count as positives.
    """

    def __init__(
        self,
        *,
        metric_fn: Callable[[np.ndarray, np.ndarray], float],
        activation: str,
        name: str,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        self._metric_fn = metric_fn
        if activation not in _ACTIVATIONS:
            raise ConfigError(
                f"Unknown activation {activation!r} for metric {name!r}; "
                f"expected one of {sorted(_ACTIVATIONS)}"
            )
        self.activation = activation
        self.scores = self.add_weight("scores", shape=(None,), initializer=_empty_buffer)
        self.labels = self.add_weight("labels", shape=(None,), initializer=_empty_buffer)
        self.num_classes = self.add_weight(
            "num_classes", shape=(), initializer="zeros", dtype=tf.int32
        )

    # Not converted by autograph: no tensor-dependent Python control flow, and our errors
    # (ConfigError, DataError) must reach the caller as themselves, not as StagingError.
    @tf.autograph.experimental.do_not_convert
    def update_state(
        self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None
    ) -> None:
        if sample_weight is not None:
            raise ConfigError(f"Metric {self.name!r} does not support sample weights")
        scores = _ACTIVATIONS[self.activation](tf.cast(y_pred, tf.float32))  # [B, C]
        labels = tf.cast(tf.cast(y_true, tf.float32) >= 0.5, tf.float32)  # [B, C]
        if not scores.shape.is_compatible_with(labels.shape):
            raise DataError(
                f"Metric {self.name!r}: expected y_true of shape {scores.shape} like y_pred, "
                f"got {labels.shape}"
            )
        self.scores.assign(tf.concat([self.scores, tf.reshape(scores, [-1])], axis=0))
        self.labels.assign(tf.concat([self.labels, tf.reshape(labels, [-1])], axis=0))
        self.num_classes.assign(tf.shape(scores)[-1])

    def result(self) -> tf.Tensor:
        # Under a strategy this runs in cross-replica context: gather every replica's buffer.
        strategy = tf.distribute.get_strategy()
        scores = tf.concat(strategy.experimental_local_results(self.scores), axis=0)
        labels = tf.concat(strategy.experimental_local_results(self.labels), axis=0)
        num_classes = tf.reduce_max(strategy.experimental_local_results(self.num_classes))
        value = tf.numpy_function(
            self._numpy_result, [scores, labels, num_classes], tf.float32, name=self.name
        )
        return tf.ensure_shape(value, [])

    def reset_state(self) -> None:
        for variable in (self.scores, self.labels):
            for local in tf.distribute.get_strategy().experimental_local_results(variable):
                local.assign(tf.zeros([0], tf.float32))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}

    def _numpy_result(self, scores: np.ndarray, labels: np.ndarray, num_classes: int) -> Any:
        """The numpy metric, or NaN while it is undefined (no data, no positive yet)."""
        if scores.size == 0:
            return np.float32(np.nan)
        shape = (-1, int(num_classes))
        try:
            return np.float32(self._metric_fn(scores.reshape(shape), labels.reshape(shape)))
        except DataError:
            return np.float32(np.nan)


@keras.saving.register_keras_serializable(package="lean_kd")
class MeanAveragePrecision(_ScoreBuffer):
    """Exact mAP over the epoch (classes without positives excluded), see lean_kd_runtime.metrics."""

    def __init__(self, name: str = "map", activation: str = "sigmoid", dtype: Any = None) -> None:
        super().__init__(
            metric_fn=mean_average_precision, activation=activation, name=name, dtype=dtype
        )


@keras.saving.register_keras_serializable(package="lean_kd")
class AUCPR(_ScoreBuffer):
    """Exact AUC-PR over the epoch; ``average`` "micro" (pooled pairs) or "macro" (= mAP)."""

    def __init__(
        self,
        name: str = "auc_pr",
        average: str = "micro",
        activation: str = "sigmoid",
        dtype: Any = None,
    ) -> None:
        if average not in ("micro", "macro"):
            raise ConfigError(f"Expected average 'micro' or 'macro' for {name!r}, got {average!r}")
        super().__init__(
            metric_fn=functools.partial(auc_pr, average=average),
            activation=activation,
            name=name,
            dtype=dtype,
        )
        self.average = average

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "average": self.average}
