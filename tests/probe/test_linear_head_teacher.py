"""teacher_training.method 'linear_head': a frozen backbone whose classifier is a regression
fitted on every evaluation window (lean_kd.probe.teacher)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from helpers import synthetic_yamnet_recipe
from lean_kd.config import PipelineConfig, TrainingSection
from lean_kd.errors import ConfigError
from lean_kd.models import registry
from lean_kd.probe.backbone import model_backbone
from lean_kd.probe.teacher import fit_linear_head, linear_head_members
from lean_kd.probe.windows import clip_key, clip_window_outputs
from lean_kd.run import experiment

CLASSES = ("siren", "knock", "rain")
HEAD = TrainingSection(method="linear_head")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return synthetic_yamnet_recipe(
        tmp_path_factory.mktemp("linear_head"), CLASSES, seed=0,
        pipeline=PipelineConfig(batch_size=8), teacher_training=HEAD,
    )  # fmt: skip


def test_the_keras_teacher_scores_windows_as_the_fitted_regression(recipe, tmp_path):
    index = experiment.load_data(recipe)
    model = experiment.model_from_section(recipe.teacher, recipe, index)
    backbone_before = [w.copy() for w in model.get_layer("layer14/pointwise_conv").get_weights()]
    (probe,) = fit_linear_head(model, index, hop_fraction=0.5, C=0.5)
    windows = clip_window_outputs(
        index.split("test"), backbone=model_backbone(model, name="m", identity="x")
    )
    embeddings = np.concatenate([windows[clip_key(e)].embeddings for e in index.split("test")])
    keras_scores = np.concatenate([windows[clip_key(e)].scores for e in index.split("test")])
    np.testing.assert_allclose(keras_scores, probe.scores(embeddings), atol=1e-4)  # folded weights
    after = model.get_layer("layer14/pointwise_conv").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(backbone_before, after))  # backbone frozen


def test_train_with_linear_head_writes_a_run_folder(recipe, tmp_path):
    result = experiment.train(recipe, tmp_path / "teacher")
    for name in ("best.keras", "final.keras", "history.csv", "metrics.json"):
        assert (tmp_path / "teacher" / name).is_file(), name
    metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert metrics["test"]["num_examples"] > 0 and 0 <= metrics["test"]["map"] <= 1
    reloaded = experiment.load_model(result.best_path)
    assert reloaded.output["logits"].shape[-1] == len(CLASSES)


def test_an_ensemble_gets_one_head_per_member_on_its_own_features(recipe):
    """Members cut at different depths: each head is the regression on its member's windows,
    and the ensemble's logits are the mean of the members' (lean_kd.models.ensemble)."""
    index = experiment.load_data(recipe)
    members = [
        {"model": "yamnet_teacher", "pretrained": "if_available"},
        {"model": "yamnet_teacher", "pretrained": "if_available", "yamnet_blocks": 10},
    ]
    model = registry.build("ensemble", len(CLASSES), members=members)
    probes = fit_linear_head(model, index, hop_fraction=0.5, C=0.5)
    assert [len(p.mean) for p in probes] == [1024, 512]
    waveform = np.random.default_rng(0).uniform(-0.3, 0.3, [3, 16000]).astype(np.float32)
    outputs = model(waveform)
    member_logits = outputs["member_logits"].numpy()  # [B, members, C]
    for k, (member, probe) in enumerate(zip(linear_head_members(model), probes, strict=True)):
        embeddings = member[0](waveform)["embeddings"].numpy()
        np.testing.assert_allclose(member_logits[:, k], probe.logits(embeddings), atol=1e-3)
    np.testing.assert_allclose(outputs["logits"].numpy(), member_logits.mean(1), atol=1e-5)


def test_linear_head_needs_a_classifier_on_the_embeddings(recipe):
    index = experiment.load_data(recipe)
    model = registry.build("yamnet_teacher", 3, pretrained=False, hidden_units=8)
    with pytest.raises(
        ConfigError, match="linear_head' needs a teacher whose logits are one Dense"
    ):
        fit_linear_head(model, index, hop_fraction=0.5, C=0.5)


def test_head_init_starts_gradient_training_from_the_fitted_head(recipe, tmp_path, yamnet_tflite):
    """training.head_init linear_head (LP-FT): the classifier gradient training starts from is
    the regression on the model's window embeddings; one step at a negligible rate keeps it."""
    training = TrainingSection(
        head_init="linear_head", epochs=1, steps_per_epoch=1, learning_rate=1e-9, monitor="none"
    )
    lp_ft = dataclasses.replace(
        recipe, student=recipe.teacher, training=training,
        pipeline=dataclasses.replace(recipe.pipeline, batch_size=4),  # a few training clips
    )  # fmt: skip
    result = experiment.train_student(lp_ft, tmp_path / "lp_ft", verbose=0)
    trained = experiment.load_model(result.final_path).get_layer("classifier").get_weights()
    index = experiment.load_data(recipe)
    fresh = experiment.model_from_section(recipe.teacher, recipe, index)
    random_start = [w.copy() for w in fresh.get_layer("classifier").get_weights()]
    experiment.fit_window_head(fresh, lp_ft, training, index)
    fitted = fresh.get_layer("classifier").get_weights()
    for mine, expected, start in zip(trained, fitted, random_start, strict=True):
        np.testing.assert_allclose(mine, expected, atol=1e-5)
        assert np.abs(expected - start).max() > 1e-2


def test_bad_method_is_a_config_error():
    with pytest.raises(ConfigError, match="training.method must be one of"):
        TrainingSection(method="sgd")
    with pytest.raises(ConfigError, match="training.head_init must be one of"):
        TrainingSection(head_init="probe")
