"""MobileNetV2 student: architecture table, width multiplier, training, reload."""

import pytest
from zoo_helpers import assert_learns, assert_reloads, synth_fixture

from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.errors import ConfigError
from lean_kd.models.contract import ModelSpec
from lean_kd.models.mobilenet import MobileNetV2Config, build_mobilenet_v2, make_divisible

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

synth = synth_fixture  # the tiny synthetic dataset, one per session

SPEC = ModelSpec(num_classes=3, num_samples=16000)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(shifted_seed(0))
    return build_mobilenet_v2(SPEC, MobileNetV2Config(width=0.35, dropout=0.0))


def test_make_divisible_follows_the_reference_rule():
    assert [make_divisible(v) for v in (11.2, 5.6, 33.6, 112.0, 8.0)] == [16, 8, 32, 112, 8]


def test_parameters_equal_keras_mobilenet_v2_trunk_plus_head(model):
    # Same blocks as keras.applications.MobileNetV2 (which pads stride-2 blocks explicitly),
    # so the trunk has the same weights; our head is one Dense on the 1280-d embedding.
    reference = keras.applications.MobileNetV2(
        input_shape=(98, 64, 1), alpha=0.35, include_top=False, weights=None
    )
    assert model.count_params() == reference.count_params() + 1280 * 3 + 3
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)


def test_block_structure(model):
    names = [layer.name for layer in model.layers]
    assert sum(name.endswith("/depthwise") for name in names) == 17
    assert sum(name.endswith("/residual") for name in names) == 10  # stride 1, same width
    assert model.get_layer("stem/conv").filters == 16
    assert model.get_layer("block17/project/conv").filters == 112  # 320 * 0.35
    assert model.output["sequence"].shape.as_list() == [None, 4, 1280]  # 98 frames / 32


def test_width_multiplier_scales_the_head():
    assert MobileNetV2Config(width=1.4).head_channels == 1792  # last channels scale above width 1
    assert MobileNetV2Config(width=0.5).head_channels == 1280
    assert MobileNetV2Config(width=0.5, last_channels=128).head_channels == 128


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"width": 0}, r"width must be in \(0, 4\], got 0"),
        ({"last_channels": 0}, "last_channels must be > 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"bn_momentum": 1.0}, r"bn_momentum must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        MobileNetV2Config(**options)


def test_batch_norm_momentum_option_reaches_every_bn_layer(model):
    # 0.9 by default: short runs must move the moving statistics away from their init
    momenta = {
        layer.momentum
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.9}
    slow = build_mobilenet_v2(SPEC, MobileNetV2Config(width=0.35, bn_momentum=0.99))
    assert {
        layer.momentum
        for layer in slow.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    } == {0.99}


def test_trains_and_reloads(model, synth, tmp_path):
    assert_learns(model, synth, steps=4)  # seed offsets 0-5: loss 1.12-1.55 -> 0.007-0.031
    assert_reloads(model, tmp_path / "mobilenet")
