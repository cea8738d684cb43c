"""Specialist teachers for confusing class pairs (Jung et al. 2020, seed 004).

A few pairs of classes account for most errors of a scene classifier. The recipe:

1. :func:`confused_pairs`: the k pairs with the largest symmetric confusion ``C[i,j] + C[j,i]``
   in a teacher's validation confusion matrix;
2. :func:`specialist_model` + :func:`pair_examples`: one binary model per pair, trained only on
   the two classes (optionally pooling its temporal ``sequence`` with self multi-head attention,
   as the paper's attention specialists);
3. :func:`specialist_teacher`: the base teacher's (or ensemble's) probabilities with, for each
   pair, the mass ``p_i + p_j`` re-split in the specialist's ratio; the result's ``logits`` are
   the log of those probabilities, so it teaches through any KD loss like another teacher.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.data.index import DatasetIndex
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.contract import contract_outputs, model_spec, waveform_input

_EPS = 1e-7


def confusion_matrix(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[C, C]`` counts: row = true class, column = predicted class (single-label)."""
    num_classes = scores.shape[1]
    truth, predicted = np.argmax(labels, axis=1), np.argmax(scores, axis=1)
    matrix = np.zeros([num_classes, num_classes], np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def confused_pairs(matrix: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The ``k`` class pairs ``(i, j)``, ``i < j``, most often confused either way."""
    if k <= 0:
        raise ConfigError(f"k must be > 0, got {k}")
    symmetric = matrix + matrix.T
    pairs = [(symmetric[i, j], i, j) for i in range(len(matrix)) for j in range(i + 1, len(matrix))]
    ranked = sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))
    return [(i, j) for count, i, j in ranked[:k] if count > 0]


def pair_examples(index: DatasetIndex, pair: tuple[int, int]) -> DatasetIndex:
    """The examples of the two classes only, relabelled 0 (first class) and 1 (second)."""
    if index.multi_label:
        raise ConfigError("Specialists are defined for single-label data (scene classification)")
    first, second = pair
    examples = tuple(
        dataclasses.replace(e, labels=(0 if e.labels[0] == first else 1,))
        for e in index.examples
        if e.labels[0] in pair
    )
    names = (index.class_names[first], index.class_names[second])
    return DatasetIndex(f"{index.name}-{'-vs-'.join(names)}", names, examples)


def specialist_model(
    base: keras.Model, *, attention_heads: int = 0, name: str = "specialist"
) -> keras.Model:
    """A binary contract model on top of ``base``'s ``sequence`` (or ``embeddings``).

    With ``attention_heads`` > 0 the sequence is first refined by self multi-head attention
    (residual + layer norm) and then mean-pooled, as the paper's attention specialists.
    """
    spec = dataclasses.replace(model_spec(base), num_classes=2, multi_label=False)
    waveform = waveform_input(spec)
    outputs = base(waveform)
    if attention_heads:
        if "sequence" not in outputs:
            raise ModelError(f"Model {base.name!r} has no 'sequence' output for attention pooling")
        sequence = outputs["sequence"]  # [B, T, D]
        width = sequence.shape[-1]
        attended = keras.layers.MultiHeadAttention(
            attention_heads, max(1, width // attention_heads)
        )(sequence, sequence)
        sequence = keras.layers.LayerNormalization()(sequence + attended)
        embeddings = keras.layers.GlobalAveragePooling1D()(sequence)  # [B, D]
    else:
        embeddings = outputs["embeddings"]
    logits = keras.layers.Dense(2, name="pair_logits")(embeddings)
    return keras.Model(
        waveform, contract_outputs(spec, logits=logits, embeddings=embeddings), name=name
    )


@keras.utils.register_keras_serializable(package="lean_kd")
class PairRedistribution(keras.layers.Layer):
    """Re-split ``p_i + p_j`` of each pair in the specialists' ratio; returns log-probabilities."""

    def __init__(self, pairs: Sequence[Sequence[int]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pairs = [tuple(int(c) for c in p) for p in pairs]

    def call(self, base_probs: tf.Tensor, pair_probs: Sequence[tf.Tensor]) -> tf.Tensor:
        num_classes = base_probs.shape[-1]
        probs = base_probs  # [B, C]
        for (i, j), specialist in zip(self.pairs, pair_probs):  # specialist: [B, 2]
            mass = probs[:, i] + probs[:, j]  # [B]
            update = tf.stack([mass * specialist[:, 0], mass * specialist[:, 1]], axis=1)
            keep = 1.0 - tf.reduce_sum(tf.one_hot([i, j], num_classes), axis=0)  # [C]
            placed = tf.matmul(update, tf.one_hot([i, j], num_classes))  # [B, C]
            probs = probs * keep + placed
        return tf.math.log(probs + _EPS)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pairs": [list(p) for p in self.pairs]}


def specialist_teacher(
    base: keras.Model,
    specialists: Sequence[keras.Model],
    pairs: Sequence[tuple[int, int]],
    *,
    name: str = "specialist_teacher",
) -> keras.Model:
    """The base teacher with its pair probabilities refined by the specialists."""
    spec = model_spec(base)
    if spec.multi_label:
        raise ConfigError("Specialists are defined for single-label data")
    if len(specialists) != len(pairs):
        raise ConfigError(
            f"Expected one specialist per pair, got {len(specialists)} for {len(pairs)} pairs"
        )
    flat = [c for pair in pairs for c in pair]
    if len(set(flat)) != len(flat) or not all(0 <= c < spec.num_classes for c in flat):
        raise ConfigError(
            f"Pairs must be disjoint class ids in 0..{spec.num_classes - 1}, got {list(pairs)}"
        )
    waveform = waveform_input(spec)
    base_out = base(waveform)
    base_probs = keras.layers.Softmax()(base_out["logits"])
    pair_probs = [keras.layers.Softmax()(s(waveform)["logits"]) for s in specialists]
    logits = PairRedistribution(pairs)(base_probs, pair_probs)
    return keras.Model(
        waveform,
        contract_outputs(spec, logits=logits, embeddings=base_out["embeddings"]),
        name=name,
    )
