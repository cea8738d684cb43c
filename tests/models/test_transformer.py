"""AST-style Transformer teacher: patch grid, sizes, tokens, parameter count, training, reload."""

import numpy as np
import pytest
from zoo_helpers import assert_learns, assert_reloads, synth_fixture

from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.errors import ConfigError
from lean_kd.models.contract import ModelSpec, check_model
from lean_kd.models.transformer import SIZES, ASTConfig, build_ast, patch_grid

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

synth = synth_fixture  # the tiny synthetic dataset, one per session

SPEC = ModelSpec(num_classes=3, num_samples=16000)  # 1 s: 98 frames x 64 mel bins


def expected_parameters(dim, depth, tokens, classes, extra=0, mlp=4):
    """Weights of the AST graph, counted from its parts."""
    patch = 16 * 16 * dim + dim
    positions = (tokens + extra) * dim
    block = (
        2 * 2 * dim
        + 4 * (dim * dim + dim)
        + (dim * mlp * dim + mlp * dim)
        + (mlp * dim * dim + dim)
    )
    return patch + extra * dim + positions + depth * block + 2 * dim + dim * classes + classes


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(shifted_seed(0))
    return build_ast(SPEC, ASTConfig(size="tiny", depth=2))


def test_sizes_table():
    assert SIZES == {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12)}
    small = ASTConfig(size="small")
    assert (small.embed_dim, small.num_layers, small.num_heads) == (384, 12, 6)
    assert ASTConfig(size="base", depth=2).num_layers == 2


def test_overlapping_patch_grid():
    # (98 - 16) // 10 + 1 = 9 patches in time, (64 - 16) // 10 + 1 = 5 in frequency
    assert patch_grid(98, 64, ASTConfig()) == (9, 5)
    assert patch_grid(48, 128, ASTConfig(patch_stride=16)) == (3, 8)


def test_parameter_count_and_outputs(model):
    assert model.count_params() == expected_parameters(192, 2, 45, 3)
    assert model.get_layer("position_embedding").positions.shape == (1, 45, 192)
    assert model.output["sequence"].shape.as_list() == [None, 9, 192]
    assert model.output["embeddings"].shape.as_list() == [None, 192]
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)


def test_mean_pooling_is_the_mean_of_patch_tokens(model):
    probe = keras.Model(
        model.input, [model.get_layer("encoder_norm").output, model.output["embeddings"]]
    )
    tokens, embeddings = probe(
        np.random.default_rng(0).normal(0, 0.1, [2, 16000]).astype(np.float32)
    )
    np.testing.assert_allclose(embeddings, tokens.numpy().mean(axis=1), atol=1e-5)


def test_class_tokens_pooling_uses_the_tokens():
    config = ASTConfig(dim=32, depth=1, heads=2, class_tokens=2, pooling="tokens")
    model = build_ast(SPEC, config)
    assert model.count_params() == expected_parameters(32, 1, 45, 3, extra=2)
    probe = keras.Model(model.input, [model.get_layer("encoder_norm").output, model.output])
    tokens, outputs = probe(np.random.default_rng(0).normal(0, 0.1, [2, 16000]).astype(np.float32))
    tokens = tokens.numpy()
    assert tokens.shape == (2, 47, 32)
    np.testing.assert_allclose(outputs["embeddings"], tokens[:, :2].mean(axis=1), atol=1e-5)
    grid = tokens[:, 2:].reshape(2, 9, 5, 32)  # patch tokens, time-major
    np.testing.assert_allclose(outputs["sequence"], grid.mean(axis=2), atol=1e-5)
    check_model(model)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": "huge"}, r"Unknown AST size 'huge'; expected one of \['base', 'small', 'tiny'\]"),
        ({"dim": 100, "heads": 3}, "dim 100 must be divisible by heads 3"),
        ({"class_tokens": 3}, "class_tokens must be 0, 1 or 2, got 3"),
        ({"pooling": "tokens"}, "pooling must be 'mean', or 'tokens' with class_tokens > 0"),
        ({"patch_stride": 0}, "patch_stride must be > 0, got 0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        ASTConfig(**options)


def test_input_too_short_for_one_patch():
    with pytest.raises(ConfigError, match="at least 16 frames and mel bins, got 8 x 64"):
        build_ast(ModelSpec(3, num_samples=1520), ASTConfig(depth=1))


def test_trains_and_reloads(model, synth, tmp_path):
    assert_learns(model, synth, steps=8, learning_rate=2e-5)  # no warm-up: keep the rate low
    assert_reloads(model, tmp_path / "ast")
