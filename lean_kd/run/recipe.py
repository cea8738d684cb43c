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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lean_kd.config import (
    AudioConfig,
    AugmentConfig,
    DistributeSection,
    PipelineConfig,
    ProbeSection,
    TrainingSection,
    from_dict,
    load_yaml,
)
from lean_kd.errors import ConfigError
from lean_kd.export.modes import DFT_MODES, LSTM_MODES


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
            raise ConfigError(
                f"cache.targets must be one of {list(CACHE_TARGETS)}, got {self.targets!r}"
            )


@dataclasses.dataclass(frozen=True)
class ExportSection:
    """TFLite export of the distilled student: int8 always, plus ``modes``."""

    modes: tuple[str, ...] = ()  # extra modes: float32, float16, dynamic, int16x8
    num_calibration: int = 200  # training clips that calibrate int8 / int16x8
    keep_frontend_float: bool = True  # int8: keep the log-mel frontend float
    float_ops: tuple[str, ...] = ()  # int8: TFLite op types to keep float
    # int8: rescale channels so one activation scale fits them (lean_kd.export.equalize)
    equalize_channels: bool = True
    # int8: layers or blocks (e.g. layer13) with int8 weights and on-the-fly activation ranges
    dynamic_layers: tuple[str, ...] = ()
    lstm: str = "auto"  # int8: LSTMs unrolled, hybrid, int8 or float (auto: lean_kd.export.modes)
    dft: str = "fft"  # int8: the log-mel DFT as float FFT matrix products, RFFT2D, or int8 DFT
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
    # the distillation loss; default: hinton_kd / multilabel_kd
    loss: tuple[Mapping[str, Any], ...] = ()
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
