"""Specialists: confused pairs, pair datasets, probability redistribution, a distillable teacher."""

import numpy as np
import pytest

from helpers import tiny_model
from lean_kd._keras import keras, tf
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.distill.specialists import (
    PairRedistribution,
    confused_pairs,
    confusion_matrix,
    pair_examples,
    specialist_model,
    specialist_teacher,
)
from lean_kd.errors import ConfigError


def test_confusion_matrix_and_most_confused_pairs():
    labels = np.eye(4)[[0, 0, 1, 1, 2, 2, 3, 3]]
    scores = np.eye(4)[[1, 0, 0, 0, 3, 2, 2, 3]]  # 0<->1 confused 3 times, 2<->3 twice
    matrix = confusion_matrix(scores, labels)
    assert matrix[0, 1] == 1 and matrix[1, 0] == 2 and matrix[2, 3] == 1 and matrix[3, 2] == 1
    assert confused_pairs(matrix, 1) == [(0, 1)]
    assert confused_pairs(matrix, 5) == [(0, 1), (2, 3)]  # pairs never confused are left out
    with pytest.raises(ConfigError):
        confused_pairs(matrix, 0)


def test_pair_examples_keep_two_classes_relabelled():
    examples = tuple(
        Example(f"{i}.wav", (c,), example_id=str(i)) for i, c in enumerate([0, 1, 2, 2, 1])
    )
    pair = pair_examples(DatasetIndex("d", ("a", "b", "c"), examples), (2, 1))
    assert pair.class_names == ("c", "b")
    assert [(e.path, e.labels) for e in pair.examples] == [
        ("1.wav", (1,)),
        ("2.wav", (0,)),
        ("3.wav", (0,)),
        ("4.wav", (1,)),
    ]


def test_redistribution_keeps_mass_and_uses_the_specialist_ratio():
    base = tf.constant([[0.1, 0.3, 0.2, 0.4]])
    specialist = tf.constant([[0.9, 0.1]])  # pair (1, 3): 90 % to class 1
    probs = np.exp(PairRedistribution([(1, 3)])(base, [specialist]).numpy())
    np.testing.assert_allclose(probs, [[0.1, 0.63, 0.2, 0.07]], atol=1e-5)


def test_specialist_teacher_is_a_contract_model_that_sums_to_one(tmp_path):
    base = tiny_model(4, width=8, name="base")
    specialists = [specialist_model(tiny_model(4, name=f"b{i}"), name=f"s{i}") for i in range(2)]
    teacher = specialist_teacher(base, specialists, [(0, 1), (2, 3)])
    x = np.random.default_rng(0).normal(size=(3, 16000)).astype("float32")
    out = teacher(x)
    np.testing.assert_allclose(np.exp(out["logits"].numpy()).sum(axis=1), 1.0, atol=1e-4)
    # classes outside the pairs... here all are paired: pair masses equal the base's
    base_probs = tf.nn.softmax(base(x)["logits"]).numpy()
    probs = np.exp(out["logits"].numpy())
    np.testing.assert_allclose(
        probs[:, 0] + probs[:, 1], base_probs[:, 0] + base_probs[:, 1], atol=1e-4
    )
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path)(x)["logits"].numpy(), out["logits"].numpy(), atol=1e-5
    )


def test_attention_specialist_and_bad_pairs():
    from lean_kd.models.registry import build

    base = build("mobilenet_v2", 3, width=0.25, last_channels=32)
    specialist = specialist_model(base, attention_heads=2)
    assert any(isinstance(layer, keras.layers.MultiHeadAttention) for layer in specialist.layers)
    assert specialist(np.zeros([1, 16000], np.float32))["logits"].shape == (1, 2)
    with pytest.raises(ConfigError, match="disjoint"):
        specialist_teacher(tiny_model(3, name="b"), [specialist, specialist], [(0, 1), (1, 2)])
