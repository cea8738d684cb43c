"""The model contract: spec, waveform checks, frontend helpers, output checks, spec after reload."""

import dataclasses

import numpy as np
import pytest

from lean_kd._keras import keras
from lean_kd.audio.features import YAMNET_PRESET, log_mel
from lean_kd.errors import AudioInputError, ConfigError, ModelError
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    check_model,
    check_waveform,
    contract_outputs,
    frontend_config,
    log_mel_image,
    model_spec,
    pooled_outputs,
    waveform_input,
)

SPEC = ModelSpec(num_classes=3, sample_rate=16000, num_samples=8000)


def tiny_model(spec=SPEC, *, logits_units=None, name="tiny"):
    """A minimal contract model: log-mel -> mean over time -> Dense."""
    waveform = waveform_input(spec)
    image = log_mel_image(waveform, spec, FrontendOptions())
    if logits_units is None:
        return keras.Model(waveform, pooled_outputs(image, spec), name=name)
    embeddings = keras.layers.GlobalAveragePooling2D()(image)  # break the contract on purpose:
    logits = keras.layers.Dense(logits_units)(embeddings)  # logits_units != spec.num_classes
    return keras.Model(
        waveform, contract_outputs(spec, logits=logits, embeddings=embeddings), name=name
    )


def test_spec_from_seconds_and_derived_values():
    spec = ModelSpec.from_seconds(5, sample_rate=16000, clip_seconds=0.5, multi_label=True)
    assert spec == ModelSpec(5, 16000, 8000, True)
    assert spec.seconds == 0.5 and spec.activation == "sigmoid"
    assert ModelSpec(5).activation == "softmax"
    assert spec.describe_input() == "waveform [B, 8000] float32, 16000 Hz (0.5 s)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes must be an integer > 0, got 0"),
        ({"num_classes": -2}, "num_classes must be an integer > 0, got -2"),
        ({"num_classes": 2.5}, "num_classes must be an integer > 0, got 2.5"),
        ({"num_classes": 2, "sample_rate": 0}, "sample_rate must be an integer > 0, got 0"),
        ({"num_classes": 2, "num_samples": 0}, "num_samples must be an integer > 0, got 0"),
    ],
)
def test_bad_spec_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelSpec(**kwargs)


def test_bad_clip_seconds():
    with pytest.raises(ConfigError, match="clip_seconds must be > 0, got 0"):
        ModelSpec.from_seconds(3, clip_seconds=0)


def test_check_waveform_accepts_a_batch_and_returns_float32():
    batch = np.zeros([4, 8000], np.float64)
    out = check_waveform(batch, SPEC)
    assert out.dtype == np.float32 and out.shape == (4, 8000)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (8000,),
            r"Expected a waveform batch of rank 2 \[batch, 8000\] \(0.5 s at 16000 Hz\), "
            "got rank 1",
        ),
        ((1, 1, 8000), r"rank 2 \[batch, 8000\].*got rank 3"),
        ((2, 16000), r"Expected a waveform batch \[batch, 8000\].*got 16000 samples"),
    ],
)
def test_check_waveform_names_the_expected_shape(shape, message):
    with pytest.raises(AudioInputError, match=message):
        check_waveform(np.zeros(shape, np.float32), SPEC)


def test_check_waveform_rejects_ints_and_nan():
    with pytest.raises(AudioInputError, match="floating-point"):
        check_waveform(np.zeros([1, 8000], np.int16), SPEC)
    bad = np.zeros([1, 8000], np.float32)
    bad[0, 3] = np.nan
    with pytest.raises(AudioInputError, match="1 sample"):
        check_waveform(bad, SPEC)


def test_frontend_defaults_to_yamnet_preset_at_the_model_rate():
    assert frontend_config(FrontendOptions(), SPEC) == YAMNET_PRESET
    spec = dataclasses.replace(SPEC, sample_rate=32000)
    assert frontend_config(FrontendOptions(), spec).sample_rate == 32000


def test_frontend_rate_mismatch_and_too_short_input():
    with pytest.raises(
        ConfigError, match="frontend sample_rate to equal the model sample_rate 16000, got 32000"
    ):
        frontend_config(
            FrontendOptions(frontend=dataclasses.replace(YAMNET_PRESET, sample_rate=32000)), SPEC
        )
    with pytest.raises(
        ConfigError, match="at least 400 samples for one log-mel frame, got num_samples 100"
    ):
        frontend_config(FrontendOptions(), ModelSpec(3, num_samples=100))
    with pytest.raises(ConfigError, match="mel_std must be > 0"):
        FrontendOptions(mel_std=0)


def test_log_mel_image_is_the_standardised_log_mel():
    waveform = waveform_input(SPEC)
    options = FrontendOptions(mel_mean=-2.0, mel_std=4.0)
    model = keras.Model(waveform, log_mel_image(waveform, SPEC, options))
    x = np.random.default_rng(1).uniform(-0.3, 0.3, [2, 8000]).astype(np.float32)
    expected = (log_mel(x, YAMNET_PRESET).numpy() + 2.0) / 4.0
    np.testing.assert_allclose(model(x).numpy()[..., 0], expected, atol=1e-5)
    assert model.output.shape.as_list() == [None, 48, 64, 1]


def test_pooled_outputs_are_means_over_frequency_then_time():
    features = keras.Input(shape=(3, 2, 4))
    outputs = pooled_outputs(features, SPEC)
    model = keras.Model(features, outputs)
    x = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    result = model(x)
    np.testing.assert_allclose(result["sequence"], x.mean(axis=2))
    np.testing.assert_allclose(result["embeddings"], x.mean(axis=(1, 2)), rtol=1e-6)
    dense = model.get_layer("classifier")
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(result["logits"], x.mean(axis=(1, 2)) @ kernel + bias, rtol=1e-5)


def test_contract_model_passes_the_check_and_keeps_its_spec(tmp_path):
    model = tiny_model()
    assert check_model(model) == SPEC
    assert model.input_names == ["waveform"]
    model.save(tmp_path / "tiny.keras")
    assert model_spec(keras.models.load_model(tmp_path / "tiny.keras")) == SPEC


def test_check_model_rejects_wrong_logits_and_missing_parts():
    with pytest.raises(ModelError, match=r"expected logits shape \[None, 3\], got \[None, 5\]"):
        check_model(tiny_model(logits_units=5))
    waveform = keras.Input(shape=(8000,), name="waveform")
    plain = keras.Model(waveform, keras.layers.Dense(3)(waveform), name="plain")
    with pytest.raises(ModelError, match="Model 'plain' has no 'model_spec' layer"):
        check_model(plain)
    listed = keras.Model(
        waveform,
        [
            contract_outputs(SPEC, logits=keras.layers.Dense(3)(waveform), embeddings=waveform)[
                "logits"
            ]
        ],
    )
    with pytest.raises(
        ModelError, match=r"expected a dict of outputs with \['logits', 'embeddings'\]"
    ):
        check_model(listed, run=False)
