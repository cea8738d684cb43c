"""Keras ``fit`` for teachers and students: optimizer, schedule, callbacks, resume.

Both teacher fine-tuning (``lean-kd train``) and distillation (``lean-kd distill``) train a
:class:`lean_kd.distill.distiller.Distiller`; a plain run is a Distiller whose loss has no
teacher term. A run directory holds::

    best.keras      the student with the best validation ``monitor`` so far (with its class names);
                    the last epoch's with ``monitor: none``
    final.keras     the student after the last epoch
    history.csv     one row per epoch (continued, not restarted, on resume)
    backup/         BackupAndRestore state: rerun the same command after a kill to continue
    tensorboard/    TensorBoard logs
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.config import TrainingSection
from lean_kd.data.pipeline import AudioPipeline, CropTable
from lean_kd.distill.distiller import Distiller
from lean_kd.errors import ConfigError
from lean_kd.files import atomic_path, write_atomic
from lean_kd.models.contract import pretrained_variables, set_class_names
from lean_kd.training.determinism import seed_everything
from lean_kd.training.distribute import epoch_steps, fit_inputs, write_dir
from lean_kd.training.keras_metrics import AUCPR, MeanAveragePrecision
from lean_kd.training.progress import StepsProgbar

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What a finished run left behind."""

    run_dir: Path
    best_path: Path
    final_path: Path
    history: dict[str, list[float]]
    epochs_run: int


def make_optimizer(
    training: TrainingSection, steps_per_epoch: int, *, rate_scale: float = 1.0
) -> keras.optimizers.Optimizer:
    """Adam or AdamW with the recipe's learning-rate schedule (warm-up, cosine, exponential),
    its peak rate ``training.learning_rate`` times ``rate_scale``."""
    rate = learning_rate_schedule(training, steps_per_epoch, rate_scale=rate_scale)
    if training.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=training.weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)


def learning_rate_schedule(
    training: TrainingSection, steps_per_epoch: int, *, rate_scale: float = 1.0
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The recipe's learning rate by step, peaking at ``training.learning_rate * rate_scale``."""
    peak = training.learning_rate * rate_scale
    rate: Any = peak
    total = max(1, training.epochs * steps_per_epoch)
    warmup = int(training.warmup_epochs * steps_per_epoch)
    if training.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else peak,
            decay_steps=max(1, total - warmup),
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    elif training.schedule == "exponential":
        rate = keras.optimizers.schedules.ExponentialDecay(
            peak,
            decay_steps=max(1, int(training.decay_epochs * steps_per_epoch)),
            decay_rate=training.decay_rate,
        )
    return rate


def student_metrics(multi_label: bool) -> list:
    """Validation metrics on the student's logits: exact mAP and AUC-PR (+ accuracy)."""
    activation = "sigmoid" if multi_label else "softmax"
    metrics = [
        MeanAveragePrecision(name="map", activation=activation),
        AUCPR(name="auc_pr", activation=activation),
    ]
    if not multi_label:
        metrics.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
    return metrics


class BestStudentCheckpoint(keras.callbacks.Callback):
    """Saves the Distiller's student whenever ``monitor`` improves (atomically).

    ``best`` starts from the history of an interrupted run, so a resumed run does not overwrite
    a better checkpoint with a worse one.
    """

    def __init__(self, path: Path, *, monitor: str, best: float | None = None) -> None:
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.lower_is_better = monitor == "val_loss"
        self.best = best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or math.isnan(value):
            return
        improved = self.best is None or (
            value < self.best if self.lower_is_better else value > self.best
        )
        if improved:
            self.best = float(value)
            save_model(self.model.student, self.path)
            logger.info(
                "epoch %d: %s improved to %.4f, saved %s", epoch + 1, self.monitor, value, self.path
            )


def save_model(model: keras.Model, path: Path) -> None:
    """Save a Keras model atomically: a crash never leaves a truncated file at ``path``."""
    with atomic_path(path) as tmp:
        model.save(tmp)


class PeriodicBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore at the end of every ``every``-th epoch (the same epochs on every
    worker). A resumed run repeats the epochs after the last backup: their rows leave
    ``history`` (a CSV of epochs) before they are logged again."""

    def __init__(self, backup_dir: Path, *, every: int, history: Path) -> None:
        super().__init__(str(backup_dir))
        self.every, self.history = every, Path(history)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)  # restores the backup, if any
        resumed_at = int(self._training_state._ckpt_saved_epoch.numpy()) + 1  # -1: none
        _drop_history_from(self.history, resumed_at)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            super().on_epoch_end(epoch, logs)


def _drop_history_from(path: Path, epoch: int) -> None:
    """Rewrite the history CSV without the rows of ``epoch`` and later ones."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [row for row in rows[1:] if row and int(float(row[0])) < epoch]
    if len(kept) < len(rows):
        lines = io.StringIO()
        csv.writer(lines).writerows(kept)  # excel dialect, as CSVLogger writes
        write_atomic(path, lines.getvalue())


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv -> {column: values} (empty when the file does not exist)."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(r[key]) for r in rows] for key in (rows[0] if rows else {})}


def fit(
    distiller: Distiller,
    pipeline: AudioPipeline,
    training: TrainingSection,
    run_dir: Path,
    *,
    multi_label: bool,
    crops: CropTable | None = None,
    val_crops: CropTable | None = None,
    teacher_stream: Mapping[str, np.ndarray] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> FitResult:
    """Compile and ``fit`` ``distiller`` on ``pipeline``'s train/val splits into ``run_dir``.

    Rerunning with the same ``run_dir`` after an interruption resumes from the last finished
    epoch (BackupAndRestore); a finished run is started afresh. Under the strategy ``distiller``
    was built in, the optimizer and metrics are made in its scope, and only the chief worker
    writes ``run_dir`` (see :mod:`lean_kd.training.distribute`). ``teacher_stream``: the
    teacher's recorded outputs on the training stream (see ``fit_inputs``).
    """
    strategy = distiller.distribute_strategy
    run_dir, backup, best = _open_run_dir(Path(run_dir), strategy, training.monitor)
    seed_everything(training.seed, deterministic=pipeline.config.deterministic)
    set_class_names(distiller.student, pipeline.index.class_names)  # saved with each checkpoint
    distiller(tf.zeros([1, *distiller.student.input_shape[1:]]))  # build: BackupAndRestore needs it
    steps = epoch_steps(pipeline, strategy, training.steps_per_epoch)
    if steps <= 0:
        raise ConfigError(
            f"The training split has fewer examples than one batch ({pipeline.config.batch_size}); "
            "lower pipeline.batch_size"
        )
    scale = training.pretrained_learning_rate_scale
    pretrained = pretrained_variables(distiller.student) if scale != 1 else []
    with strategy.scope():
        distiller.compile(
            optimizer=make_optimizer(training, steps),
            metrics=student_metrics(multi_label),
            pretrained_optimizer=make_optimizer(training, steps, rate_scale=scale)
            if pretrained
            else None,
            pretrained_variables=pretrained,
        )
    best_path, history_path = run_dir / "best.keras", run_dir / "history.csv"
    all_callbacks = [
        PeriodicBackup(
            backup, every=math.ceil(training.backup_steps / steps), history=history_path
        ),
        keras.callbacks.CSVLogger(str(history_path), append=True),
        keras.callbacks.TensorBoard(
            str(run_dir / "tensorboard"), write_graph=False, profile_batch=0
        ),
        *_best_checkpoint(best_path, training, best),
        *_early_stopping(training),
        *callbacks,
        StepsProgbar(steps),  # step/total from epoch 1
    ]
    inputs = fit_inputs(
        pipeline,
        strategy,
        crops=crops,
        val_crops=val_crops,
        steps_per_epoch=training.steps_per_epoch,
        teacher_stream=teacher_stream,
    )
    distiller.fit(**inputs, epochs=training.epochs, callbacks=all_callbacks, verbose=verbose)
    final_path = run_dir / "final.keras"
    save_model(distiller.student, final_path)
    if training.monitor == "none" or not best_path.exists():  # none, or never defined: the last
        write_atomic(best_path, final_path.read_bytes())
    history = read_history(history_path)
    return FitResult(run_dir, best_path, final_path, history, len(next(iter(history.values()), [])))


def _best_checkpoint(
    path: Path, training: TrainingSection, best: float | None
) -> list[keras.callbacks.Callback]:
    if training.monitor == "none":  # the last epoch is kept
        return []
    return [BestStudentCheckpoint(path, monitor=training.monitor, best=best)]


def _open_run_dir(
    run_dir: Path, strategy: tf.distribute.Strategy, monitor: str
) -> tuple[Path, Path, float | None]:
    """The folder this worker writes, the BackupAndRestore folder, and the best ``monitor`` of
    the epochs already run. A fresh (not resumed) run forgets a finished run's logs."""
    backup, run_dir = run_dir / "backup", write_dir(run_dir, strategy)
    run_dir.mkdir(parents=True, exist_ok=True)
    history_path = run_dir / "history.csv"
    if not (backup.is_dir() and any(backup.iterdir())):
        history_path.unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    previous = read_history(history_path).get(monitor, [])
    best = (min if monitor == "val_loss" else max)(previous) if previous else None
    return run_dir, backup, best


def _early_stopping(training: TrainingSection) -> list[keras.callbacks.Callback]:
    if not training.early_stopping_patience:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor=training.monitor,
            mode="min" if training.monitor == "val_loss" else "max",
            patience=training.early_stopping_patience,
        )
    ]
