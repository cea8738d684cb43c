"""Metrics: the numpy implementation against scikit-learn and hand-computed cases, clip
aggregation, and the Keras wrappers against numpy inside ``model.evaluate`` / ``fit``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from lean_kd.audio.windows import num_windows
from lean_kd.errors import ConfigError, DataError
from lean_kd_runtime import metrics


def _random_multi_label(seed: int, n: int = 60, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to 1 decimal (many ties), class 3 without positives, class 5 all positive."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((n, c)), 1)
    labels = (rng.random((n, c)) < 0.3).astype(np.int64)
    labels[0] = 1  # every class but 3 has a positive
    labels[:, 3] = 0
    labels[:, 5] = 1
    return scores, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_sklearn_with_ties_and_empty_classes(seed: int) -> None:
    scores, labels = _random_multi_label(seed)
    per_class = metrics.per_class_average_precision(scores, labels)
    for c in range(scores.shape[1]):
        if c == 3:
            assert math.isnan(per_class[c])
        else:
            expected = skm.average_precision_score(labels[:, c], scores[:, c])
            assert per_class[c] == pytest.approx(expected, abs=1e-12)
    kept = [c for c in range(scores.shape[1]) if c != 3]
    expected_map = skm.average_precision_score(labels[:, kept], scores[:, kept], average="macro")
    assert metrics.mean_average_precision(scores, labels) == pytest.approx(expected_map, abs=1e-12)
    assert metrics.auc_pr(scores, labels, average="macro") == pytest.approx(expected_map, abs=1e-12)
    micro = skm.average_precision_score(labels, scores, average="micro")
    assert metrics.auc_pr(scores, labels, average="micro") == pytest.approx(micro, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_roc_auc_and_d_prime_match_sklearn_and_scipy(seed: int) -> None:
    from scipy.stats import norm

    scores, labels = _random_multi_label(seed)
    both = [c for c in range(scores.shape[1]) if c not in (3, 5)]  # 3: no pos, 5: no neg
    expected = skm.roc_auc_score(labels[:, both], scores[:, both], average="macro")
    auc = metrics.roc_auc(scores, labels)
    assert auc == pytest.approx(expected, abs=1e-12)
    assert metrics.d_prime(auc) == pytest.approx(math.sqrt(2) * norm.ppf(auc), abs=1e-9)


def test_hand_computed_small_cases() -> None:
    # Ranking 1, 0, 1, 0: AP = 1/2 * 1 + 1/2 * 2/3.
    scores = np.array([[0.9], [0.8], [0.7], [0.6]])
    assert metrics.mean_average_precision(scores, [[1], [0], [1], [0]]) == pytest.approx(5 / 6)
    # Tie between a positive and a negative at 0.5: one threshold, P = 2/3 at R = 1.
    tied = np.array([[0.9], [0.5], [0.5], [0.1]])
    labels = np.array([[1], [1], [0], [0]])
    assert metrics.mean_average_precision(tied, labels) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # ROC: pairs (pos, neg) won 1, 1, 1/2 (tie), 1 -> 3.5 / 4.
    assert metrics.roc_auc(tied, labels) == pytest.approx(0.875)
    assert metrics.d_prime(0.5) == pytest.approx(0.0)
    perfect = metrics.d_prime(1.0)
    assert math.isfinite(perfect) and perfect == pytest.approx(6.7, abs=0.1)
    assert metrics.d_prime(0.0) == pytest.approx(-perfect)


def test_accuracy_and_top_k() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    ids = np.array([1, 1, 0, 0])  # right, 2nd, 3rd, tied with class 1
    assert metrics.accuracy(scores, ids) == pytest.approx(0.25)
    assert metrics.top_k_accuracy(scores, ids, k=2) == pytest.approx(0.75)  # tie is a miss at k=1
    assert metrics.top_k_accuracy(scores, np.eye(3)[ids], k=3) == pytest.approx(1.0)
    assert metrics.accuracy(np.zeros((4, 3)), ids) == 0.0  # constant output gets no lucky hits


def test_accuracy_matches_sklearn_on_random_scores() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((200, 10))
    ids = rng.integers(0, 10, size=200)
    assert metrics.accuracy(scores, ids) == pytest.approx(
        skm.accuracy_score(ids, scores.argmax(axis=1))
    )
    for k in (2, 5):
        expected = skm.top_k_accuracy_score(ids, scores, k=k, labels=np.arange(10))
        assert metrics.top_k_accuracy(scores, ids, k=k) == pytest.approx(expected)


def test_aggregate_windows_on_clips_of_3_3_1_and_2_seconds() -> None:
    rate = 16000
    durations = [3.3, 1.0, 2.0]
    counts = [num_windows(int(d * rate), window=rate, hop=rate // 2) for d in durations]
    assert counts == [6, 1, 3]
    clip_index = np.repeat(np.arange(3), counts)  # windows in clip order
    rng = np.random.default_rng(0)
    window_scores = rng.random((len(clip_index), 4))
    shuffled = rng.permutation(len(clip_index))  # order of windows must not matter
    clips = metrics.aggregate_windows(window_scores[shuffled], clip_index[shuffled])
    assert clips.shape == (3, 4)
    np.testing.assert_allclose(clips[0], window_scores[:6].mean(axis=0))
    np.testing.assert_allclose(clips[1], window_scores[6])
    np.testing.assert_allclose(clips[2], window_scores[7:].mean(axis=0))


def test_aggregate_windows_rejects_missing_and_bad_indices() -> None:
    scores = np.ones((3, 2))
    with pytest.raises(DataError, match=r"clips have no window \(first: \[1\]\)"):
        metrics.aggregate_windows(scores, np.array([0, 2, 2]))
    with pytest.raises(DataError, match="no window"):
        metrics.aggregate_windows(scores, np.array([0, 1, 1]), num_clips=4)
    with pytest.raises(DataError, match="Expected clip_index in"):
        metrics.aggregate_windows(scores, np.array([0, -1, 1]))
    with pytest.raises(DataError, match="has 2 entries"):
        metrics.aggregate_windows(scores, np.array([0, 1]))
    with pytest.raises(DataError, match="as integers"):
        metrics.aggregate_windows(scores, np.array([0.0, 1.0, 1.0]))


def test_evaluate_scores_single_label_is_json_ready_and_consistent() -> None:
    rng = np.random.default_rng(4)
    scores = rng.random((40, 8))
    ids = np.r_[np.arange(7), rng.integers(0, 7, size=33)]  # class 7 never occurs
    result = metrics.evaluate_scores(scores, ids, multi_label=False, top_k=5)
    json.dumps(result, allow_nan=False)
    one_hot = np.eye(8)[ids]
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(ids, scores.argmax(axis=1)))
    assert result["top_5_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(ids, scores, k=5, labels=np.arange(8))
    )
    assert result["map"] == pytest.approx(
        skm.average_precision_score(one_hot[:, :7], scores[:, :7], average="macro")
    )
    assert result["macro_auc_pr"] == result["map"]
    assert result["micro_auc_pr"] == pytest.approx(
        skm.average_precision_score(one_hot, scores, average="micro")
    )
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(one_hot[:, :7], scores[:, :7]))
    assert result["per_class_ap"][7] is None and len(result["per_class_ap"]) == 8
    assert (result["num_examples"], result["num_classes"]) == (40, 8)
    assert result["num_classes_with_positives"] == 7


def test_confusion_matrix_matches_sklearn() -> None:
    rng = np.random.default_rng(8)
    scores = rng.random((50, 6))
    ids = np.r_[np.arange(5), rng.integers(0, 5, size=45)]  # class 5 never true
    scores[:, 5] = 0.0
    scores[:3, 5] = 2.0  # ... but predicted three times
    expected = skm.confusion_matrix(ids, scores.argmax(axis=1), labels=np.arange(6))
    np.testing.assert_array_equal(metrics.confusion_matrix(scores, ids), expected)
    np.testing.assert_array_equal(metrics.confusion_matrix(scores, np.eye(6)[ids]), expected)
    result = metrics.evaluate_scores(scores, ids, multi_label=False)
    assert result["confusion_matrix"] == expected.tolist()
    assert all(type(count) is int for row in result["confusion_matrix"] for count in row)
    assert result["confusion_matrix"][5] == [0] * 6 and expected[:, 5].sum() == 3
    # Tied maxima: arg-max takes the first class, accuracy counts the tie as an error.
    tied = metrics.evaluate_scores(
        np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([0, 1]), multi_label=False
    )
    assert tied["confusion_matrix"] == [[1, 0], [0, 1]] and tied["accuracy"] == 0.5
    with pytest.raises(DataError, match=r"class ids in \[0, 5\]"):
        metrics.confusion_matrix(scores, np.full(50, 6))


def test_evaluate_scores_multi_label_and_undefined_roc() -> None:
    scores, labels = _random_multi_label(5)
    result = metrics.evaluate_scores(scores, labels, multi_label=True)
    json.dumps(result, allow_nan=False)
    assert "accuracy" not in result and "confusion_matrix" not in result
    assert result["map"] == pytest.approx(metrics.mean_average_precision(scores, labels))
    assert result["d_prime"] == pytest.approx(metrics.d_prime(result["roc_auc"]))
    all_positive = metrics.evaluate_scores(scores, np.ones_like(labels), multi_label=True)
    assert all_positive["roc_auc"] is None and all_positive["d_prime"] is None
    assert all_positive["map"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.mean_average_precision(np.ones((3, 2)), np.ones((3, 3))), "shape"),
        (lambda: metrics.mean_average_precision(np.ones((2, 2)), [[0.4, 1], [0, 1]]), "binary"),
        (lambda: metrics.mean_average_precision(np.ones((2, 2)), np.zeros((2, 2))), "undefined"),
        (lambda: metrics.auc_pr(np.ones((2, 2)), np.zeros((2, 2))), "no label is positive"),
        (lambda: metrics.auc_pr(np.ones((2, 2)), np.ones((2, 2)), average="weighted"), "micro"),
        (lambda: metrics.roc_auc(np.full((2, 2), np.nan), np.ones((2, 2))), "NaN"),
        (lambda: metrics.accuracy(np.ones(3), np.zeros(3, int)), r"\[N, C\]"),
        (lambda: metrics.accuracy(np.ones((2, 3)), np.array([0, 3])), r"class ids in \[0, 2\]"),
        (lambda: metrics.accuracy(np.ones((2, 3)), np.zeros((2, 3))), "row 0 has none"),
        (lambda: metrics.accuracy(np.ones((2, 3)), np.array([0.0, 1.0])), "int class ids"),
        (lambda: metrics.top_k_accuracy(np.ones((2, 3)), np.array([0, 1]), k=4), "k in"),
        (lambda: metrics.d_prime(1.5), r"AUC in \[0, 1\]"),
    ],
)
def test_bad_inputs_raise_data_error(call, message: str) -> None:
    with pytest.raises(DataError, match=message):
        call()


def _tiny_tagger(num_classes: int):
    from lean_kd._keras import keras

    inputs = keras.Input((4,))
    logits = keras.layers.Dense(num_classes, name="head")(inputs)
    embeddings = keras.layers.Dense(2, name="embed")(inputs)
    return keras.Model(inputs, {"logits": logits, "embeddings": embeddings})


def test_keras_metrics_equal_numpy_inside_evaluate_and_fit() -> None:
    from lean_kd._keras import keras
    from lean_kd.training.keras_metrics import AUCPR, MeanAveragePrecision

    rng = np.random.default_rng(6)
    x = rng.normal(size=(37, 4)).astype("float32")  # 37: a partial last batch
    y = (rng.random((37, 3)) < 0.4).astype("float32")
    model = _tiny_tagger(3)
    model.compile(
        optimizer="adam",
        loss={"logits": keras.losses.BinaryCrossentropy(from_logits=True)},
        metrics={"logits": [MeanAveragePrecision(), AUCPR(), AUCPR(name="macro", average="macro")]},
    )
    result = model.evaluate(x, {"logits": y}, batch_size=8, verbose=0, return_dict=True)
    probabilities = 1.0 / (1.0 + np.exp(-model.predict(x, verbose=0)["logits"]))
    expected_map = metrics.mean_average_precision(probabilities, y)
    by_suffix = {key.split("_", 1)[1]: value for key, value in result.items() if "_" in key}
    assert by_suffix["map"] == pytest.approx(expected_map, abs=1e-6)
    assert by_suffix["macro"] == pytest.approx(expected_map, abs=1e-6)
    assert by_suffix["auc_pr"] == pytest.approx(metrics.auc_pr(probabilities, y), abs=1e-6)
    history = model.fit(
        x, {"logits": y}, validation_data=(x, {"logits": y}), epochs=1, batch_size=8, verbose=0
    )
    val_probabilities = 1.0 / (1.0 + np.exp(-model.predict(x, verbose=0)["logits"]))
    val_map = [v for k, v in history.history.items() if k.startswith("val_") and k.endswith("map")]
    assert val_map[0][0] == pytest.approx(
        metrics.mean_average_precision(val_probabilities, y), abs=1e-6
    )


def test_keras_metrics_softmax_reset_nan_and_config() -> None:
    from lean_kd._keras import keras
    from lean_kd.training.keras_metrics import AUCPR, MeanAveragePrecision

    metric = AUCPR(name="val_pr", activation="softmax")
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.5]], np.float32)
    labels = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    metric.update_state(labels, logits)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert float(metric.result()) == pytest.approx(metrics.auc_pr(softmax, labels), abs=1e-6)
    metric.reset_state()
    assert math.isnan(float(metric.result()))  # empty: undefined, not an error
    metric.update_state(np.zeros((2, 2)), logits[:2])
    assert math.isnan(float(metric.result()))  # no positive yet
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, AUCPR)
    assert restored.get_config() == {
        "name": "val_pr",
        "dtype": "float32",
        "activation": "softmax",
        "average": "micro",
    }
    mixup = MeanAveragePrecision(activation="linear")
    mixup.update_state(np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([[0.9, 0.5], [0.6, 0.4]]))
    assert float(mixup.result()) == pytest.approx(0.75)  # soft labels >= 0.5 are positives


def test_keras_metrics_reject_bad_options() -> None:
    from lean_kd.training.keras_metrics import AUCPR, MeanAveragePrecision

    with pytest.raises(ConfigError, match="Unknown activation 'relu'"):
        MeanAveragePrecision(activation="relu")
    with pytest.raises(ConfigError, match="'micro' or 'macro'"):
        AUCPR(average="samples")
    with pytest.raises(ConfigError, match="sample weights"):
        MeanAveragePrecision().update_state(np.ones((1, 2)), np.ones((1, 2)), np.ones(1))
    with pytest.raises(DataError, match="expected y_true of shape"):
        MeanAveragePrecision().update_state(np.ones((1, 3)), np.ones((1, 2)))


def test_numpy_metrics_do_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, lean_kd_runtime.metrics; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_MIRRORED_SCRIPT = """
import json, numpy as np
from lean_kd._keras import keras, tf
from lean_kd_runtime import metrics
from lean_kd.training.keras_metrics import AUCPR, MeanAveragePrecision
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
rng = np.random.default_rng(7)
x = rng.normal(size=(37, 4)).astype("float32")
y = (rng.random((37, 3)) < 0.4).astype("float32")
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[MeanAveragePrecision(), AUCPR()])
got = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
p = 1 / (1 + np.exp(-model.predict(x, verbose=0)))
print(json.dumps({"got": [got["map"], got["auc_pr"]],
                  "expected": [metrics.mean_average_precision(p, y), metrics.auc_pr(p, y)]}))
"""


@pytest.mark.heavy
def test_keras_metrics_gather_all_replicas_under_mirrored_strategy() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT], capture_output=True, text=True, check=True
    )
    values = json.loads(out.stdout.strip().splitlines()[-1])
    assert values["got"] == pytest.approx(values["expected"], abs=1e-6)


def test_top1_hit_rate_counts_a_best_class_among_the_labels() -> None:
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    single = np.eye(3)[[0, 2, 0]]  # clip 2 is wrong
    multi = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]])  # clip 3's best class is not a label
    assert metrics.top1_hit_rate(scores, single) == pytest.approx(metrics.accuracy(scores, single))
    assert metrics.top1_hit_rate(scores, multi) == pytest.approx(2 / 3)
