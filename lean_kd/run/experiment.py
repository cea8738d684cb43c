"""From a recipe to data, models and runs: what ``lean-kd train / distill / cache-teacher`` do.

Each function takes the recipe and returns plain objects, so the CLI, the ``lean-kd run``
pipeline and the benchmark scripts share one code path.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lean_kd._keras import keras, tf
from lean_kd.config import TrainingSection
from lean_kd.data.adapters import load_index
from lean_kd.data.index import DatasetIndex
from lean_kd.data.pipeline import AudioPipeline, CropTable
from lean_kd.distill.distiller import Distiller
from lean_kd.distill.losses import build_loss
from lean_kd.distill.teacher_cache import META_FILE, TeacherCache, build_teacher_cache
from lean_kd.distill.teacher_stream import teacher_stream
from lean_kd.errors import ConfigError, DataError
from lean_kd.evaluation import evaluate_keras
from lean_kd.files import write_atomic, write_json
from lean_kd.models.yamnet.pretrained import sha256_of
from lean_kd.run.fingerprint import data_fingerprint, fingerprint
from lean_kd.run.recipe import ModelSection, Recipe
from lean_kd.training.determinism import seed_everything
from lean_kd.training.distribute import (
    epoch_steps,
    global_batch_size,
    is_chief,
    make_strategy,
    training_stream,
)
from lean_kd.training.trainer import FitResult, fit, save_model

logger = logging.getLogger(__name__)


def load_data(recipe: Recipe) -> DatasetIndex:
    """The recipe's dataset index with its splits formed (folds or a validation fraction)."""
    data = recipe.data
    if not data.root:
        raise ConfigError("data.root is empty; set it in the recipe or with --data")
    if not Path(data.root).exists():
        raise DataError(f"Dataset root {data.root} does not exist (data.root in the recipe)")
    index = load_index(data.dataset, data.root, **dict(data.options))
    if data.test_folds or data.val_folds:
        index = index.with_folds(test_folds=data.test_folds, val_folds=data.val_folds)
    if data.val_fraction:
        index = index.with_validation(fraction=data.val_fraction, seed=recipe.pipeline.seed)
    for split in ("train", "val"):
        if not index.split(split):
            raise DataError(
                f"Dataset {index.name} at {data.root} has no {split!r} examples; "
                "set data.val_fraction or data.val_folds"
            )
    return index


def make_pipeline(recipe: Recipe, index: DatasetIndex) -> AudioPipeline:
    """Waveform batches (models carry their own log-mel frontend)."""
    if recipe.augment.spec_augment:  # the pipeline masks log-mels, which these models compute
        logger.warning(
            "Recipe %r sets SpecAugment (augment.time_masks / freq_masks), but lean_kd models take "
            "waveforms and compute their own log-mel: the masks are not applied",
            recipe.name,
        )
    return AudioPipeline(
        index, audio=recipe.audio, features=None, pipeline=recipe.pipeline, augment=recipe.augment
    )


def model_from_section(section: ModelSection, recipe: Recipe, index: DatasetIndex) -> keras.Model:
    """Load ``section.checkpoint`` when set, else build ``section.name`` for the recipe's data."""
    if section.checkpoint:
        return load_model(section.checkpoint)
    from lean_kd.models.registry import build

    options: dict[str, Any] = {
        "sample_rate": recipe.audio.sample_rate,
        "clip_seconds": recipe.audio.clip_seconds,
        "multi_label": index.multi_label,
        **dict(section.options),
    }
    return build(section.name, index.num_classes, **options)


def load_model(path: str | Path) -> keras.Model:
    """A saved lean_kd model (see :func:`lean_kd.models.registry.load_model`)."""
    from lean_kd.models.registry import load_model as load

    return load(path)


def default_loss(index: DatasetIndex, *, distill: bool) -> list[Mapping[str, Any]]:
    """CE / BCE for plain training; Hinton KD / multi-label KD for distillation."""
    if distill:
        return [{"name": "multilabel_kd" if index.multi_label else "hinton_kd"}]
    return [{"name": "bce" if index.multi_label else "ce"}]


def train(
    recipe: Recipe, run_dir: Path, *, strategy: str | None = None, verbose: Any = "auto"
) -> FitResult:
    """Fine-tune (or train from scratch) the recipe's teacher with a supervised loss."""
    if recipe.teacher_training.output_bias != "trained":
        raise ConfigError(
            "teacher_training.output_bias must be 'trained': a teacher has no teacher to fit its "
            "biases to (output_bias belongs in the student's training section)"
        )
    return _train_supervised(
        recipe, recipe.teacher, recipe.teacher_training, run_dir, strategy=strategy, verbose=verbose
    )


def train_student(
    recipe: Recipe, run_dir: Path, *, strategy: str | None = None, verbose: Any = "auto"
) -> FitResult:
    """The recipe's student on labels only (the teacher's loss, the student's training settings).

    The baseline distillation has to beat: same model, data and schedule, no teacher (so
    ``training.output_bias`` keeps the trained biases).
    """
    training = dataclasses.replace(recipe.training, output_bias="trained")
    return _train_supervised(
        recipe, recipe.student, training, run_dir, strategy=strategy, verbose=verbose
    )


def _train_supervised(
    recipe: Recipe,
    section: ModelSection,
    training: TrainingSection,
    run_dir: Path,
    *,
    strategy: str | None,
    verbose: Any,
) -> FitResult:
    scope, recipe = distributed_recipe(recipe, strategy)
    index = load_data(recipe)
    pipeline = make_pipeline(recipe, index)
    seed_everything(training.seed, deterministic=recipe.pipeline.deterministic)  # before init
    if training.method == "linear_head":
        return _fit_linear_head(recipe, section, training, run_dir, index, pipeline)
    with scope.scope():
        loss = build_loss(list(recipe.teacher_loss) or default_loss(index, distill=False))
        if loss.needs_teacher:
            raise ConfigError(
                "teacher_loss must be supervised (ce or bce); a teacher cannot distill from itself"
            )
        model = model_from_section(section, recipe, index)
        if training.head_init == "linear_head":  # LP-FT: a probe first, then fine-tuning
            fit_window_head(model, recipe, training, index)
        distiller = Distiller(model, loss)
    result = fit(
        distiller, pipeline, training, run_dir, multi_label=index.multi_label, verbose=verbose
    )
    if is_chief(scope):
        _write_evaluation(result, pipeline)
    return result


def fit_window_head(
    model: keras.Model, recipe: Recipe, training: TrainingSection, index: DatasetIndex
) -> None:
    """The model's classifier fitted on its window embeddings of the training clips, the rest
    as it is (lean_kd.probe.teacher): method linear_head, and head_init linear_head."""
    from lean_kd.probe.teacher import fit_linear_head

    fit_linear_head(
        model, index, hop_fraction=window_hop_fraction(recipe),
        C=training.linear_head_c, strict=recipe.pipeline.strict,
    )  # fmt: skip


def window_hop_fraction(recipe: Recipe) -> float:
    """The hop between evaluation windows as a fraction of a window (heads fit on those windows)."""
    return recipe.audio.window_hop_seconds / recipe.audio.window_seconds


def _fit_linear_head(
    recipe: Recipe,
    section: ModelSection,
    training: TrainingSection,
    run_dir: Path,
    index: DatasetIndex,
    pipeline: AudioPipeline,
) -> FitResult:
    """The model's backbone frozen, its classifier fitted on every window (lean_kd.probe.teacher)."""
    from lean_kd.models.contract import set_class_names

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = model_from_section(section, recipe, index)
    fit_window_head(model, recipe, training, index)
    set_class_names(model, index.class_names)
    best, final = run_dir / "best.keras", run_dir / "final.keras"
    save_model(model, final)
    save_model(model, best)
    history = {"epoch": [0.0]}
    write_atomic(run_dir / "history.csv", "epoch\n0\n")
    result = FitResult(run_dir, best, final, history, 1)
    _write_evaluation(result, pipeline)
    return result


def cache_teacher(
    recipe: Recipe,
    teacher_path: Path,
    out_dir: Path,
    *,
    progress: bool = True,
    part: tuple[int, int] | None = None,
) -> TeacherCache | None:
    """Run the teacher once over train and val and store its outputs; ``part=(i, n)``: part i
    of n only (None until the last part is done, see lean_kd.distill.teacher_cache)."""
    index = load_data(recipe)
    teacher = load_model(teacher_path)
    build_teacher_cache(
        teacher,
        index,
        out_dir,
        audio=recipe.audio,
        teacher_name=str(teacher_path),
        crops_per_clip=recipe.cache.crops_per_clip,
        strict=recipe.pipeline.strict,
        progress=progress,
        part=part,
    )
    return TeacherCache(out_dir, index=index) if (Path(out_dir) / META_FILE).is_file() else None


def distillation_loss(recipe: Recipe, index: DatasetIndex) -> Any:
    """The recipe's ``loss`` (Hinton KD / multi-label KD when it names none)."""
    return build_loss(list(recipe.loss) or default_loss(index, distill=True))


def cached_teacher_crops(
    cache_dir: str | Path, index: DatasetIndex, recipe: Recipe
) -> tuple[CropTable, CropTable]:
    """Train and val crop tables of the teacher cache at ``cache_dir``, checked against ``index``
    and the recipe (crops, audio and augmentation) before any model is built."""
    settings = recipe.cache
    cache = TeacherCache(Path(cache_dir), index=index)
    meta = cache.meta
    if meta.crops_per_clip != settings.crops_per_clip:
        raise DataError(
            f"{cache_dir}: the teacher cache holds {meta.crops_per_clip} crops per clip, the "
            f"recipe asks for cache.crops_per_clip {settings.crops_per_clip}; rebuild the cache "
            "(lean-kd cache-teacher) or change the recipe"
        )
    audio = recipe.audio
    if (meta.sample_rate, meta.clip_samples) != (audio.sample_rate, audio.clip_samples):
        raise DataError(
            f"{cache_dir}: the teacher cache holds crops of {meta.clip_samples} samples at "
            f"{meta.sample_rate} Hz, the recipe's audio asks for {audio.clip_samples} at "
            f"{audio.sample_rate} Hz; rebuild the cache (lean-kd cache-teacher) or change the recipe"
        )
    if recipe.augment.mixup_alpha > 0:  # consistent teaching: the teacher must see the mixed clip
        raise ConfigError(
            f"{cache_dir}: the teacher cache holds the teacher's outputs on unmixed crops, but the "
            f"recipe mixes clips (augment.mixup_alpha {recipe.augment.mixup_alpha}); a student "
            "taught on other views than its teacher saw learns wrong targets. Distil from the "
            "teacher online (cache.enabled: false, --teacher) or set mixup_alpha to 0"
        )
    return tuple(  # type: ignore[return-value]
        cache.crop_table(index.split(split), targets=settings.targets) for split in ("train", "val")
    )


def teacher_outputs(
    recipe: Recipe,
    index: DatasetIndex,
    loss: Any,
    *,
    teacher_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[keras.Model | None, CropTable | None, CropTable | None]:
    """Where the teacher term of ``loss`` comes from, as ``(teacher, train crops, val crops)``: the
    teacher cache at ``cache_dir`` when given, else the model at ``teacher_path`` or the recipe's
    ``teacher.checkpoint`` (loaded in the current strategy scope); all None when ``loss`` needs no
    teacher."""
    if not loss.needs_teacher:
        return None, None, None
    if cache_dir:
        return (None, *cached_teacher_crops(cache_dir, index, recipe))
    path = teacher_path or recipe.teacher.checkpoint
    if not path:
        raise ConfigError(
            f"The distillation loss of recipe {recipe.name!r} ({', '.join(loss.term_names)}) needs a "
            "teacher: pass --teacher TEACHER.keras or --cache DIR (or set teacher.checkpoint in the recipe)"
        )
    return load_model(path), None, None


def recorded_teacher_stream(
    recipe: Recipe,
    pipeline: AudioPipeline,
    loss: Any,
    teacher: keras.Model,
    teacher_path: str | Path,
    store: Path,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """The teacher's outputs on every step of the recipe's training stream, from ``store``
    (recorded there first when absent). Keyed by everything the batches and the teacher's
    outputs depend on, so students that share the stream share the recording."""
    if recipe.distribute.strategy != "default":
        raise ConfigError(
            f"A teacher stream is read on one device; the recipe asks for distribute.strategy "
            f"{recipe.distribute.strategy!r}: distil with the teacher online instead"
        )
    training = recipe.training
    per_epoch = epoch_steps(pipeline, tf.distribute.get_strategy(), training.steps_per_epoch)
    inputs = {
        # tf.data's random ops pair their seed (the pipeline's) with the global one that
        # training.seed sets: another training seed hears other crops and mixes
        "seed": recipe.training.seed,
        "data": data_fingerprint(pipeline.index),
        "pipeline": dataclasses.asdict(recipe.pipeline),
        "audio": dataclasses.asdict(recipe.audio),
        "augment": dataclasses.asdict(recipe.augment),
        "teacher": sha256_of(Path(teacher_path)),
        "outputs": list(loss.teacher_outputs),
    }
    return teacher_stream(
        store, fingerprint(inputs), teacher=teacher, batches=training_stream(pipeline),
        steps=training.epochs * per_epoch, outputs=loss.teacher_outputs, inputs=inputs,
        progress=progress,
    )  # fmt: skip


def distill(
    recipe: Recipe,
    run_dir: Path,
    *,
    teacher_path: Path | None = None,
    cache_dir: Path | None = None,
    teacher_streams: Path | None = None,
    strategy: str | None = None,
    verbose: Any = "auto",
) -> FitResult:
    """Train the recipe's student from labels and the teacher (online, or from its cache);
    ``teacher_streams``: a store of the online teacher's outputs on the training stream
    (:mod:`lean_kd.distill.teacher_stream`), read when it holds this stream, else recorded
    there first; ``strategy`` overrides the recipe's ``distribute.strategy``."""
    if teacher_streams is not None and cache_dir is not None:
        raise ConfigError(
            f"Teacher streams ({teacher_streams}) record the online teacher; a teacher cache "
            f"({cache_dir}) was given too: pass --teacher with --teacher-streams, or only --cache"
        )
    scope, recipe = distributed_recipe(recipe, strategy)
    index = load_data(recipe)
    pipeline = make_pipeline(recipe, index)
    seed_everything(
        recipe.training.seed, deterministic=recipe.pipeline.deterministic
    )  # before init
    with scope.scope():
        loss = distillation_loss(recipe, index)
        bias_teacher_path = _output_bias_teacher_path(recipe, loss, teacher_path)
        teacher, crops, val_crops = teacher_outputs(
            recipe, index, loss, teacher_path=teacher_path, cache_dir=cache_dir
        )
        student = model_from_section(recipe.student, recipe, index)
        if recipe.training.head_init == "linear_head":
            fit_window_head(student, recipe, recipe.training, index)
        distiller = Distiller(student, loss, teacher)
    stream = None
    if teacher_streams is not None and teacher is not None:
        stream = recorded_teacher_stream(
            recipe, pipeline, loss, teacher, teacher_path or recipe.teacher.checkpoint,
            teacher_streams, progress=verbose != 0,
        )  # fmt: skip
    result = fit(
        distiller,
        pipeline,
        recipe.training,
        run_dir,
        multi_label=index.multi_label,
        crops=crops,
        val_crops=val_crops,
        teacher_stream=stream,
        verbose=verbose,
    )
    if is_chief(scope):
        extra = {}
        if bias_teacher_path is not None:
            online = teacher is not None  # else the student learnt from the teacher's cache
            extra["trained_biases"] = _fit_output_bias(
                result,
                recipe,
                pipeline,
                student,
                teacher if online else load_model(bias_teacher_path),
            )
        _write_evaluation(result, pipeline, extra)
    return result


def _output_bias_teacher_path(recipe: Recipe, loss: Any, teacher_path: Path | None) -> Path | None:
    """The teacher checkpoint ``training.output_bias: teacher`` fits the student's biases to
    (checked before training); None: the biases stay as trained."""
    if recipe.training.output_bias == "trained" or not loss.needs_teacher:
        return None  # a student taught without a teacher keeps its trained biases
    path = teacher_path or recipe.teacher.checkpoint
    if not path:
        raise ConfigError(
            "training.output_bias 'teacher' fits the student's biases to the teacher model's "
            "window scores: pass --teacher TEACHER.keras (as well as --cache when training from "
            "a teacher cache) or set teacher.checkpoint in the recipe"
        )
    return Path(path)


def _fit_output_bias(
    result: FitResult,
    recipe: Recipe,
    pipeline: AudioPipeline,
    student: keras.Model,
    teacher: keras.Model,
) -> dict[str, Any]:
    """The trained student's biases fitted to ``teacher`` (lean_kd.probe.output_bias), written
    into final.keras and, when it holds another epoch, best.keras. Returns best.keras's val and
    test metrics before the refit, so a run report shows what the refit changed."""
    from lean_kd.probe.output_bias import fit_output_bias

    keeps_last = recipe.training.monitor == "none"  # best.keras is final.keras
    best = student if keeps_last else load_model(result.best_path)
    before = _split_metrics(best, pipeline)
    checkpoints = {result.final_path: student}
    if not keeps_last:
        checkpoints[result.best_path] = best
    fit_output_bias(
        list(checkpoints.values()),
        teacher,
        pipeline.index,
        hop_fraction=window_hop_fraction(recipe),
        strict=recipe.pipeline.strict,
    )
    for path, model in checkpoints.items():
        save_model(model, path)
    if keeps_last:
        write_atomic(result.best_path, result.final_path.read_bytes())
    return before


def distributed_recipe(
    recipe: Recipe, strategy: str | None = None
) -> tuple[tf.distribute.Strategy, Recipe]:
    """The strategy (``strategy``, else the recipe's ``distribute.strategy``) and the recipe with
    ``pipeline.batch_size`` made the global batch. Call first: see
    :func:`lean_kd.training.distribute.make_strategy`."""
    made = make_strategy(strategy or recipe.distribute.strategy)
    batch = global_batch_size(recipe.pipeline.batch_size, recipe.distribute, made)
    return made, dataclasses.replace(
        recipe, pipeline=dataclasses.replace(recipe.pipeline, batch_size=batch)
    )


def qat_from_recipe(
    recipe: Recipe,
    student: keras.Model,
    run_dir: str | Path,
    *,
    epochs: int,
    learning_rate: float | None = None,
    teacher_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = "auto",
) -> tuple[keras.Model, DatasetIndex]:
    """:func:`lean_kd.training.qat.qat_finetune` on the recipe's data with its distillation loss,
    the teacher found as :func:`teacher_outputs` finds it. Returns the QAT model and the dataset
    index (its class names label the export; its train split can calibrate it). Under
    ``strategy`` (see :func:`distributed_recipe`) the teacher is loaded and the QAT copy made."""
    from lean_kd.training.qat import qat_finetune, qat_training

    scope = strategy or tf.distribute.get_strategy()
    index = load_data(recipe)
    loss = distillation_loss(recipe, index)
    with scope.scope():
        teacher, crops, val_crops = teacher_outputs(
            recipe, index, loss, teacher_path=teacher_path, cache_dir=cache_dir
        )
    model = qat_finetune(
        student, loss, make_pipeline(recipe, index),
        qat_training(recipe.training, epochs=epochs, learning_rate=learning_rate), run_dir,
        teacher=teacher, crops=crops, val_crops=val_crops, strategy=scope, verbose=verbose,
    )  # fmt: skip
    return model, index


def _write_evaluation(
    result: FitResult, pipeline: AudioPipeline, extra: Mapping[str, Any] | None = None
) -> None:
    """metrics.json beside the checkpoints: the best model on val and test (when present), and
    ``extra`` entries."""
    model = load_model(result.best_path)
    report = {"epochs_run": result.epochs_run, "parameters": int(model.count_params())}
    report.update(_split_metrics(model, pipeline))
    report.update(extra or {})
    path = result.run_dir / "metrics.json"
    write_json(path, report)
    logger.info(
        "best model: val mAP %.4f%s",
        report["val"]["map"],
        f", test mAP {report['test']['map']:.4f}" if "test" in report else "",
    )


def _split_metrics(model: keras.Model, pipeline: AudioPipeline) -> dict[str, Any]:
    """``{split: evaluate_keras report}`` for val and test, when the data has them."""
    return {
        split: evaluate_keras(model, pipeline, split)
        for split in ("val", "test")
        if pipeline.index.split(split)
    }


__all__ = [
    "cache_teacher",
    "distill",
    "load_data",
    "load_model",
    "make_pipeline",
    "train",
    "train_student",
]
