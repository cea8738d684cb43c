"""YAMNet teacher: the AudioSet-pretrained YAMNet backbone with a new head, fine-tuned.

Graph (flat, as :func:`lean_kd.models.yamnet.build_yamnet` without its 521-class head):
waveform ``[B, samples]`` -> YAMNet's padding (short input gets one full 0.975 s patch, longer
input whole 0.48 s patch hops, as the official model) -> log-mel ``[B, frames, 64]`` -> patches
``[B, P, 96, 64]`` -> backbone per patch -> ``sequence`` ``[B, P, 1024]`` -> mean over patches
``embeddings`` ``[B, 1024]`` -> optional hidden Dense (ReLU) -> optional dropout -> Dense
``logits``. A 1 s clip gives P = 2 patches (the second one mostly padding). With
``yamnet_blocks=k`` the backbone stops after block k (block 10: 512-d embeddings of a
mid-level map), for example for an ensemble of heads on features of different depths.

:class:`PretrainedYAMNetOptions` (also used by the LEAN student) says where the weights come
from and which blocks train: ``pretrained`` True loads the official weights (see
:func:`lean_kd.models.yamnet.weights.load_yamnet_weights`: ``yamnet_weights``, else
$LEAN_KD_YAMNET, the user cache, a checked download) and fails with the library's error when
there are none; ``"if_available"`` logs one warning and keeps the random init instead.
"""

from __future__ import annotations

import dataclasses
import logging

from lean_kd._keras import keras, tf
from lean_kd.audio.features import YAMNET_PRESET
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.contract import ModelSpec, contract_outputs, mark_pretrained
from lean_kd.models.registry import register
from lean_kd.models.yamnet.network import (
    NUM_BLOCKS,
    YAMNetConfig,
    build_yamnet,
    check_blocks,
    set_trainable_blocks,
    weighted_layers,
)
from lean_kd.models.yamnet.pretrained import resolve_yamnet_weights
from lean_kd.models.yamnet.weights import load_yamnet_weights, weights_format

logger = logging.getLogger(__name__)

IF_AVAILABLE = "if_available"
TRAINABLE_CHOICES = ("frozen", "all")


@dataclasses.dataclass(frozen=True)
class PretrainedYAMNetOptions:
    """Initialisation and fine-tuning of a YAMNet backbone inside a model."""

    pretrained: bool | str = True  # True, False or "if_available"
    yamnet_weights: str | None = None  # .tflite / .h5 / SavedModel; None: $LEAN_KD_YAMNET, cache
    yamnet_trainable: str | int = "all"  # "frozen", "all" or k: only the last k of 14 blocks
    # YAMNet stops after this block (the kept blocks' pretrained weights intact): a depth cut,
    # for a cheaper branch or features of another level. yamnet_trainable: k still counts the
    # last k of all 14 blocks, so with fewer blocks kept it trains fewer of them.
    yamnet_blocks: int = NUM_BLOCKS

    def __post_init__(self) -> None:
        check_blocks(self.yamnet_blocks, name="yamnet_blocks")
        if not isinstance(self.pretrained, bool) and self.pretrained != IF_AVAILABLE:
            raise ConfigError(
                f"pretrained must be true, false or {IF_AVAILABLE!r}, got {self.pretrained!r}"
            )
        value = self.yamnet_trainable
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if not (is_int and 0 <= value <= NUM_BLOCKS) and value not in TRAINABLE_CHOICES:
            raise ConfigError(
                f"yamnet_trainable must be 'frozen', 'all' or a number of last blocks in "
                f"[0, {NUM_BLOCKS}], got {value!r}"
            )

    @property
    def trainable_blocks(self) -> int | None:
        """Trainable last blocks for :func:`set_trainable_blocks` (``None``: all)."""
        if self.yamnet_trainable == "all":
            return None
        return 0 if self.yamnet_trainable == "frozen" else int(self.yamnet_trainable)


def init_yamnet_branch(model: keras.Model, options: PretrainedYAMNetOptions) -> str | None:
    """Load pretrained weights into ``model``'s YAMNet layers as ``options`` say, then freeze.

    With pretrained weights the batch norms stay in inference mode (see set_trainable_blocks),
    and the YAMNet layers are marked pretrained (``training.pretrained_learning_rate_scale``).

    Returns the weights' source, or ``None`` when the YAMNet layers keep their random init.
    """
    source = _available_weights(options) if options.pretrained else None
    if source is not None:
        load_yamnet_weights(model, source)
        mark_pretrained(model, list(weighted_layers(model)))
    else:
        logger.info("Model %s: YAMNet layers use random init", model.name)
    set_trainable_blocks(model, options.trainable_blocks, freeze_batch_norm=source is not None)
    return source


def _available_weights(options: PretrainedYAMNetOptions) -> str | None:
    """The weights to load; with ``"if_available"`` a missing file is one warning and ``None``."""
    try:
        source = resolve_yamnet_weights(options.yamnet_weights)
        weights_format(source)  # exists and is a weights file
    except ModelError as exc:
        if options.pretrained != IF_AVAILABLE:
            raise
        logger.warning("Pretrained YAMNet weights not available, using RANDOM init: %s", exc)
        return None
    return source


@dataclasses.dataclass(frozen=True)
class YAMNetTeacherConfig(PretrainedYAMNetOptions):
    """YAMNet teacher options: backbone initialisation and fine-tuning, and the new head."""

    hidden_units: int = 0  # 0: the classifier sits directly on the 1024-d embedding
    dropout: float = 0.0  # before the classifier

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.hidden_units, bool) or not isinstance(self.hidden_units, int):
            raise ConfigError(f"hidden_units must be an integer >= 0, got {self.hidden_units!r}")
        if self.hidden_units < 0:
            raise ConfigError(f"hidden_units must be an integer >= 0, got {self.hidden_units}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


def classifier_head(
    embeddings: tf.Tensor, spec: ModelSpec, *, hidden_units: int = 0, dropout: float = 0.0
) -> tf.Tensor:
    """``[B, D]`` -> optional Dense(hidden, ReLU) -> optional dropout -> logits ``[B, classes]``."""
    x = embeddings
    if hidden_units:
        x = keras.layers.Dense(hidden_units, activation="relu", name="head_hidden")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(spec.num_classes, name="classifier")(x)  # [B, num_classes]


def build_yamnet_teacher(
    spec: ModelSpec,
    config: YAMNetTeacherConfig = YAMNetTeacherConfig(),
    *,
    name: str = "yamnet_teacher",
) -> keras.Model:
    """YAMNet teacher following the model contract (see the module docstring)."""
    frontend = dataclasses.replace(YAMNET_PRESET, sample_rate=spec.sample_rate)
    yamnet_config = YAMNetConfig(
        input_samples=spec.num_samples, include_head=False, frontend=frontend,
        blocks=config.yamnet_blocks,
    )  # fmt: skip
    yamnet = build_yamnet(yamnet_config, name=name)  # only its tensors are used: the model is flat
    sequence = yamnet.output["sequence"]  # [B, P, 1024]
    embeddings = yamnet.output["embeddings"]  # [B, 1024]
    logits = classifier_head(
        embeddings, spec, hidden_units=config.hidden_units, dropout=config.dropout
    )
    outputs = contract_outputs(spec, logits=logits, embeddings=embeddings, sequence=sequence)
    model = keras.Model(yamnet.input, outputs, name=name)
    init_yamnet_branch(model, config)
    return model


register(
    "yamnet_teacher",
    build_yamnet_teacher,
    YAMNetTeacherConfig,
    description="YAMNet teacher: AudioSet-pretrained backbone + new head, fine-tuned "
    "(yamnet_trainable=frozen|all|k last blocks; pretrained=true|false|if_available)",
)
