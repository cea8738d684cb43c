"""Transformer teacher in the style of AST (Gong et al., 2021), as CMKD pairs it with a CNN.

Graph: waveform -> standardised log-mel image ``[B, frames, mel, 1]`` -> overlapping 16 x 16
patches with stride 10 (one Conv2D) ``[B, t, f, D]`` -> tokens ``[B, t * f, D]`` (+ optional
learned CLS / distillation tokens in front) + learned positional embedding -> ``depth``
pre-norm encoder blocks (MultiHeadAttention, MLP with GELU) -> LayerNorm. ``embeddings``: mean
of the patch tokens (``pooling="mean"``, as the issue asks) or of the CLS/dist tokens
(``pooling="tokens"``, AST's original head); ``sequence`` ``[B, t, D]``: patch tokens averaged
over frequency.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lean_kd._keras import keras, tf
from lean_kd.errors import ConfigError
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    frontend_config,
    log_mel_image,
    pooled_outputs,
    waveform_input,
)
from lean_kd.models.macs import register_counter, zero_macs
from lean_kd.models.registry import register

SIZES = {
    # size: (embedding dim, depth, heads) — DeiT/AST tiny, small and base
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
}


def _init() -> keras.initializers.Initializer:
    """ViT's truncated normal (a new instance per weight: a reused unseeded one repeats values)."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@dataclasses.dataclass(frozen=True)
class ASTConfig(FrontendOptions):
    """AST options; ``dim``/``depth``/``heads`` override the size's values when given."""

    size: str = "tiny"
    dim: int | None = None
    depth: int | None = None
    heads: int | None = None
    mlp_ratio: float = 4.0
    patch_size: int = 16
    patch_stride: int = 10
    class_tokens: int = 0  # 0, 1 (CLS) or 2 (CLS + distillation token, as AST/DeiT)
    pooling: str = "mean"  # "mean" of patch tokens or "tokens" (mean of the CLS/dist tokens)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in SIZES:
            raise ConfigError(f"Unknown AST size {self.size!r}; expected one of {sorted(SIZES)}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"dim {self.embed_dim} must be divisible by heads {self.num_heads}")
        for name in ("patch_size", "patch_stride", "num_layers", "num_heads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.class_tokens not in (0, 1, 2):
            raise ConfigError(f"class_tokens must be 0, 1 or 2, got {self.class_tokens}")
        if self.pooling not in ("mean", "tokens") or (
            self.pooling == "tokens" and not self.class_tokens
        ):
            raise ConfigError(
                f"pooling must be 'mean', or 'tokens' with class_tokens > 0; got {self.pooling!r}"
            )
        if not 0 <= self.dropout < 1 or self.mlp_ratio <= 0:
            raise ConfigError(
                f"Expected 0 <= dropout < 1 and mlp_ratio > 0, got {self.dropout}, {self.mlp_ratio}"
            )

    @property
    def embed_dim(self) -> int:
        return self.dim or SIZES[self.size][0]

    @property
    def num_layers(self) -> int:
        return self.depth or SIZES[self.size][1]

    @property
    def num_heads(self) -> int:
        return self.heads or SIZES[self.size][2]


@keras.utils.register_keras_serializable(package="lean_kd")
class ClassTokens(keras.layers.Layer):
    """Prepends ``count`` learned tokens: ``[B, N, D]`` -> ``[B, count + N, D]``."""

    def __init__(self, count: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = count

    def build(self, input_shape: tf.TensorShape) -> None:
        self.tokens = self.add_weight(
            name="tokens", shape=(1, self.count, input_shape[-1]), initializer=_init()
        )
        super().build(input_shape)

    def call(self, tokens: tf.Tensor) -> tf.Tensor:
        batch = tf.shape(tokens)[0]
        return tf.concat([tf.tile(self.tokens, [batch, 1, 1]), tokens], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count": self.count}


@keras.utils.register_keras_serializable(package="lean_kd")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding per token position: ``[B, N, D]`` -> ``[B, N, D]``."""

    def build(self, input_shape: tf.TensorShape) -> None:
        self.positions = self.add_weight(
            name="positions", shape=(1, *input_shape[1:]), initializer=_init()
        )
        super().build(input_shape)

    def call(self, tokens: tf.Tensor) -> tf.Tensor:
        return tokens + self.positions


def patch_grid(frames: int, bins: int, config: ASTConfig) -> tuple[int, int]:
    """Patches along time and frequency for a ``frames`` x ``bins`` log-mel image."""
    if min(frames, bins) < config.patch_size:
        raise ConfigError(
            f"AST patches of {config.patch_size} need a log-mel of at least {config.patch_size} "
            f"frames and mel bins, got {frames} x {bins}; use longer clips or a smaller patch_size"
        )
    return tuple(1 + (n - config.patch_size) // config.patch_stride for n in (frames, bins))


def encoder_block(x: tf.Tensor, config: ASTConfig, name: str) -> tf.Tensor:
    """Pre-norm Transformer block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``."""
    dim, heads = config.embed_dim, config.num_heads
    h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}/attention_norm")(x)
    h = keras.layers.MultiHeadAttention(
        heads, dim // heads, dropout=config.dropout, name=f"{name}/attention"
    )(h, h)
    x = keras.layers.Add(name=f"{name}/attention_residual")([x, h])
    h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}/mlp_norm")(x)
    h = keras.layers.Dense(
        int(dim * config.mlp_ratio), activation="gelu", name=f"{name}/mlp_hidden"
    )(h)
    h = keras.layers.Dense(dim, name=f"{name}/mlp_out")(h)
    if config.dropout:
        h = keras.layers.Dropout(config.dropout, name=f"{name}/mlp_dropout")(h)
    return keras.layers.Add(name=f"{name}/mlp_residual")([x, h])


def build_ast(
    spec: ModelSpec, config: ASTConfig = ASTConfig(), *, name: str = "ast"
) -> keras.Model:
    """AST-style teacher following the model contract (see the module docstring)."""
    waveform = waveform_input(spec)
    frontend = frontend_config(config, spec)
    t, f = patch_grid(frontend.num_frames(spec.num_samples), frontend.mel_bins, config)
    dim, extra = config.embed_dim, config.class_tokens
    image = log_mel_image(waveform, spec, config)  # [B, frames, mel, 1]
    x = keras.layers.Conv2D(
        dim,
        config.patch_size,
        strides=config.patch_stride,
        kernel_initializer=_init(),
        name="patch_embedding",
    )(image)  # [B, t, f, D]
    x = keras.layers.Reshape((t * f, dim), name="patch_tokens")(x)  # [B, t * f, D]
    if extra:
        x = ClassTokens(extra, name="class_tokens")(x)  # [B, extra + t * f, D]
    x = PositionEmbedding(name="position_embedding")(x)
    for i in range(config.num_layers):
        x = encoder_block(x, config, name=f"block{i + 1}")
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(x)
    patches = (
        keras.layers.Cropping1D((extra, 0), name="patch_outputs")(x) if extra else x
    )  # [B, t * f, D]
    grid = keras.layers.Reshape((t, f, dim), name="patch_grid")(patches)  # [B, t, f, D]
    tokens = (
        keras.layers.Cropping1D((0, t * f), name="token_outputs")(x)
        if config.pooling == "tokens"
        else None
    )
    outputs = pooled_outputs(grid, spec, dropout=config.dropout, pool_tokens=tokens)
    return keras.Model(waveform, outputs, name=name)


for _size, (_dim, _depth, _heads) in SIZES.items():
    register(
        f"ast_{_size}",
        build_ast,
        ASTConfig,
        fixed={"size": _size},
        description=f"Transformer teacher, AST-style: 16x16 patches stride 10, "
        f"{_depth} blocks of dim {_dim}, {_heads} heads",
    )
register_counter(PositionEmbedding, ClassTokens)(zero_macs)
