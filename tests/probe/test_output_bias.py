"""training.output_bias 'teacher': after distillation the student's class biases are refitted so
that its window probabilities on the clean training clips match the teacher's
(lean_kd.probe.output_bias)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from helpers import shifted_seed, synthetic_yamnet_recipe
from lean_kd.config import PipelineConfig, TrainingSection
from lean_kd.errors import ConfigError
from lean_kd.models import registry
from lean_kd.probe.backbone import model_backbone
from lean_kd.probe.output_bias import bias_shift, fit_output_bias
from lean_kd.probe.windows import clip_key, clip_window_outputs
from lean_kd.run import experiment
from lean_kd.run.recipe import ModelSection

CLASSES = ("siren", "knock", "rain")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_shift_recovers_the_bias_that_separates_student_from_teacher(multi_label):
    """Targets made by adding a known bias to the student's logits: the fit finds that bias
    (up to a constant under softmax, which only differences reach)."""
    rng = np.random.default_rng(shifted_seed(0))
    logits = rng.normal(0, 2, [400, 5])
    true_shift = np.array([1.5, -2.0, 0.3, 0.0, 0.7])
    if multi_label:
        targets = 1 / (1 + np.exp(-(logits + true_shift)))
        expected = true_shift
    else:
        targets = _softmax(logits + true_shift)
        expected = true_shift - true_shift.mean()
    np.testing.assert_allclose(bias_shift(logits, targets, multi_label), expected, atol=1e-3)


def test_a_student_that_already_agrees_needs_no_shift():
    logits = np.random.default_rng(shifted_seed(1)).normal(0, 2, [200, 4])
    np.testing.assert_allclose(bias_shift(logits, _softmax(logits), False), 0, atol=1e-4)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return synthetic_yamnet_recipe(
        tmp_path_factory.mktemp("output_bias"), CLASSES, seed=2,
        pipeline=PipelineConfig(batch_size=4),
        teacher_training=TrainingSection(method="linear_head"),
        student=ModelSection(name="yamnet_teacher", options={"pretrained": False}),
        loss=({"name": "hinton_kd", "temperature": 2.0},),
        training=TrainingSection(epochs=1, steps_per_epoch=1, monitor="none", output_bias="teacher"),
    )  # fmt: skip


def _train_windows(model, index):
    examples = index.split("train")
    windows = clip_window_outputs(examples, backbone=model_backbone(model, name="m", identity="x"))
    return np.concatenate([windows[clip_key(e)].scores for e in examples])


def test_distilling_with_output_bias_teacher_saves_the_student_at_the_fitted_biases(
    recipe, tmp_path, yamnet_tflite
):
    """Where the biases are fitted, the student's mean probability of each class over the
    training windows equals the teacher's (the cross-entropy's gradient in the biases is 0);
    best.keras (monitor none) is the same model."""
    teacher = experiment.train(recipe, tmp_path / "teacher", verbose=0)
    result = experiment.distill(
        recipe, tmp_path / "student", teacher_path=teacher.best_path, verbose=0
    )
    index = experiment.load_data(recipe)
    student = experiment.load_model(result.final_path)
    student_scores = _train_windows(student, index)
    teacher_scores = _train_windows(experiment.load_model(teacher.best_path), index)
    np.testing.assert_allclose(student_scores.mean(0), teacher_scores.mean(0), atol=2e-3)
    assert result.best_path.read_bytes() == result.final_path.read_bytes()
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["trained_biases"]["test"]["map"] >= 0  # the same student before the fit
    # A second fit moves nothing: the saved biases are the fit's optimum.
    (shift,) = fit_output_bias(
        [student], experiment.load_model(teacher.best_path), index, hop_fraction=0.5
    )
    np.testing.assert_allclose(shift, 0, atol=1e-2)


def test_a_student_distilled_from_a_cache_needs_the_teacher_model_too(recipe, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(ConfigError, match="pass --teacher TEACHER.keras"):
        experiment.distill(recipe, tmp_path / "student", cache_dir=cache, verbose=0)


def test_a_teacher_has_no_teacher_to_fit_its_biases_to(recipe, tmp_path):
    bad = dataclasses.replace(
        recipe, teacher_training=TrainingSection(method="linear_head", output_bias="teacher")
    )
    with pytest.raises(ConfigError, match="teacher_training.output_bias must be 'trained'"):
        experiment.train(bad, tmp_path / "teacher", verbose=0)


def test_output_bias_needs_a_classifier_with_a_bias(recipe):
    index = experiment.load_data(recipe)
    model = registry.build("yamnet_teacher", len(CLASSES), pretrained=False, hidden_units=8)
    model.get_layer("classifier").use_bias = False
    with pytest.raises(ConfigError, match="Dense layer named 'classifier' with a bias"):
        fit_output_bias([model], model, index, hop_fraction=0.5)


def test_bad_output_bias_is_a_config_error():
    with pytest.raises(ConfigError, match="training.output_bias must be one of"):
        TrainingSection(output_bias="calibrated")
