"""LEAN: parameter budget, branch values, ablation graphs, pretrained branch, training."""

import numpy as np
import pytest
from zoo_helpers import assert_learns, assert_reloads, synth_fixture

from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.audio.features import LogMelSpectrogram
from lean_kd.errors import ConfigError
from lean_kd.models import registry
from lean_kd.models.contract import ModelSpec, check_model
from lean_kd.models.lean import LEANConfig, build_lean
from lean_kd.models.yamnet.network import block_names, weighted_layers, yamnet_backbone
from lean_kd.models.yamnet.weights import load_yamnet_weights

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`
synth = synth_fixture  # the tiny synthetic dataset, one per session

SPEC = ModelSpec(num_classes=3)
MAX_PARAMETERS = 4_800_000  # the LEAN paper's footprint: int8 TFLite within 4.5 MB
YAMNET_BACKBONE = {1.0: 3_217_344, 0.5: 823_776}  # YAMNet without head (see test_yamnet)
TINY = registry.entry("lean_tiny").defaults()


def expected_parameters(config: LEANConfig, num_classes: int) -> int:
    """LEAN's weights from its options (default direction, both branches, cross-attention)."""
    units, proj, patch = config.lstm_units, config.projection_units, 400
    lstm = 2 * 4 * units * (patch + units + 1)
    lstm += (config.lstm_layers - 1) * 2 * 4 * units * (2 * units + units + 1)
    channels = int(1024 * config.yamnet_width)
    projection = channels * proj + proj
    width = config.attention_heads * config.attention_key_dim
    query, key_value = 2 * units, proj  # wave queries attend to E_yam
    attention = query * width + width + 2 * (key_value * width + width) + width * proj + proj
    classifier = (proj + 2 * units) * num_classes + num_classes
    yamnet = YAMNET_BACKBONE[config.yamnet_width]
    return yamnet + lstm + projection + attention + classifier


def layer_types(model):
    return {type(layer).__name__ for layer in model.layers}


def probe(model, *layer_names):
    """Outputs of ``layer_names`` and of the model on one fixed waveform batch."""
    outputs = {name: model.get_layer(name).output for name in layer_names}
    sub = keras.Model(model.input, {**outputs, **model.output})
    waveform = np.random.default_rng(3).uniform(-0.5, 0.5, [2, 16000]).astype(np.float32)
    return {key: value.numpy() for key, value in sub(waveform, training=False).items()}


def build_tiny(**options):
    keras.utils.set_random_seed(shifted_seed(0))
    return registry.build("lean_tiny", SPEC.num_classes, **options)


@pytest.fixture(scope="module")
def lean_model():
    """The default LEAN; pretrained when $LEAN_KD_YAMNET (tests/conftest.py) names the weights."""
    keras.utils.set_random_seed(shifted_seed(0))
    return build_lean(SPEC, LEANConfig(pretrained="if_available"))


@pytest.fixture(scope="module")
def tiny():
    return build_tiny()


def test_default_lean_fits_the_parameter_budget(lean_model):
    config = LEANConfig()
    assert lean_model.count_params() == expected_parameters(config, 3) == 4_368_067
    yamnet = sum(layer.count_params() for layer in weighted_layers(lean_model).values())
    assert yamnet == YAMNET_BACKBONE[1.0]
    for classes in (200, 527):  # FSD50K, AudioSet
        assert expected_parameters(config, classes) <= MAX_PARAMETERS
    assert expected_parameters(config, 200) == 4_443_912


def test_lean_tiny_is_about_a_quarter(tiny):
    config = LEANConfig(**{k: v for k, v in TINY.items() if k in LEANConfig.__dataclass_fields__})
    assert (config.yamnet_width, config.lstm_units, config.lstm_layers) == (0.5, 64, 1)
    assert not config.pretrained
    assert tiny.count_params() == expected_parameters(config, 3)
    assert 1_000_000 < expected_parameters(config, 200) == 1_174_696 < 1_600_000


def test_default_graph_and_branch_values(lean_model):
    check_model(lean_model)
    assert not any(isinstance(layer, keras.Model) for layer in lean_model.layers)  # flat for QAT
    assert {"Bidirectional", "MultiHeadAttention", "DepthwiseConv2D"} <= layer_types(lean_model)
    assert lean_model.get_layer("log_mel").config.mean_normalize
    attention = lean_model.get_layer("cross_attention")
    assert attention.get_config()["num_heads"] == 4
    assert lean_model.output["sequence"].shape.as_list() == [None, 40, 128 + 256]
    values = probe(lean_model, "wave_encoder/bilstm2", "cross_attention", "yamnet_projection")
    assert values["yamnet_projection"].shape == (2, 4, 128)  # E_yam: 98 frames / 32 -> 4 steps
    # E_combined = concat(realigned E_yam, C_t), embeddings its mean over time
    np.testing.assert_array_equal(values["sequence"][..., :128], values["cross_attention"])
    np.testing.assert_array_equal(values["sequence"][..., 128:], values["wave_encoder/bilstm2"])
    np.testing.assert_allclose(values["embeddings"], values["sequence"].mean(axis=1), atol=1e-6)


def test_mean_normalised_log_mel_has_zero_mean_per_band(lean_model):
    values = probe(lean_model, "log_mel")
    assert values["log_mel"].shape == (2, 98, 64)
    np.testing.assert_allclose(values["log_mel"].mean(axis=1), 0, atol=1e-5)


def test_without_wave_encoder_there_is_no_lstm():
    model = build_tiny(use_wave_encoder=False, use_cross_attention=False)
    check_model(model)
    assert not {"LSTM", "Bidirectional", "MultiHeadAttention"} & layer_types(model)
    assert not any(layer.name.startswith("wave_encoder/") for layer in model.layers)
    values = probe(model, "yamnet_projection")
    np.testing.assert_array_equal(values["sequence"], values["yamnet_projection"])  # E_yam
    assert values["sequence"].shape == (2, 4, 64)


def test_projection_norm_normalises_every_yamnet_step():
    model = build_tiny(use_wave_encoder=False, use_cross_attention=False, projection_norm=True)
    projection = model.get_layer("yamnet_projection")
    kernel, bias = projection.get_weights()
    rng = np.random.default_rng(shifted_seed(0))
    projection.set_weights([kernel, rng.normal(0, 3, bias.shape).astype(np.float32)])
    values = probe(model, "yamnet_projection", "yamnet_projection_norm")
    raw, normed = values["yamnet_projection"], values["yamnet_projection_norm"]
    np.testing.assert_array_equal(values["sequence"], normed)  # E_yam is the normalised one
    assert raw.std(-1).min() > 0.01  # not a degenerate input
    expected = (raw - raw.mean(-1, keepdims=True)) / np.sqrt(raw.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(normed, expected, atol=1e-3)  # gamma 1, beta 0 at init


def test_a_shallower_yamnet_branch_keeps_its_blocks_feature_map(yamnet_tflite):
    """yamnet_blocks=6: blocks 7-14 are not in the graph, E_yam steps are block 6's (stride 8)
    and the blocks kept hold the official weights unchanged."""
    model = build_tiny(yamnet_blocks=6, yamnet_width=1.0, pretrained=True)
    blocks = {name.split("/")[0] for name in weighted_layers(model)}
    assert blocks == {f"layer{k}" for k in range(1, 7)}
    values = probe(model, "yamnet_sequence")
    assert values["yamnet_sequence"].shape == (2, 13, 256)  # 98 frames / 8, 256 channels
    reference = yamnet_backbone()
    load_yamnet_weights(reference, yamnet_tflite)
    for name, layer in weighted_layers(model).items():
        for mine, theirs in zip(layer.get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs, err_msg=name)


def test_without_yamnet_there_is_no_convolution_nor_log_mel():
    model = build_tiny(use_yamnet=False, use_cross_attention=False)
    check_model(model)
    assert not {"Conv2D", "DepthwiseConv2D", "MultiHeadAttention"} & layer_types(model)
    assert not any(isinstance(layer, LogMelSpectrogram) for layer in model.layers)
    assert not weighted_layers(model)
    values = probe(model, "wave_encoder/bilstm1")
    np.testing.assert_array_equal(values["sequence"], values["wave_encoder/bilstm1"])  # C_t
    assert values["sequence"].shape == (2, 40, 128)


@pytest.fixture(scope="module")
def no_attention():
    return build_tiny(use_cross_attention=False, yamnet_trainable="frozen")


def test_without_cross_attention_yamnet_is_repeated_not_realigned(no_attention, tiny):
    assert "MultiHeadAttention" not in layer_types(no_attention)
    assert "MultiHeadAttention" in layer_types(tiny)
    assert no_attention.output["sequence"].shape == tiny.output["sequence"].shape  # same layout
    values = probe(no_attention, "yamnet_projection", "wave_encoder/bilstm1")
    e_yam = values["sequence"][..., :64]  # the mean of E_yam on every wave step
    mean = values["yamnet_projection"].mean(axis=1, keepdims=True)  # [2, 1, 64]
    np.testing.assert_allclose(e_yam, np.repeat(mean, 40, axis=1), atol=1e-6)
    np.testing.assert_array_equal(values["sequence"][..., 64:], values["wave_encoder/bilstm1"])
    np.testing.assert_allclose(values["embeddings"], values["sequence"].mean(axis=1), atol=1e-6)


def test_yamnet_to_wave_realigns_the_wave_encoder_on_yamnet_steps():
    model = build_tiny(attention_direction="yamnet_to_wave", attention_heads=2, yamnet_trainable=2)
    attention = model.get_layer("cross_attention")
    assert attention.get_config()["num_heads"] == 2
    values = probe(model, "yamnet_projection", "cross_attention")
    assert values["sequence"].shape == (2, 4, 64 + 128)  # on YAMNet's 4 steps
    np.testing.assert_array_equal(values["sequence"][..., :64], values["yamnet_projection"])
    np.testing.assert_array_equal(values["sequence"][..., 64:], values["cross_attention"])
    trainable = {w.name.split("/")[0] for w in model.trainable_weights} & set(block_names())
    assert trainable == {"layer13", "layer14"}


def test_frozen_yamnet_trains_only_the_rest(no_attention, tiny):
    def trainable(model):
        return sum(int(np.prod(w.shape)) for w in model.trainable_weights)

    yamnet = weighted_layers(no_attention)
    yamnet_count = sum(layer.count_params() for layer in yamnet.values())
    frozen_rest = no_attention.count_params() - yamnet_count
    assert not any(layer.trainable for layer in yamnet.values())
    assert trainable(no_attention) == frozen_rest
    # all trainable: everything but the batch norms' moving statistics
    moving = sum(
        int(np.prod(w.shape))
        for layer in weighted_layers(tiny).values()
        for w in layer.non_trainable_weights
    )
    assert trainable(tiny) == tiny.count_params() - moving


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"use_wave_encoder": False, "use_yamnet": False, "use_cross_attention": False},
            "at least one branch",
        ),
        ({"use_yamnet": False}, "use_cross_attention needs both branches"),
        ({"attention_direction": "left"}, "attention_direction must be one of"),
        ({"attention_heads": 0}, "attention_heads must be an integer > 0, got 0"),
        ({"projection_units": 1.5}, "projection_units must be an integer > 0"),
        ({"yamnet_width": 0.0}, "width_multiplier must be in"),
        ({"yamnet_trainable": 15}, r"yamnet_trainable must be 'frozen', 'all' or .* got 15"),
        ({"yamnet_trainable": "some"}, "yamnet_trainable must be"),
        ({"pretrained": "maybe"}, "pretrained must be true, false or 'if_available', got 'maybe'"),
        ({"lstm_units": 0}, "lstm_units must be an integer > 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"yamnet_blocks": 1}, r"yamnet_blocks must be in \[2, 14\], got 1"),
        ({"yamnet_blocks": 6.0}, "yamnet_blocks must be an integer, got 6.0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        LEANConfig(**{"pretrained": False, **options})


def test_clip_length_must_be_whole_patches():
    with pytest.raises(ConfigError, match="multiple of 400, got 16160"):
        registry.build("lean_tiny", 3, clip_seconds=1.01)
    with pytest.raises(ConfigError, match="unknown option"):
        registry.build("lean", 3, lstm_size=64)


def test_pretrained_branch_holds_the_official_weights(lean_model, yamnet_tflite):
    # runs before the training test below, which changes the weights
    reference = yamnet_backbone()
    load_yamnet_weights(reference, yamnet_tflite)
    expected = weighted_layers(reference)
    actual = weighted_layers(lean_model)
    assert sorted(actual) == sorted(expected)
    for name, layer in actual.items():
        for mine, theirs in zip(layer.get_weights(), expected[name].get_weights()):
            np.testing.assert_array_equal(mine, theirs, err_msg=name)


@pytest.mark.heavy  # the full 4.4 M-parameter model: ~25 s on 2 idle cores
def test_trains_and_reloads(lean_model, synth, tmp_path):
    assert_learns(lean_model, synth)
    assert_reloads(lean_model, tmp_path / "lean")
