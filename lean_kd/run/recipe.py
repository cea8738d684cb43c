"""Recipes: one YAML file that says what to train, on which data, and how.

A recipe is plain data (``yaml.safe_load``) mapped onto frozen dataclasses; unknown keys are
errors. Sections::

    data:      dataset adapter, root, splits (test/val folds or a validation fraction)
    audio:     sample rate, crop length, evaluation windows      (lean_kd.config.AudioConfig)
    pipeline:  batch size, shuffling, balanced sampling, strict  (lean_kd.config.PipelineConfig)
    augment:   mixup, SpecAugment                                 (lean_kd.config.AugmentConfig)
    teacher:   {name, options, checkpoint}: the model to fine-tune or to learn from
    student:   {name, options}: the model to distill into
    loss:      list of {name, weight, ...} (lean_kd.distill.losses.build_loss)
    training:  optimizer, learning rate, schedule, epochs, early stopping, monitor
    cache:     teacher-output cache settings
    export:    extra TFLite modes besides int8, calibration and parity sizes   (lean-kd run)
    bench:     latency benchmark settings                                      (lean-kd run)
    probe:     the linear probe on frozen pretrained YAMNet: the floor     (lean-kd run, probe)
    distribute: tf.distribute strategy and what pipeline.batch_size means      (lean_kd.training.distribute)
    baseline_student: also train the student without distillation (the report's no-KD row)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from lean_kd.config import AudioConfig, AugmentConfig, PipelineConfig, from_dict, load_yaml
from lean_kd.errors import ConfigError
from lean_kd.export.modes import DFT_MODES, LSTM_MODES

STRATEGIES = ("default", "mirrored", "multiworker")  # tf.distribute strategies by recipe name


@dataclasses.dataclass(frozen=True)
class DataSection:
    """Which dataset, where, and how its splits are formed."""

    dataset: str = "csv"
    root: str = ""
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # adapter options
    test_folds: tuple[int, ...] = ()  # fold-based datasets (ESC-50, UrbanSound8K)
    val_folds: tuple[int, ...] = ()
    val_fraction: float = 0.0  # carve a validation split from train when the data has none

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """A registered model and its options, optionally initialised from a checkpoint."""

    name: str = "mobilenet_v2"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint: str = ""  # a saved Keras model to load instead of building


TRAINING_METHODS = ("keras_fit", "linear_head")


@dataclasses.dataclass(frozen=True)
class TrainingSection:
    """Optimisation settings for Keras ``fit``."""

    epochs: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the training split
    optimizer: str = "adam"  # adam | adamw
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # adamw only
    schedule: str = "constant"  # constant | cosine | exponential
    warmup_epochs: float = 0.0
    decay_rate: float = 0.5  # exponential: factor per decay_epochs
    decay_epochs: float = 10.0
    early_stopping_patience: int = 0  # 0: off
    monitor: str = "val_map"  # val_map | val_auc_pr | val_loss
    seed: int = 0
    # keras_fit: gradient training of the model. linear_head: the backbone stays frozen and the
    # classifier is a logistic regression fitted on every evaluation window of every training
    # clip (lean_kd.probe.teacher): seconds instead of hours, and robust with few clips per class.
    method: str = "keras_fit"
    linear_head_c: float = 0.5  # linear_head: inverse L2 strength on standardised embeddings

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"training.epochs must be > 0, got {self.epochs}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"training.optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine", "exponential"):
            raise ConfigError(
                f"training.schedule must be 'constant', 'cosine' or 'exponential', got {self.schedule!r}"
            )
        if self.monitor not in ("val_map", "val_auc_pr", "val_loss"):
            raise ConfigError(
                f"training.monitor must be 'val_map', 'val_auc_pr' or 'val_loss', got {self.monitor!r}"
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if self.method not in TRAINING_METHODS:
            raise ConfigError(f"training.method must be one of {list(TRAINING_METHODS)}, got {self.method!r}")
        if not self.linear_head_c > 0:
            raise ConfigError(f"training.linear_head_c must be > 0, got {self.linear_head_c}")


CACHE_TARGETS = ("crop", "clip")


@dataclasses.dataclass(frozen=True)
class CacheSection:
    """Teacher-output cache: used for distillation when ``enabled``."""

    enabled: bool = False
    crops_per_clip: int = 4
    # crop: each crop's own teacher logits; clip: the mean of the teacher's logits over all the
    # clip's crops for every crop (the teacher's verdict on the whole clip, also where the sound
    # is absent from the 1 s the student hears). One cache serves both.
    targets: str = "crop"

    def __post_init__(self) -> None:
        if self.crops_per_clip <= 0:
            raise ConfigError(f"cache.crops_per_clip must be > 0, got {self.crops_per_clip}")
        if self.targets not in CACHE_TARGETS:
            raise ConfigError(f"cache.targets must be one of {list(CACHE_TARGETS)}, got {self.targets!r}")


@dataclasses.dataclass(frozen=True)
class ExportSection:
    """TFLite export of the distilled student: int8 always, plus ``modes``."""

    modes: tuple[str, ...] = ()  # extra modes: float32, float16, dynamic, int16x8
    num_calibration: int = 200  # training clips that calibrate int8 / int16x8
    keep_frontend_float: bool = True  # int8: keep the log-mel frontend float
    float_ops: tuple[str, ...] = ()  # int8: TFLite op types to keep float
    lstm: str = "auto"  # int8: LSTMs unrolled, hybrid, int8 or float (auto: lean_kd.export.modes)
    dft: str = "rfft"  # int8: the log-mel DFT by RFFT2D (float), or int8 (matrix product)
    parity_windows: int = 32  # test windows for the Keras-vs-TFLite parity check

    def __post_init__(self) -> None:
        for name in ("num_calibration", "parity_windows"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"export.{name} must be > 0, got {getattr(self, name)}")
        if self.lstm not in LSTM_MODES:
            raise ConfigError(f"export.lstm must be one of {list(LSTM_MODES)}, got {self.lstm!r}")
        if self.dft not in DFT_MODES:
            raise ConfigError(f"export.dft must be one of {list(DFT_MODES)}, got {self.dft!r}")

    @property
    def all_modes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(("int8", *self.modes)))


@dataclasses.dataclass(frozen=True)
class BenchSection:
    """Latency benchmark of the int8 student, against the official YAMNet when available."""

    enabled: bool = True
    runs: int = 200  # timed invokes per model and thread count
    warmup_runs: int = 10
    threads: tuple[int, ...] = (1,)
    memory_repeats: int = 3
    yamnet_baseline: bool = True  # compare with the official yamnet.tflite when it is found

    def __post_init__(self) -> None:
        if self.runs < 1 or self.warmup_runs < 0 or self.memory_repeats < 1:
            raise ConfigError(
                "bench: expected runs >= 1, warmup_runs >= 0 and memory_repeats >= 1, got "
                f"{self.runs}, {self.warmup_runs} and {self.memory_repeats}"
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
            raise ConfigError(f"distribute.strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if self.batch not in ("global", "per_replica"):
            raise ConfigError(f"distribute.batch must be 'global' or 'per_replica', got {self.batch!r}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything one training or distillation run needs."""

    name: str = "recipe"
    data: DataSection = DataSection()
    audio: AudioConfig = AudioConfig()
    pipeline: PipelineConfig = PipelineConfig()
    augment: AugmentConfig = AugmentConfig()
    teacher: ModelSection = ModelSection()
    student: ModelSection = ModelSection()
    teacher_loss: tuple[Mapping[str, Any], ...] = ()  # default: ce / bce
    loss: tuple[Mapping[str, Any], ...] = ()  # distillation loss; default: hinton_kd / multilabel_kd
    teacher_training: TrainingSection = TrainingSection()
    training: TrainingSection = TrainingSection()
    cache: CacheSection = CacheSection()
    export: ExportSection = ExportSection()
    bench: BenchSection = BenchSection()
    probe: ProbeSection = ProbeSection()
    baseline_student: bool = True  # lean-kd run also trains the student without distillation
    distribute: DistributeSection = DistributeSection()


def load_recipe(path: str | Path, **overrides: Any) -> Recipe:
    """Read a recipe; ``overrides`` replace top-level sections (e.g. ``data={"root": ...}``)."""
    raw = load_yaml(path)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(raw.get(key), Mapping):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return from_dict(Recipe, raw, where=str(path))
