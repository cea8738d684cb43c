"""LEAN (lightweight efficient audio classification network): the on-device student.

Two branches on the same waveform ``[B, samples]`` (shapes for 1 s at 16 kHz, defaults):

- left, Wave Encoder (:mod:`lean_kd.models.wave_encoder`): 40 patches of 25 ms ``[B, 40, 400]``
  -> 2 x BiLSTM(128) -> context vectors ``C_t`` ``[B, 40, 256]``;
- right, YAMNet: log-mel ``[B, 98, 64]``, mean-normalised per example (each mel band minus its
  mean over the clip) -> YAMNet's backbone on the WHOLE clip as one image ``[B, 98, 64, 1]``
  (it is fully convolutional; five stride-2 layers) -> last feature map ``[B, 4, 2, 1024]``
  (``layer14/pointwise_conv/relu``: one step per 32 frames = 0.32 s) -> mean over its 2 mel
  positions ``[B, 4, 1024]`` -> projection Dense -> ``E_yam`` ``[B, 4, 128]``. YAMNet's own
  96-frame patches with a 48-frame hop would give a single patch for 1 s, hence no sequence;
  the pre-pooling feature map keeps the time axis at no extra cost. ``yamnet_blocks=k`` stops
  the branch after block k (``layer{k}/pointwise_conv/relu``; block 6: ``[B, 13, 8, 256]``):
  fewer MACs with the pretrained features intact, where a width below 1 must narrow them.

Cross-attention temporal realignment (``keras.layers.MultiHeadAttention``): the queries come
from one branch, keys and values from the other, so the other branch is resampled onto the
query branch's time grid. ``attention_direction="wave_to_yamnet"`` (default): the 40 wave
steps query ``E_yam`` -> realigned ``E_yam`` ``[B, 40, 128]``; ``"yamnet_to_wave"``: the 4
YAMNet steps query ``C_t`` -> realigned ``C_t`` ``[B, 4, 256]``. Then ``E_combined =
concat(E_yam, C_t)`` (``sequence``, ``[B, 40, 384]``) -> mean over time (``embeddings``
``[B, 384]``) -> optional dropout -> Dense (``logits``; the spec's sigmoid/softmax is applied by
losses and metrics). ``projection_norm=True`` adds a LayerNormalization after the projection.

Ablation switches (each changes the graph; ``embeddings`` is always the mean of ``sequence``):

- ``use_cross_attention=False``: no MultiHeadAttention; the other branch is averaged over time
  and repeated on the query branch's grid (same ``sequence`` layout, no realignment);
- ``use_wave_encoder=False``: no LSTM; ``sequence`` is ``E_yam``;
- ``use_yamnet=False``: no convolution and no log-mel; ``sequence`` is ``C_t``.
Cross-attention needs both branches: switching a branch off requires
``use_cross_attention=False``.

Mean normalisation vs pretraining: the paper feeds YAMNet the mean-normalised log-mel, but
YAMNet was pretrained on the raw ``log(mel + 0.001)`` (values around -7..2) and its (folded)
batch norms expect those statistics. Normalised input shifts every band to mean 0, so a frozen
pretrained branch sees out-of-distribution input; with the default end-to-end training
(``yamnet_trainable="all"``) the network adapts. ``yamnet_mean_normalize=False`` feeds the raw
log-mel instead (better when freezing YAMNet).

The model is flat (YAMNet's layers are applied with :func:`backbone_features`), as tfmot's QAT
needs, and its LSTMs keep Keras defaults so TFLite fuses them (convert with batch 1).
``lean_tiny`` (YAMNet width 0.5, one BiLSTM(64)) starts from random init by default; with
``pretrained`` its YAMNet branch starts from the official weights' strongest channels
(:mod:`lean_kd.models.yamnet.narrow`), since no AudioSet weights exist at that width. One LSTM
layer instead of two: the LSTM steps run one after another (benchmarks/results/summary.md).
"""

from __future__ import annotations

import dataclasses

from lean_kd._keras import keras, tf
from lean_kd.audio.features import YAMNET_PRESET, LogMelSpectrogram
from lean_kd.errors import ConfigError
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    contract_outputs,
    frontend_config,
    waveform_input,
)
from lean_kd.models.registry import register
from lean_kd.models.wave_encoder import WaveEncoderConfig, wave_encoder
from lean_kd.models.yamnet.network import YAMNetConfig, backbone_features
from lean_kd.models.yamnet.teacher import (
    PretrainedYAMNetOptions,
    classifier_head,
    init_yamnet_branch,
)

DIRECTIONS = ("wave_to_yamnet", "yamnet_to_wave")


@dataclasses.dataclass(frozen=True)
class LEANConfig(PretrainedYAMNetOptions):
    """LEAN options (defaults: the paper's model). YAMNet options are ignored without YAMNet."""

    use_wave_encoder: bool = True
    use_yamnet: bool = True
    use_cross_attention: bool = True
    lstm_units: int = 128  # Wave Encoder: units per direction
    lstm_layers: int = 2
    patch_seconds: float = 0.025
    yamnet_width: float = 1.0  # YAMNet width multiplier; below 1, pretrained weights are narrowed
    yamnet_mean_normalize: bool = True  # the paper's input; YAMNet was pretrained without it
    projection_units: int = 128  # E_yam features
    # LayerNormalization on E_yam: the attention's keys then keep a bounded scale. Without it, a
    # fast-learning projection of the (0..100) YAMNet features can make the attention nearly
    # hard, and the int8 rounding of those features then flips which step it picks.
    projection_norm: bool = False
    attention_direction: str = "wave_to_yamnet"  # queries from the first-named branch
    attention_heads: int = 4
    attention_key_dim: int = 32
    dropout: float = 0.0  # before the classifier

    def __post_init__(self) -> None:
        super().__post_init__()
        _ = self.wave_encoder  # validates the Wave Encoder options
        YAMNetConfig(width_multiplier=self.yamnet_width)  # validates the width
        if not (self.use_wave_encoder or self.use_yamnet):
            raise ConfigError("LEAN needs at least one branch: use_wave_encoder or use_yamnet")
        if self.use_cross_attention and not (self.use_wave_encoder and self.use_yamnet):
            raise ConfigError(
                "use_cross_attention needs both branches (use_wave_encoder and use_yamnet); "
                "set use_cross_attention=False to switch a branch off"
            )
        if self.attention_direction not in DIRECTIONS:
            raise ConfigError(
                f"attention_direction must be one of {DIRECTIONS}, got {self.attention_direction!r}"
            )
        for name in ("projection_units", "attention_heads", "attention_key_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be an integer > 0, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def wave_encoder(self) -> WaveEncoderConfig:
        return WaveEncoderConfig(self.patch_seconds, self.lstm_units, self.lstm_layers)


def yamnet_branch(waveform: tf.Tensor, spec: ModelSpec, config: LEANConfig) -> tf.Tensor:
    """Waveform ``[B, samples]`` -> ``E_yam`` ``[B, T_yam, projection_units]`` (see module)."""
    preset = dataclasses.replace(
        YAMNET_PRESET, sample_rate=spec.sample_rate, mean_normalize=config.yamnet_mean_normalize
    )
    frontend = frontend_config(FrontendOptions(frontend=preset), spec)  # >= 1 frame
    log_mel = LogMelSpectrogram(frontend, name="log_mel")(waveform)  # [B, frames, 64]
    frames = frontend.num_frames(spec.num_samples)
    whole_clip = dataclasses.replace(frontend, patch_frames=frames)  # the clip is one "patch"
    yamnet = YAMNetConfig(
        include_head=False, width_multiplier=config.yamnet_width, frontend=whole_clip,
        blocks=config.yamnet_blocks,
    )  # fmt: skip
    pooled = backbone_features(log_mel, yamnet)  # [B, 1024]: only to find the feature map
    lookup = keras.Model(waveform, pooled)  # not kept: the LEAN graph stops before the pooling
    last_block = f"layer{config.yamnet_blocks}/pointwise_conv/relu"
    feature_map = lookup.get_layer(last_block).output  # 14 blocks: [B, ceil(frames / 32), 2, 1024]
    _, steps, bins, channels = feature_map.shape
    x = keras.layers.AveragePooling2D((1, bins), name="yamnet_frequency_mean")(feature_map)
    x = keras.layers.Reshape((steps, channels), name="yamnet_sequence")(x)  # [B, T_yam, C]
    x = keras.layers.Dense(config.projection_units, name="yamnet_projection")(x)  # E_yam
    if config.projection_norm:
        x = keras.layers.LayerNormalization(name="yamnet_projection_norm")(x)
    return x


def combined_sequence(branches: dict[str, tf.Tensor], config: LEANConfig) -> tf.Tensor:
    """``{"wave": C_t, "yamnet": E_yam}`` -> ``concat(E_yam, C_t)`` on one time grid."""
    if len(branches) == 1:
        return next(iter(branches.values()))
    query_name, other_name = config.attention_direction.split("_to_")
    query, other = branches[query_name], branches[other_name]  # [B, Tq, Dq], [B, To, Do]
    if config.use_cross_attention:
        attention = keras.layers.MultiHeadAttention(
            config.attention_heads,
            config.attention_key_dim,
            output_shape=other.shape[-1],
            name="cross_attention",
        )
        aligned = attention(query, other)  # [B, Tq, Do]: the other branch on the query's grid
    else:
        pooled = keras.layers.GlobalAveragePooling1D(name=f"{other_name}_mean")(other)  # [B, Do]
        aligned = keras.layers.RepeatVector(query.shape[1], name=f"{other_name}_repeat")(pooled)
    parts = {query_name: query, other_name: aligned}
    return keras.layers.Concatenate(name="combined_sequence")([parts["yamnet"], parts["wave"]])


def build_lean(
    spec: ModelSpec, config: LEANConfig = LEANConfig(), *, name: str = "lean"
) -> keras.Model:
    """LEAN following the model contract (see the module docstring)."""
    waveform = waveform_input(spec)
    branches = {}
    if config.use_wave_encoder:
        branches["wave"] = wave_encoder(waveform, config.wave_encoder, sample_rate=spec.sample_rate)
    if config.use_yamnet:
        branches["yamnet"] = yamnet_branch(waveform, spec, config)
    sequence = combined_sequence(branches, config)  # [B, T, D]
    embeddings = keras.layers.GlobalAveragePooling1D(name="embeddings")(sequence)  # [B, D]
    logits = classifier_head(embeddings, spec, dropout=config.dropout)
    outputs = contract_outputs(spec, logits=logits, embeddings=embeddings, sequence=sequence)
    model = keras.Model(waveform, outputs, name=name)
    if config.use_yamnet:
        init_yamnet_branch(model, config)
    return model


register(
    "lean",
    build_lean,
    LEANConfig,
    description="LEAN student: BiLSTM wave encoder + pretrained YAMNet on mean-normalised "
    "log-mel + cross-attention realignment (ablations: use_wave_encoder/use_yamnet/"
    "use_cross_attention)",
)
register(
    "lean_fast",
    build_lean,
    LEANConfig,
    description="LEAN with a one-layer BiLSTM(64) Wave Encoder (pretrained YAMNet branch and "
    "cross-attention unchanged): ~0.3x LEAN's LSTM cost, its int8 LSTM unrolled onto XNNPACK",
    lstm_units=64,
    lstm_layers=1,
)
register(
    "lean_tiny",
    build_lean,
    LEANConfig,
    description="LEAN with YAMNet width 0.5 and 1 x BiLSTM(64), random init (to be distilled); "
    "pretrained=true starts its YAMNet branch from the official weights' strongest channels "
    "(ESC-50 dev: 0.09 accuracy distilled); yamnet_width=1, yamnet_blocks=6 and pretrained=true "
    "keep the official first 6 blocks unchanged instead (0.37)",
    yamnet_width=0.5,
    lstm_units=64,
    lstm_layers=1,
    projection_units=64,
    pretrained=False,
)
