"""The probe's classifier: standardisation, single- and multi-label fits, save / load, bad input.

Plain numpy data (no TensorFlow): Gaussian classes whose means lie 6 standard deviations apart
are separable with room to spare, so held-out accuracy 1.0 was measured on every seed tried
(0-9); the tests ask for 0.9.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from lean_kd.errors import ConfigError, DataError
from lean_kd.probe.classifier import LinearProbe
from lean_kd_runtime.metrics import accuracy, mean_average_precision


def gaussian_classes(seed: int, *, classes: int = 3, per_class: int = 20, dims: int = 12):
    """(features [N, dims], one-hot [N, classes]): class c centred at 6 on axis c."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(classes), per_class)
    features = rng.normal(size=(len(ids), dims))
    features[np.arange(len(ids)), ids] += 6.0
    return features, np.eye(classes)[ids]


def test_single_label_probe_learns_separable_classes_and_scores_sum_to_one():
    train_x, train_y = gaussian_classes(0)
    test_x, test_y = gaussian_classes(1)
    probe = LinearProbe.fit(train_x, train_y, multi_label=False)
    scores = probe.scores(test_x)
    assert scores.shape == (60, 3) and np.allclose(scores.sum(axis=1), 1.0)
    assert accuracy(scores, test_y.argmax(axis=1)) >= 0.9


def test_standardisation_makes_feature_units_irrelevant():
    x, y = gaussian_classes(2)
    scale = np.geomspace(1e-3, 1e3, x.shape[1])  # one feature in mV, another in kV
    plain = LinearProbe.fit(x, y, multi_label=False)
    scaled = LinearProbe.fit(x * scale, y, multi_label=False)
    assert np.allclose(scaled.mean, plain.mean * scale)
    assert np.allclose(scaled.scale, plain.scale * scale)
    np.testing.assert_allclose(scaled.scores(x * scale), plain.scores(x), atol=1e-5)


def test_class_absent_from_training_scores_zero_and_binary_matches_sklearn():
    x, y = gaussian_classes(3, classes=3)
    y = np.c_[y, np.zeros(len(y))]  # a fourth class without a training clip
    probe = LinearProbe.fit(x, y, multi_label=False)
    assert probe.trained.tolist() == [True, True, True, False]
    assert np.all(probe.scores(x)[:, 3] == 0.0)
    two = y[:, 0] + y[:, 1] > 0  # only classes 0 and 1: sklearn fits one binary row
    binary = LinearProbe.fit(x[two], y[two], multi_label=False)
    z = (x[two] - binary.mean) / binary.scale
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(z, y[two].argmax(axis=1))
    np.testing.assert_allclose(binary.scores(x[two])[:, :2], reference.predict_proba(z), atol=1e-6)


def test_multi_label_one_vs_rest_constant_columns_and_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 6))
    labels = np.c_[x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, np.zeros(80), np.ones(80)].astype(int)
    probe = LinearProbe.fit(x, labels, multi_label=True)
    held_out = rng.normal(size=(80, 6))
    truth = np.c_[held_out[:, 0] > 0, held_out[:, 1] + held_out[:, 2] > 0].astype(int)
    scores = probe.scores(held_out)
    assert probe.trained.tolist() == [True, True, False, False]
    assert mean_average_precision(scores[:, :2], truth) >= 0.9  # measured 0.975-1.0, seeds 0-9
    assert np.all(scores[:, 2] < 1e-8) and np.all(scores[:, 3] > 1 - 1e-8)
    path = tmp_path / "probe.npz"
    probe.save(path, info={"features": "both"})
    loaded = LinearProbe.load(path)
    assert loaded.multi_label and np.array_equal(loaded.scores(held_out), scores)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (np.full((4, 3), np.nan), np.eye(2)[[0, 1, 0, 1]], "NaN or infinite"),
        (np.zeros((4, 3)), np.eye(2)[[0, 1, 0]], "same N"),
        (np.zeros((4, 3)), np.eye(2)[[0, 0, 0, 0]], "at least two classes"),
        (np.zeros((4, 3)), np.full((4, 2), 0.5), "labels of 0 and 1"),
    ],
)
def test_bad_training_data_is_a_data_error(features, labels, message):
    with pytest.raises(DataError, match=message):
        LinearProbe.fit(features, labels, multi_label=False)


def test_bad_settings_features_and_files(tmp_path):
    x, y = gaussian_classes(5)
    with pytest.raises(ConfigError, match="C > 0"):
        LinearProbe.fit(x, y, multi_label=False, C=0.0)
    probe = LinearProbe.fit(x, y, multi_label=False)
    with pytest.raises(DataError, match=r"shape \[N, 12\] \(as in training\), got \(3, 5\)"):
        probe.scores(np.zeros((3, 5)))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(DataError, match="bad.npz: not a probe written by LinearProbe.save"):
        LinearProbe.load(bad)
