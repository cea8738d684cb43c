"""Parameter groups as frozen dataclasses, and YAML <-> dataclass conversion.

Recipes are data only: they are read with ``yaml.safe_load`` and every key must name a field of
the dataclass it fills, so a typo is an error instead of a silently ignored setting. Units are
part of the field names (``window_seconds``, ``mel_min_hz``); derived values are properties.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lean_kd.errors import ConfigError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class LogMelConfig:
    """Log-mel frontend parameters (defaults: the YAMNet preset)."""

    sample_rate: int = 16000
    window_seconds: float = 0.025
    hop_seconds: float = 0.010
    fft_length: int | None = None  # None: next power of two >= window length
    mel_bins: int = 64
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.001
    mean_normalize: bool = False  # subtract the per-example mean of each mel band
    patch_frames: int = 96
    patch_hop_frames: int = 48

    def __post_init__(self) -> None:
        _require(self.sample_rate > 0, f"sample_rate must be > 0, got {self.sample_rate}")
        _require(self.window_seconds > 0, f"window_seconds must be > 0, got {self.window_seconds}")
        _require(self.hop_seconds > 0, f"hop_seconds must be > 0, got {self.hop_seconds}")
        _require(self.mel_bins > 0, f"mel_bins must be > 0, got {self.mel_bins}")
        _require(
            0 <= self.mel_min_hz < self.mel_max_hz,
            f"Expected 0 <= mel_min_hz < mel_max_hz, got {self.mel_min_hz} and {self.mel_max_hz}",
        )
        _require(self.log_offset > 0, f"log_offset must be > 0, got {self.log_offset}")
        if self.fft_length is not None:
            _require(
                self.fft_length >= self.window_samples,
                f"fft_length {self.fft_length} is shorter than the window "
                f"({self.window_samples} samples)",
            )

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_seconds))

    @property
    def hop_samples(self) -> int:
        return int(round(self.sample_rate * self.hop_seconds))

    @property
    def fft_size(self) -> int:
        if self.fft_length is not None:
            return self.fft_length
        return 2 ** int(math.ceil(math.log2(self.window_samples)))

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_samples

    def num_frames(self, num_samples: int) -> int:
        """STFT frames for a waveform of ``num_samples`` (no padding, as tf.signal.stft)."""
        if num_samples < self.window_samples:
            return 0
        return 1 + (num_samples - self.window_samples) // self.hop_samples


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """How files become fixed-length waveforms."""

    sample_rate: int = 16000
    clip_seconds: float = 1.0
    window_seconds: float = 1.0  # evaluation windows (LEAN: 1 s with 50 % overlap)
    window_hop_seconds: float = 0.5

    def __post_init__(self) -> None:
        _require(self.sample_rate > 0, f"sample_rate must be > 0, got {self.sample_rate}")
        _require(self.clip_seconds > 0, f"clip_seconds must be > 0, got {self.clip_seconds}")
        _require(self.window_seconds > 0, f"window_seconds must be > 0, got {self.window_seconds}")
        _require(
            0 < self.window_hop_seconds <= self.window_seconds,
            f"window_hop_seconds must be in (0, window_seconds], got {self.window_hop_seconds}",
        )

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_seconds))

    @property
    def window_hop_samples(self) -> int:
        return int(round(self.sample_rate * self.window_hop_seconds))


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation. Zero values switch a method off."""

    mixup_alpha: float = 0.0
    time_masks: int = 0
    time_mask_frames: int = 0
    freq_masks: int = 0
    freq_mask_bins: int = 0

    def __post_init__(self) -> None:
        for name in (
            "mixup_alpha",
            "time_masks",
            "time_mask_frames",
            "freq_masks",
            "freq_mask_bins",
        ):
            value = getattr(self, name)
            _require(value >= 0, f"{name} must be >= 0, got {value}")

    @property
    def spec_augment(self) -> bool:
        return (self.time_masks and self.time_mask_frames) or (
            self.freq_masks and self.freq_mask_bins
        )


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """tf.data settings."""

    batch_size: int = 32
    shuffle_buffer: int = 2048
    seed: int = 0
    cache: bool = False
    balanced: bool = False  # class-balanced sampling (multi-label, imbalanced data)
    strict: bool = False  # raise on the first broken file instead of skipping it
    deterministic: bool = (
        True  # same seed, same machine -> same weights (lean_kd.training.determinism)
    )

    def __post_init__(self) -> None:
        _require(self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}")
        _require(
            self.shuffle_buffer >= 0, f"shuffle_buffer must be >= 0, got {self.shuffle_buffer}"
        )


# Settings that training and the linear probe read; lean_kd.run.recipe composes them.

STRATEGIES = ("default", "mirrored", "multiworker")  # tf.distribute strategies by recipe name


TRAINING_METHODS = ("keras_fit", "linear_head")
HEAD_INITS = ("random", "linear_head")
OUTPUT_BIASES = ("trained", "teacher")


@dataclasses.dataclass(frozen=True)
class TrainingSection:
    """Optimisation settings for Keras ``fit``."""

    epochs: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the training split
    optimizer: str = "adam"  # adam | adamw
    learning_rate: float = 1e-3
    # Learning rate of pretrained layers (the YAMNet branch) as a fraction of learning_rate:
    # below 1, the new layers (head, projection, Wave Encoder) learn fast while the pretrained
    # features move slowly, as fine-tuning with few clips needs (frozen: yamnet_trainable).
    pretrained_learning_rate_scale: float = 1.0
    weight_decay: float = 1e-4  # adamw only
    schedule: str = "constant"  # constant | cosine | exponential
    warmup_epochs: float = 0.0
    decay_rate: float = 0.5  # exponential: factor per decay_epochs
    decay_epochs: float = 10.0
    early_stopping_patience: int = 0  # 0: off
    # val_map | val_auc_pr | val_loss: best.keras is the epoch with the best value. none: the last
    # epoch, for validation splits too small to pick an epoch by (a few clips per class: the
    # best epoch of a noisy score is noise; a cosine schedule ends at the converged weights).
    monitor: str = "val_map"
    # Resume state (BackupAndRestore) is written at the end of the first epoch after at least
    # this many optimizer steps since the last backup: a kill loses at most that much training.
    # Every epoch instead costs ~0.3 s a save (LEAN with its optimizer state, ~50 MB), 5-10 %
    # of a run of short epochs.
    backup_steps: int = 100
    seed: int = 0
    # keras_fit: gradient training of the model. linear_head: the backbone stays frozen and the
    # classifier is a logistic regression fitted on every evaluation window of every training
    # clip (lean_kd.probe.teacher): seconds instead of hours, and robust with few clips per class.
    method: str = "keras_fit"
    linear_head_c: float = 0.5  # linear_head: inverse L2 strength on standardised embeddings
    # keras_fit: the classifier's start. linear_head: before gradient training, the classifier
    # is the regression on the model's window embeddings at init (method linear_head's fit),
    # then every layer trains: a probe first, then fine-tuning (LP-FT, Kumar et al. 2022), so
    # the pretrained features are not pulled about by a random head's gradients.
    head_init: str = "random"
    # Distillation only. trained: the classifier's biases as gradient training left them.
    # teacher: afterwards, the biases alone are refitted so that the student's probabilities on
    # every window of the clean training clips match the teacher's (lean_kd.probe.output_bias):
    # trained on mixtures (mixup), a student leans towards the classes mixtures sound like.
    output_bias: str = "trained"

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"training.epochs must be > 0, got {self.epochs}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(
                f"training.optimizer must be 'adam' or 'adamw', got {self.optimizer!r}"
            )
        if self.schedule not in ("constant", "cosine", "exponential"):
            raise ConfigError(
                f"training.schedule must be 'constant', 'cosine' or 'exponential', got {self.schedule!r}"
            )
        if self.monitor not in ("val_map", "val_auc_pr", "val_loss", "none"):
            raise ConfigError(
                f"training.monitor must be 'val_map', 'val_auc_pr', 'val_loss' or 'none', got {self.monitor!r}"
            )
        if self.monitor == "none" and self.early_stopping_patience:
            raise ConfigError(
                "training.early_stopping_patience needs a training.monitor other than 'none'"
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if (
            isinstance(self.backup_steps, bool)
            or not isinstance(self.backup_steps, int)
            or self.backup_steps < 1
        ):
            raise ConfigError(
                f"training.backup_steps must be an integer >= 1, got {self.backup_steps!r}"
            )
        if not 0 < self.pretrained_learning_rate_scale <= 1:
            raise ConfigError(
                "training.pretrained_learning_rate_scale must be in (0, 1], got "
                f"{self.pretrained_learning_rate_scale} (to freeze pretrained layers, use the "
                "model's yamnet_trainable: frozen)"
            )
        if self.method not in TRAINING_METHODS:
            raise ConfigError(
                f"training.method must be one of {list(TRAINING_METHODS)}, got {self.method!r}"
            )
        if self.head_init not in HEAD_INITS:
            raise ConfigError(
                f"training.head_init must be one of {list(HEAD_INITS)}, got {self.head_init!r}"
            )
        if self.output_bias not in OUTPUT_BIASES:
            raise ConfigError(
                f"training.output_bias must be one of {list(OUTPUT_BIASES)}, got {self.output_bias!r}"
            )
        if not self.linear_head_c > 0:
            raise ConfigError(f"training.linear_head_c must be > 0, got {self.linear_head_c}")


@dataclasses.dataclass(frozen=True)
class DistributeSection:
    """Training on several devices or hosts (see lean_kd.training.distribute and README "Scaling out")."""

    strategy: str = "default"  # default | mirrored | multiworker (--strategy overrides it)
    # What pipeline.batch_size counts: "global" (the sum over all replicas: the learning rate
    # stays right when replicas are added) or "per_replica" (each replica's batch: the global
    # batch grows with the replicas and the learning rate should grow with it)
    batch: str = "global"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"distribute.strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.batch not in ("global", "per_replica"):
            raise ConfigError(
                f"distribute.batch must be 'global' or 'per_replica', got {self.batch!r}"
            )


PROBE_FEATURES = ("both", "embeddings", "scores")
PROBE_SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True)
class ProbeSection:
    """The linear probe (lean_kd.probe): which pooled window outputs, how much regularisation.

    ``C`` is scikit-learn's inverse L2 strength on standardised features; ``fit_splits`` are
    the splits it learns from (``[train]``: the clips the other models train on, so the floor
    is comparable; ``[train, val]`` when no model selection needs the validation clips).
    """

    enabled: bool = True
    features: str = "both"  # both | embeddings | scores
    C: float = 1.0
    max_iter: int = 1000  # lbfgs iterations
    fit_splits: tuple[str, ...] = ("train",)

    def __post_init__(self) -> None:
        if self.features not in PROBE_FEATURES:
            raise ConfigError(
                f"probe.features must be one of {list(PROBE_FEATURES)}, got {self.features!r}"
            )
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ConfigError(f"probe.C must be a number > 0, got {self.C!r}")
        max_iter = self.max_iter
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ConfigError(f"probe.max_iter must be an integer > 0, got {self.max_iter!r}")
        bad = [s for s in self.fit_splits if s not in PROBE_SPLITS]
        if not self.fit_splits or bad or len(set(self.fit_splits)) != len(self.fit_splits):
            raise ConfigError(
                f"probe.fit_splits must be distinct splits among {list(PROBE_SPLITS)}, "
                f"got {list(self.fit_splits)}"
            )


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys (recursively)."""
    where = where or cls.__name__
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {
        name: _convert(hints[name], value, where=f"{where}.{name}") for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:  # missing required fields
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, *, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint, origin = options[0], typing.get_origin(options[0])
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (tuples as lists) suitable for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(obj))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe as plain data (no executable tags)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Recipe {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"Recipe {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"Recipe {path}: expected a mapping at top level, got {type(data).__name__}"
        )
    return data
