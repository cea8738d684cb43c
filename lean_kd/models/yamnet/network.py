"""YAMNet (MobileNetV1 on log-mel patches, 521 AudioSet classes) as a tf_keras model.

Three separable pieces, as in keras-hub:

- frontend: waveform ``[B, samples]`` -> padding -> log-mel ``[B, frames, 64]`` -> patches
  ``[B, P, 96, 64]`` (lean_kd's log-mel layer with the YAMNet preset);
- backbone: a patch ``[N, 96, 64]`` -> 1024-d embedding ``[N, 1024]`` (one 3x3 conv, then 13
  depthwise-separable blocks, global average pooling);
- head: a Dense layer of 521 logits (sigmoid scores).

Layer names follow the official tensorflow/models implementation (``layer1/conv``,
``layer1/conv/bn``, ``layer2/depthwise_conv``, ...), so its weight files map onto these layers
by name; the head is ``logits`` (the official model's unnamed ``dense`` loads too).
:func:`backbone_features` applies the backbone layers to any tensor, so a student can embed
YAMNet flat (tfmot's QAT rejects nested models).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from lean_kd._keras import keras, tf
from lean_kd.audio.features import YAMNET_PRESET, LogMelSpectrogram
from lean_kd.config import LogMelConfig
from lean_kd.errors import ConfigError
from lean_kd.models.yamnet.layers import FoldPatches, LogMelPatches, UnfoldPatches, WaveformPadding

NUM_CLASSES = 521
HEAD_NAME = "logits"
BATCHNORM_EPSILON = 1e-4  # official YAMNet: center=True, scale=False, epsilon=1e-4

_LAYER_DEFS = [
    # (layer type, kernel, stride, filters)
    ("conv", (3, 3), 2, 32),
    ("separable", (3, 3), 1, 64),
    ("separable", (3, 3), 2, 128),
    ("separable", (3, 3), 1, 128),
    ("separable", (3, 3), 2, 256),
    ("separable", (3, 3), 1, 256),
    ("separable", (3, 3), 2, 512),
    ("separable", (3, 3), 1, 512),
    ("separable", (3, 3), 1, 512),
    ("separable", (3, 3), 1, 512),
    ("separable", (3, 3), 1, 512),
    ("separable", (3, 3), 1, 512),
    ("separable", (3, 3), 2, 1024),
    ("separable", (3, 3), 1, 1024),
]
NUM_BLOCKS = len(_LAYER_DEFS)
MIN_BLOCKS = 2  # block 1 is a plain convolution; from block 2 on, depthwise-separable


def _check_trainable_blocks(trainable_blocks: int | None) -> None:
    if trainable_blocks is not None and not 0 <= trainable_blocks <= NUM_BLOCKS:
        raise ConfigError(
            f"trainable_blocks must be in [0, {NUM_BLOCKS}] or None, got {trainable_blocks}"
        )


@dataclasses.dataclass(frozen=True)
class YAMNetConfig:
    """How to build YAMNet. Defaults: the official model on one 0.975 s patch."""

    input_samples: int | None = 15600  # waveform length at 16 kHz; None: any length
    include_head: bool = True
    trainable_blocks: int | None = None  # None: all trainable; k: only the last k blocks
    width_multiplier: float = 1.0  # scales every conv's filters (1.0 for pretrained weights)
    num_classes: int = NUM_CLASSES
    frontend: LogMelConfig = YAMNET_PRESET
    blocks: int = NUM_BLOCKS  # the backbone stops after this block (its pooled output embeds)

    def __post_init__(self) -> None:
        if self.input_samples is not None and self.input_samples <= 0:
            raise ConfigError(f"input_samples must be > 0 or None, got {self.input_samples}")
        _check_trainable_blocks(self.trainable_blocks)
        check_blocks(self.blocks, name="blocks")
        if self.include_head and self.blocks != NUM_BLOCKS:
            raise ConfigError(
                f"YAMNet's AudioSet head reads block {NUM_BLOCKS}; got include_head=True with "
                f"blocks={self.blocks}"
            )
        if not 0 < self.width_multiplier <= 4:
            raise ConfigError(f"width_multiplier must be in (0, 4], got {self.width_multiplier}")
        if self.num_classes <= 0:
            raise ConfigError(f"num_classes must be > 0, got {self.num_classes}")

    @property
    def embedding_size(self) -> int:
        return scaled_filters(_LAYER_DEFS[self.blocks - 1][3], self.width_multiplier)

    @property
    def patch_shape(self) -> tuple[int, int]:
        return (self.frontend.patch_frames, self.frontend.mel_bins)


def check_blocks(blocks: object, *, name: str) -> None:
    """A depth cut must keep a whole number of blocks, from MIN_BLOCKS to all of them."""
    if isinstance(blocks, bool) or not isinstance(blocks, int):
        raise ConfigError(f"{name} must be an integer, got {blocks!r}")
    if not MIN_BLOCKS <= blocks <= NUM_BLOCKS:
        raise ConfigError(f"{name} must be in [{MIN_BLOCKS}, {NUM_BLOCKS}], got {blocks}")


def scaled_filters(filters: int, width_multiplier: float) -> int:
    """Filters of a conv under a width multiplier (MobileNetV1 rule, at least 8)."""
    return max(8, int(filters * width_multiplier))


def block_names() -> list[str]:
    """``['layer1', ..., 'layer14']``: the prefixes of the backbone's blocks."""
    return [f"layer{i + 1}" for i in range(NUM_BLOCKS)]


def conv_layer_names() -> list[tuple[str, str, int]]:
    """``(layer name, 'conv' | 'depthwise', stride)`` of every convolution in graph order.

    Each convolution is followed by a batch norm named ``<layer name>/bn``.
    """
    names = []
    for block, (kind, _, stride, _) in zip(block_names(), _LAYER_DEFS):
        if kind == "conv":
            names.append((f"{block}/conv", "conv", stride))
        else:
            names += [
                (f"{block}/depthwise_conv", "depthwise", stride),
                (f"{block}/pointwise_conv", "conv", 1),
            ]
    return names


def _batch_norm(name: str) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(
        name=name, center=True, scale=False, epsilon=BATCHNORM_EPSILON
    )


def _conv_block(
    x: tf.Tensor, name: str, kernel: tuple[int, int], stride: int, filters: int
) -> tf.Tensor:
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}/conv"
    )(x)
    x = _batch_norm(f"{name}/conv/bn")(x)
    return keras.layers.ReLU(name=f"{name}/relu")(x)


def _separable_block(
    x: tf.Tensor, name: str, kernel: tuple[int, int], stride: int, filters: int
) -> tf.Tensor:
    x = keras.layers.DepthwiseConv2D(
        kernel,
        strides=stride,
        depth_multiplier=1,
        padding="same",
        use_bias=False,
        name=f"{name}/depthwise_conv",
    )(x)
    x = _batch_norm(f"{name}/depthwise_conv/bn")(x)
    x = keras.layers.ReLU(name=f"{name}/depthwise_conv/relu")(x)
    x = keras.layers.Conv2D(
        filters, (1, 1), padding="same", use_bias=False, name=f"{name}/pointwise_conv"
    )(x)
    x = _batch_norm(f"{name}/pointwise_conv/bn")(x)
    return keras.layers.ReLU(name=f"{name}/pointwise_conv/relu")(x)


_BLOCKS = {"conv": _conv_block, "separable": _separable_block}


def backbone_features(patches: tf.Tensor, config: YAMNetConfig = YAMNetConfig()) -> tf.Tensor:
    """Apply YAMNet's backbone layers: log-mel patches ``[N, 96, 64]`` -> ``[N, 1024]``.

    The last feature map ``[N, 3, 2, 1024]`` (time x mel x channels) is the output of the
    layer named ``layer14/pointwise_conv/relu`` for per-frame features. With
    ``config.blocks=k`` the layers stop after block k and the embedding is its pooled output.
    """
    x = keras.layers.Reshape((*config.patch_shape, 1), name="patch_image")(patches)  # [N,96,64,1]
    kept = zip(block_names()[: config.blocks], _LAYER_DEFS[: config.blocks])
    for name, (kind, kernel, stride, filters) in kept:
        x = _BLOCKS[kind](x, name, kernel, stride, scaled_filters(filters, config.width_multiplier))
    return keras.layers.GlobalAveragePooling2D(name="patch_embedding")(x)  # [N, 1024]


def yamnet_backbone(config: YAMNetConfig = YAMNetConfig()) -> keras.Model:
    """The backbone alone: patches ``[N, 96, 64]`` -> embeddings ``[N, 1024]`` (no frontend, no head)."""
    patches = keras.Input(shape=config.patch_shape, name="log_mel_patch")
    model = keras.Model(patches, backbone_features(patches, config), name="yamnet_backbone")
    set_trainable_blocks(model, config.trainable_blocks)
    return model


def yamnet_head(embeddings: tf.Tensor, config: YAMNetConfig = YAMNetConfig()) -> tf.Tensor:
    """The classifier: ``[..., 1024]`` -> logits ``[..., num_classes]`` (one Dense layer)."""
    return keras.layers.Dense(config.num_classes, name=HEAD_NAME)(embeddings)


def yamnet_frontend(
    waveform: tf.Tensor, config: YAMNetConfig = YAMNetConfig()
) -> tuple[tf.Tensor, tf.Tensor]:
    """Waveform ``[B, samples]`` -> (log-mel ``[B, frames, 64]``, patches ``[B, P, 96, 64]``)."""
    padded = WaveformPadding(config.frontend, name="waveform_padding")(waveform)  # [B, samples']
    log_mel = LogMelSpectrogram(config.frontend, name="log_mel")(padded)
    return log_mel, LogMelPatches(config.frontend, name="log_mel_patches")(log_mel)


def build_yamnet(config: YAMNetConfig = YAMNetConfig(), *, name: str = "yamnet") -> keras.Model:
    """YAMNet from waveform to scores, built flat (no nested models).

    Input: ``waveform`` ``[B, input_samples]`` float32 16 kHz in [-1, 1]. Outputs (dict):
    ``log_mel`` ``[B, frames, 64]``, ``log_mel_patches`` ``[B, P, 96, 64]``, ``sequence``
    ``[B, P, 1024]`` (per-patch embeddings) and ``embeddings`` ``[B, 1024]`` (mean over
    patches); with the head also ``patch_logits`` / ``patch_scores`` ``[B, P, 521]`` (the
    official per-patch outputs) and clip-level ``logits`` (mean of patch logits) and ``scores``
    (mean of patch scores, YAMNet's clip aggregation).
    """
    waveform = keras.Input(shape=(config.input_samples,), name="waveform")
    log_mel, patches = yamnet_frontend(waveform, config)
    folded = FoldPatches(name="fold_patches")(patches)  # [B * P, 96, 64]
    per_patch = backbone_features(folded, config)  # [B * P, 1024]
    sequence = UnfoldPatches(name="sequence")([per_patch, patches])  # [B, P, 1024]
    outputs = {
        "log_mel": log_mel,
        "log_mel_patches": patches,
        "sequence": sequence,
        "embeddings": keras.layers.GlobalAveragePooling1D(name="embeddings")(sequence),
    }
    if config.include_head:
        patch_logits = yamnet_head(sequence, config)  # [B, P, num_classes]
        patch_scores = keras.layers.Activation("sigmoid", name="patch_scores")(patch_logits)
        outputs.update(
            patch_logits=patch_logits,
            patch_scores=patch_scores,
            logits=keras.layers.GlobalAveragePooling1D(name="clip_logits")(patch_logits),
            scores=keras.layers.GlobalAveragePooling1D(name="clip_scores")(patch_scores),
        )
    model = keras.Model(waveform, outputs, name=name)
    set_trainable_blocks(model, config.trainable_blocks)
    return model


RANDOM_INIT_BN_MOMENTUM = 0.9


def set_trainable_blocks(
    model: keras.Model, trainable_blocks: int | None, *, freeze_batch_norm: bool = False
) -> None:
    """Freeze all backbone blocks but the last ``trainable_blocks`` (``None``: train all).

    Frozen batch-norm layers run in inference mode. ``freeze_batch_norm`` keeps every YAMNet
    batch norm frozen, as fine-tuning pretrained weights needs: their statistics are folded
    into identity moving statistics, so batch statistics in training would not match what
    the network sees at inference (a fine-tuned teacher then scored chance on validation).
    Otherwise (random init) their momentum drops to ``RANDOM_INIT_BN_MOMENTUM``: with Keras'
    0.99 the moving statistics of a run of a few hundred steps stay near their initial values
    and the model collapses in inference mode. Recompile the model after a change.
    """
    _check_trainable_blocks(trainable_blocks)
    count = NUM_BLOCKS if trainable_blocks is None else trainable_blocks
    trainable = set(block_names()[NUM_BLOCKS - count :])
    for layer in iter_layers(model):
        block = layer.name.split("/", 1)[0]
        if block in block_names():
            is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
            layer.trainable = block in trainable and not (freeze_batch_norm and is_batch_norm)
            if is_batch_norm and not freeze_batch_norm:
                layer.momentum = RANDOM_INIT_BN_MOMENTUM


def iter_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of ``model``, descending into nested models."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)


def weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """YAMNet's layers that hold weights (backbone and head), by name."""
    wanted = set(block_names()) | {HEAD_NAME}
    return {
        layer.name: layer
        for layer in iter_layers(model)
        if layer.weights and layer.name.split("/", 1)[0] in wanted
    }
