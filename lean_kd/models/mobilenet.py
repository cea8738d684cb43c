"""Small CNN student: MobileNetV2 (Sandler et al., 2018) on the log-mel, with a width multiplier.

Graph: waveform -> standardised log-mel image ``[B, frames, 64, 1]`` -> 3x3 stem conv (stride
2) -> inverted residual blocks of ``_BLOCK_DEFS`` -> 1x1 conv to ``last_channels`` -> mean over
frequency (``sequence``) and time (``embeddings``) -> dropout -> Dense (``logits``). Built from
Conv2D / DepthwiseConv2D / BatchNormalization / ReLU(6) / Add only, all supported by tfmot QAT.
"""

from __future__ import annotations

import dataclasses

from lean_kd._keras import keras, tf
from lean_kd.errors import ConfigError
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    log_mel_image,
    pooled_outputs,
    waveform_input,
)
from lean_kd.models.registry import register

STEM_FILTERS = 32
_BLOCK_DEFS = [
    # (expansion t, output channels c, repeats n, first stride s) — the MobileNetV2 paper's table 2
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
BN_EPSILON = 1e-3


@dataclasses.dataclass(frozen=True)
class MobileNetV2Config(FrontendOptions):
    """MobileNetV2 student options."""

    width: float = 1.0  # width multiplier alpha: scales every layer's channels
    last_channels: int = 1280  # final 1x1 conv (scaled too when width > 1, as in the paper)
    dropout: float = 0.2
    # 0.9 rather than Keras' 0.99: short from-scratch runs (a few hundred steps) otherwise leave
    # the moving statistics near their initial values and the model collapses in inference mode
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.bn_momentum < 1:
            raise ConfigError(f"bn_momentum must be in [0, 1), got {self.bn_momentum}")
        if not 0 < self.width <= 4:
            raise ConfigError(f"width must be in (0, 4], got {self.width}")
        if self.last_channels <= 0:
            raise ConfigError(f"last_channels must be > 0, got {self.last_channels}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_channels(self) -> int:
        """Channels of the final 1x1 conv: ``last_channels``, scaled only when width > 1."""
        return (
            make_divisible(self.last_channels * self.width)
            if self.width > 1
            else self.last_channels
        )


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _batch_norm(x: tf.Tensor, momentum: float, name: str) -> tf.Tensor:
    return keras.layers.BatchNormalization(momentum=momentum, epsilon=BN_EPSILON, name=name)(x)


def _conv_bn(
    x: tf.Tensor,
    filters: int,
    kernel: int,
    stride: int,
    name: str,
    *,
    momentum: float,
    relu: bool = True,
) -> tf.Tensor:
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}/conv"
    )(x)
    x = _batch_norm(x, momentum, f"{name}/bn")
    return keras.layers.ReLU(6.0, name=f"{name}/relu6")(x) if relu else x


def inverted_residual(
    x: tf.Tensor, expansion: int, filters: int, stride: int, name: str, *, momentum: float
) -> tf.Tensor:
    """Expand (1x1) -> depthwise 3x3 (stride) -> linear 1x1 projection (+ input if same shape)."""
    channels = x.shape[-1]
    h = (
        _conv_bn(x, expansion * channels, 1, 1, f"{name}/expand", momentum=momentum)
        if expansion != 1
        else x
    )
    h = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding="same", use_bias=False, name=f"{name}/depthwise"
    )(h)
    h = _batch_norm(h, momentum, f"{name}/depthwise/bn")
    h = keras.layers.ReLU(6.0, name=f"{name}/depthwise/relu6")(h)
    h = _conv_bn(h, filters, 1, 1, f"{name}/project", momentum=momentum, relu=False)
    if stride == 1 and channels == filters:
        h = keras.layers.Add(name=f"{name}/residual")([x, h])
    return h


def mobilenet_v2_features(image: tf.Tensor, config: MobileNetV2Config) -> tf.Tensor:
    """Image ``[B, T, F, C]`` -> feature map ``[B, T/32, F/32, last]`` (MobileNetV2 trunk)."""
    momentum = config.bn_momentum
    x = _conv_bn(
        image, make_divisible(STEM_FILTERS * config.width), 3, 2, "stem", momentum=momentum
    )
    index = 0
    for expansion, channels, repeats, stride in _BLOCK_DEFS:
        for repeat in range(repeats):
            index += 1
            filters = make_divisible(channels * config.width)
            x = inverted_residual(
                x,
                expansion,
                filters,
                stride if repeat == 0 else 1,
                f"block{index}",
                momentum=momentum,
            )
    return _conv_bn(x, config.head_channels, 1, 1, "head", momentum=momentum)


def build_mobilenet_v2(
    spec: ModelSpec, config: MobileNetV2Config = MobileNetV2Config(), *, name: str = "mobilenet_v2"
) -> keras.Model:
    """MobileNetV2 student following the model contract (see the module docstring)."""
    waveform = waveform_input(spec)
    feature_map = mobilenet_v2_features(log_mel_image(waveform, spec, config), config)
    return keras.Model(
        waveform, pooled_outputs(feature_map, spec, dropout=config.dropout), name=name
    )


register(
    "mobilenet_v2",
    build_mobilenet_v2,
    MobileNetV2Config,
    description="small CNN student: MobileNetV2 on log-mel with a width multiplier (width=)",
)
