"""Ensemble teacher: mean logits, concatenated embeddings, mismatched members, training, reload."""

import numpy as np
import pytest
from zoo_helpers import assert_learns, assert_reloads, synth_fixture

from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.contract import ModelSpec, check_model, model_spec
from lean_kd.models.ensemble import EnsembleConfig, build_ensemble, ensemble
from lean_kd.models.registry import build
from lean_kd.models.transformer import ASTConfig, build_ast

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

synth = synth_fixture  # the tiny synthetic dataset, one per session

SPEC = ModelSpec(num_classes=3, num_samples=16000)
MEMBERS = (
    {"model": "ast_tiny", "dim": 32, "depth": 1, "heads": 2},
    {"model": "ast_tiny", "dim": 16, "depth": 1, "heads": 2},
)


def tiny_ast(name, spec=SPEC, dim=16):
    return build_ast(spec, ASTConfig(dim=dim, depth=1, heads=2), name=name)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(shifted_seed(0))
    return build_ensemble(SPEC, EnsembleConfig(members=MEMBERS))


def test_outputs_average_logits_and_concatenate_embeddings(model):
    assert check_model(model) == SPEC
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert [m.name for m in members] == ["member0_ast_tiny", "member1_ast_tiny"]
    x = np.random.default_rng(0).normal(0, 0.1, [2, 16000]).astype(np.float32)
    out = model(x)
    first, second = (m(x) for m in members)
    np.testing.assert_allclose(out["logits"], (first["logits"] + second["logits"]) / 2, atol=1e-6)
    np.testing.assert_allclose(
        out["embeddings"], np.concatenate([first["embeddings"], second["embeddings"]], 1)
    )
    np.testing.assert_allclose(
        out["member_logits"], np.stack([first["logits"], second["logits"]], 1)
    )
    assert out["embeddings"].shape == (2, 48) and "sequence" not in out


def test_members_must_share_the_spec():
    a = tiny_ast("a")
    with pytest.raises(
        ModelError,
        match=r"expected ModelSpec\(num_classes=3, sample_rate=16000, num_samples=16000"
        r".*got b: ModelSpec\(num_classes=4",
    ):
        ensemble([a, tiny_ast("b", ModelSpec(4, num_samples=16000))])
    with pytest.raises(
        ModelError, match=r"got c: ModelSpec\(num_classes=3, sample_rate=16000, num_samples=12000"
    ):
        ensemble([a, tiny_ast("c", ModelSpec(3, num_samples=12000))])


def test_member_names_and_count():
    a = tiny_ast("same")
    with pytest.raises(ModelError, match=r"unique names, got \['same', 'same'\]"):
        ensemble([a, tiny_ast("same")])
    with pytest.raises(ModelError, match="at least 2 models, got 1"):
        ensemble([a])
    with pytest.raises(ConfigError, match="at least 2 members, got 1"):
        EnsembleConfig(members=("ast_tiny",))
    with pytest.raises(ConfigError, match="a model name or a mapping with 'model'"):
        EnsembleConfig(members=("ast_tiny", {"dim": 3}))


def test_members_cannot_change_the_shared_spec():
    with pytest.raises(
        ConfigError, match=r"Ensemble member 'ast_tiny' cannot set \['sample_rate'\]"
    ):
        build("ensemble", 3, members=["ast_tiny", {"model": "ast_tiny", "sample_rate": 8000}])


def test_registry_passes_the_spec_to_members():
    model = build("ensemble", 2, clip_seconds=0.5, multi_label=True, members=MEMBERS)
    assert model_spec(model) == ModelSpec(2, 16000, 8000, True)


def test_trains_and_reloads(model, synth, tmp_path):
    assert_learns(model, synth, steps=8, learning_rate=2e-5)
    assert_reloads(model, tmp_path / "ensemble")
