"""EfficientNet teacher: flat graph, identity preprocessing, weight resolution, training, reload."""

import logging
import shutil

import numpy as np
import pytest
from zoo_helpers import assert_learns, assert_reloads, synth_fixture

from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.audio.features import YAMNET_PRESET, log_mel
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.cnn import (
    EfficientNetConfig,
    build_efficientnet,
    keras_cache_file,
    resolve_weights,
)
from lean_kd.models.contract import ModelSpec

synth = synth_fixture  # the tiny synthetic dataset, one per session

SPEC = ModelSpec(num_classes=3, num_samples=8000)  # 0.5 s: 48 frames, a 2 x 2 final feature map
CONFIG = EfficientNetConfig(dropout=0.0, mel_mean=-2.0, mel_std=4.0)
pytestmark = [
    pytest.mark.heavy,
    pytest.mark.trains,
]  # EfficientNet-B0: 4 M parameters, ~10 s per build on 2 cores


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(shifted_seed(0))
    return build_efficientnet(SPEC, CONFIG, name="b0")


def stem_input(model, waveform):
    """What EfficientNet's first conv sees (after its Rescaling and Normalization layers)."""
    return keras.Model(model.input, model.get_layer("stem_conv_pad").input)(waveform).numpy()


def test_flat_functional_graph(model):
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    names = {layer.name for layer in model.layers}
    assert {
        "log_mel",
        "stem_conv",
        "block1a_dwconv",
        "top_conv",
        "classifier",
        "model_spec",
    } <= names
    assert model.output["sequence"].shape.as_list() == [None, 2, 1280]
    assert model.output["embeddings"].shape.as_list() == [None, 1280]
    # B0 trunk (4,049,571 with its Normalization's 7 values) + a 3-class head
    assert model.count_params() == 4_049_571 + 1280 * 3 + 3


def test_preprocessing_is_identity_on_the_standardised_log_mel(model):
    x = np.random.default_rng(0).uniform(-0.3, 0.3, [2, 8000]).astype(np.float32)
    expected = (log_mel(x, YAMNET_PRESET).numpy() + 2.0) / 4.0  # [2, 48, 64]
    np.testing.assert_allclose(
        stem_input(model, x), np.repeat(expected[..., None], 3, axis=-1), atol=1e-4
    )


def test_imagenet_weights_come_from_the_keras_cache(model, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = keras_cache_file("efficientnetb0_notop.h5")
    assert cache == tmp_path / "models" / "efficientnetb0_notop.h5"
    trunk = keras.Model(model.input, model.get_layer("top_activation").output)
    cache.parent.mkdir()
    trunk.save_weights(cache)  # stands in for the ImageNet file (same layers, same order)
    with caplog.at_level(logging.INFO, logger="lean_kd.models.cnn"):
        loaded = build_efficientnet(
            SPEC, EfficientNetConfig(weights="imagenet", dropout=0.0, mel_mean=-2.0, mel_std=4.0)
        )
    assert f"ImageNet init from {cache}" in caplog.text
    for name in ("stem_conv", "block3b_project_conv", "top_bn"):
        for ours, theirs in zip(  # noqa: B905 (same layer, same weight count)
            model.get_layer(name).get_weights(), loaded.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(ours, theirs)
    x = np.random.default_rng(1).uniform(-0.3, 0.3, [1, 8000]).astype(np.float32)
    np.testing.assert_allclose(
        stem_input(loaded, x), stem_input(model, x), atol=1e-6
    )  # RGB stats undone
    shutil.copy(cache, tmp_path / "mine.h5")
    assert (
        resolve_weights(EfficientNetConfig(weights=str(tmp_path / "mine.h5")))
        == tmp_path / "mine.h5"
    )


def test_missing_imagenet_file_falls_back_to_random_init_with_a_warning(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="lean_kd.models.cnn"):
        assert resolve_weights(EfficientNetConfig(variant="b2", weights="imagenet")) is None
        assert resolve_weights(EfficientNetConfig()) is None
    assert (
        f"ImageNet weights not found at {tmp_path}/models/efficientnetb2_notop.h5; "
        "using RANDOM init" in caplog.text
    )
    assert "EfficientNet-B0: random init (weights=None)" in caplog.text


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"variant": "b9"},
            ConfigError,
            r"Unknown EfficientNet variant 'b9'; expected one of \['b0'",
        ),
        ({"channels": 2}, ConfigError, "channels must be 1 or 3, got 2"),
        ({"channels": 1, "weights": "imagenet"}, ConfigError, "need channels=3, got channels=1"),
        ({"dropout": -0.1}, ConfigError, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        EfficientNetConfig(**options)


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(
        ModelError, match=f"EfficientNet weights file {tmp_path}/nope.h5 does not exist"
    ):
        resolve_weights(EfficientNetConfig(weights=str(tmp_path / "nope.h5")))


def test_trains_and_reloads(model, synth, tmp_path):
    assert_learns(model, synth, steps=2)
    assert_reloads(model, tmp_path / "b0")
