"""Registry: names, options, errors, recipes, describe, load_model, every model vs the contract."""

import numpy as np
import pytest

from lean_kd._keras import keras
from lean_kd.config import LogMelConfig
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models import registry
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    check_model,
    log_mel_image,
    model_spec,
    pooled_outputs,
    waveform_input,
)
from lean_kd.models.macs import count_macs
from lean_kd.models.registry import build, build_from_recipe, describe, entry, load_model, names

ZOO = [
    "efficientnet_b0",
    "efficientnet_b2",
    "ast_tiny",
    "ast_small",
    "ast_base",
    "mobilenet_v2",
    "ensemble",
]
SMALL = {  # options that keep each model quick to build
    "efficientnet_b0": {"clip_seconds": 0.3},
    "efficientnet_b2": {"clip_seconds": 0.3},
    "ast_tiny": {"depth": 1},
    "ast_small": {"depth": 1},
    "ast_base": {"depth": 1},
    "mobilenet_v2": {"width": 0.35},
    "ensemble": {
        "members": [{"model": "ast_tiny", "depth": 1}, {"model": "mobilenet_v2", "width": 0.35}]
    },
}


def tiny_builder(spec, config, *, name):
    waveform = waveform_input(spec)
    return keras.Model(
        waveform, pooled_outputs(log_mel_image(waveform, spec, config), spec), name=name
    )


def test_zoo_names_are_registered():
    assert set(ZOO) <= set(names())


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"Unknown model 'resnet'; expected one of \[") as error:
        build("resnet", 3)
    assert {"'efficientnet_b0'", "'ensemble'", "'lean_tiny'"} <= set(
        str(error.value).split("[", 1)[1].rstrip("]").split(", ")
    )  # in registration order, which depends on what was imported first


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(
        ConfigError,
        match=r"Model 'ast_tiny': unknown option\(s\) \['depht'\]; expected some of \[.*'depth'",
    ):
        build("ast_tiny", 3, depht=2)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['size'\]"):  # fixed by the name
        build("ast_tiny", 3, size="base")
    with pytest.raises(
        ConfigError, match=r"model 'ast_tiny'.frontend: unknown key\(s\) \['bins'\]"
    ):
        build("ast_tiny", 3, frontend={"bins": 3})


@pytest.mark.parametrize("num_classes", [0, -1])
def test_num_classes_must_be_positive(num_classes):
    with pytest.raises(ConfigError, match=f"num_classes must be an integer > 0, got {num_classes}"):
        build("mobilenet_v2", num_classes)


def test_options_reach_the_model():
    model = build(
        "ast_tiny",
        4,
        depth=1,
        clip_seconds=0.5,
        multi_label=True,
        frontend={"mel_bins": 32},
        name="x",
    )
    assert model.name == "x"
    assert model_spec(model) == ModelSpec(4, 16000, 8000, True)
    assert model.get_layer("log_mel").config == LogMelConfig(mel_bins=32)
    assert model.output["sequence"].shape.as_list() == [
        None,
        4,
        192,
    ]  # 48 frames: (48 - 16) // 10 + 1


def test_defaults_list_every_option():
    defaults = entry("efficientnet_b2").defaults()
    assert defaults["dropout"] == 0.3 and defaults["weights"] is None and "variant" not in defaults
    assert {
        "sample_rate": 16000,
        "clip_seconds": 1.0,
        "multi_label": False,
    }.items() <= defaults.items()
    assert defaults["name"] == "efficientnet_b2"


def test_registering_a_model_is_one_call(monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    registry.register("tiny", tiny_builder, FrontendOptions, description="test model", mel_std=2.0)
    registry.register(
        "tiny", tiny_builder, FrontendOptions, description="test model", mel_std=2.0
    )  # same: fine
    assert entry("tiny").defaults()["mel_std"] == 2.0
    assert check_model(build("tiny", 2)) == ModelSpec(2)
    with pytest.raises(
        ConfigError, match="Model name 'tiny' is already registered by test_registry"
    ):
        registry.register("tiny", tiny_builder, FrontendOptions, description="other")
    with pytest.raises(ConfigError, match="mel_std must be > 0"):
        registry.register(
            "bad", tiny_builder, FrontendOptions, description="bad default", mel_std=0.0
        )


def test_build_from_recipe():
    model = build_from_recipe(
        {"name": "ast_tiny", "options": {"depth": 1, "dim": 32, "heads": 2}}, 3
    )
    assert model.get_layer("patch_embedding").filters == 32
    with pytest.raises(
        ConfigError, match=r"expected keys 'name' and optionally 'options', got \['model'\]"
    ):
        build_from_recipe({"model": "ast_tiny"}, 3)
    with pytest.raises(ConfigError, match="options must be a mapping, got list"):
        build_from_recipe({"name": "ast_tiny", "options": [1]}, 3)


def test_describe_reports_size_cost_and_input():
    spec = ModelSpec(2, num_samples=8000)
    model = tiny_builder(spec, FrontendOptions(), name="tiny")
    info = describe(model)
    macs = 48 * 257 * 64 + 1 * 2  # mel projection of 48 frames + the 1 -> 2 classifier (1 channel)
    assert count_macs(model) == macs
    assert info == {
        "name": "tiny",
        "parameters": 1 * 2 + 2,
        "trainable_parameters": 1 * 2 + 2,
        "macs_per_example": macs,
        "macs_per_second": macs * 2.0,  # 0.5 s per example
        "input": "waveform [B, 8000] float32, 16000 Hz (0.5 s)",
        "num_classes": 2,
        "activation": "softmax",
        "outputs": {"logits": [None, 2], "embeddings": [None, 1], "sequence": [None, 48, 1]},
    }


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_load_model_matches_keras_loader_for_keras_and_h5(tmp_path):
    model = build("ast_tiny", 3, depth=1, dim=16, heads=2)
    x = np.random.default_rng(0).normal(0, 0.1, [1, 16000]).astype(np.float32)
    expected = model(x)["logits"].numpy()
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    for loaded in (
        load_model(tmp_path / "m.keras"),
        load_model(tmp_path / "m.h5"),
        keras.models.load_model(tmp_path / "m.keras", compile=False),
    ):
        np.testing.assert_array_equal(loaded(x)["logits"].numpy(), expected)
    with pytest.raises(ModelError, match=f"Model file {tmp_path}/nope.keras does not exist"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="Cannot load model .*bad.keras"):
        load_model(tmp_path / "bad.keras")


@pytest.mark.heavy
@pytest.mark.parametrize("name", ZOO)  # yamnet_teacher and lean: tested by their own modules
def test_every_registered_model_follows_the_contract(name):
    model = build(name, 3, **SMALL.get(name, {}))
    spec = check_model(model)
    assert spec.num_classes == 3 and model.name == name
    info = describe(model)
    assert info["parameters"] > 0 and info["macs_per_second"] > 0
