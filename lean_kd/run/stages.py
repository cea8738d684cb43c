"""The stages of ``lean-kd run``: what each reads, what goes into its fingerprint, what it writes.

Each stage is a :class:`Stage`: ``inputs(ctx)`` is the part of the recipe (and data) the stage
depends on, ``depends`` the upstream stages whose records join its fingerprint, and
``run(ctx, out)`` does the work into folder ``out`` and returns the outputs it wrote (relative
to ``out``). The layout of every folder is the run-folder contract in :mod:`lean_kd.run`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd.config import DistributeSection, to_dict
from lean_kd.data.index import DatasetIndex
from lean_kd.errors import DataError, ExportError
from lean_kd.run import experiment
from lean_kd.run.fingerprint import StageRecord, data_fingerprint, write_json
from lean_kd.run.recipe import Recipe
from lean_kd.run.results import PROBE_SKIPPED

logger = logging.getLogger(__name__)

TRAINING_OUTPUTS = ["best.keras", "final.keras", "history.csv", "metrics.json"]


@dataclasses.dataclass
class RunContext:
    """What every stage needs: the (resolved) recipe, the run folder, finished upstream records."""

    recipe: Recipe
    run_dir: Path
    yamnet_weights: str | None  # pretrained YAMNet weights found (None: random init)
    progress: bool = True
    records: dict[str, StageRecord] = dataclasses.field(default_factory=dict)
    _index: DatasetIndex | None = None

    def index(self) -> DatasetIndex:
        """The recipe's dataset index with its splits (loaded once per run)."""
        if self._index is None:
            self._index = experiment.load_data(self.recipe)
        return self._index

    def path(self, stage: str, name: str = "") -> Path:
        return self.run_dir / stage / name if name else self.run_dir / stage

    @property
    def verbose(self) -> Any:
        return "auto" if self.progress else 0

    @property
    def eval_split(self) -> str:
        return "test" if self.index().split("test") else "val"


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    depends: tuple[str, ...]
    inputs: Callable[[RunContext], dict[str, Any]]
    run: Callable[[RunContext, Path], list[str]]
    enabled: Callable[[Recipe], bool] = lambda recipe: True
    recorded: bool = True  # False: no folder and no stage.json, runs every time into the run folder


def _sections(*names: str) -> Callable[[RunContext], dict[str, Any]]:
    """Fingerprint inputs made of recipe sections (dataclasses as dicts)."""

    def inputs(ctx: RunContext) -> dict[str, Any]:
        values = {name: getattr(ctx.recipe, name) for name in names}
        return {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in values.items()}

    return inputs


def _training_sections(*names: str) -> Callable[[RunContext], dict[str, Any]]:
    """A training stage's sections, plus ``distribute`` when it is not the default: the strategy
    and what the batch size counts change the training (runs without it keep their fingerprints)."""
    sections = _sections(*names)

    def inputs(ctx: RunContext) -> dict[str, Any]:
        values = sections(ctx)
        if ctx.recipe.distribute != DistributeSection():
            values["distribute"] = to_dict(ctx.recipe.distribute)
        return values

    return inputs


# ------------------------------------------------------------------------------------ prepare


def prepare_inputs(ctx: RunContext) -> dict[str, Any]:
    index = ctx.index()
    return {
        "data": to_dict(ctx.recipe.data),
        "split_seed": ctx.recipe.pipeline.seed,
        "data_fingerprint": data_fingerprint(index),
        "pretrained_yamnet": ctx.yamnet_weights is not None,
    }


def run_prepare(ctx: RunContext, out: Path) -> list[str]:
    """Index and validate the data: counts per split, unreadable files (an error if strict)."""
    from lean_kd.data.inspect import inspect_dataset

    index = ctx.index()
    report = inspect_dataset(index, progress=ctx.progress)
    broken = [{"path": u.path, "reason": u.reason} for u in report.unreadable]
    if broken and ctx.recipe.pipeline.strict:
        raise DataError(
            f"Dataset {index.name}: {len(broken)} unreadable file(s), e.g. {broken[0]['path']} "
            f"({broken[0]['reason']}); fix them or set pipeline.strict: false to skip them"
        )
    summary = {
        "dataset": index.name,
        "root": ctx.recipe.data.root,
        "num_classes": index.num_classes,
        "class_names": list(index.class_names),
        "multi_label": index.multi_label,
        "splits": {s: len(index.split(s)) for s in ("train", "val", "test")},
        "broken_files": broken,
        "fingerprint": index.fingerprint(),
        "pretrained_yamnet": ctx.yamnet_weights is not None,
    }
    write_json(out / "index.json", summary)
    return ["index.json"]


# --------------------------------------------------------------------------------- probe


def probe_inputs(ctx: RunContext) -> dict[str, Any]:
    return {
        "probe": to_dict(ctx.recipe.probe),
        "strict": ctx.recipe.pipeline.strict,
        "yamnet_weights": ctx.yamnet_weights,
    }


def run_probe(ctx: RunContext, out: Path) -> list[str]:
    """The floor: a linear probe on the frozen pretrained YAMNet (lean_kd.probe).

    Without pretrained weights there is no floor to draw: metrics.json says why.
    """
    from lean_kd.probe import run_probe as fit_probe
    from lean_kd.probe import yamnet_backbone
    from lean_kd.probe.evaluation import METRICS_FILE, PROBE_FILE

    if ctx.yamnet_weights is None:
        write_json(out / METRICS_FILE, {"skipped": PROBE_SKIPPED})
        return [METRICS_FILE]
    fit_probe(
        ctx.index(),
        out,
        backbone=yamnet_backbone(ctx.yamnet_weights),
        settings=ctx.recipe.probe,
        cache_dir=ctx.run_dir / "window_outputs",
        strict=ctx.recipe.pipeline.strict,
        progress=ctx.progress,
    )
    return [METRICS_FILE, PROBE_FILE]


# ----------------------------------------------------------------------------- training


def run_teacher(ctx: RunContext, out: Path) -> list[str]:
    experiment.train(ctx.recipe, out, verbose=ctx.verbose)
    return TRAINING_OUTPUTS


def run_cache(ctx: RunContext, out: Path) -> list[str]:
    cache = experiment.cache_teacher(
        ctx.recipe, ctx.path("teacher", "best.keras"), out, progress=ctx.progress
    )
    return sorted(
        p.name for p in cache.directory.iterdir() if p.is_file() and not p.name.startswith(".")
    )


def run_student(ctx: RunContext, out: Path) -> list[str]:
    experiment.train_student(ctx.recipe, out, verbose=ctx.verbose)
    return TRAINING_OUTPUTS


def run_distill(ctx: RunContext, out: Path) -> list[str]:
    cache = ctx.path("cache") if ctx.recipe.cache.enabled else None
    experiment.distill(
        ctx.recipe,
        out,
        teacher_path=ctx.path("teacher", "best.keras"),
        cache_dir=cache,
        verbose=ctx.verbose,
    )
    return TRAINING_OUTPUTS


# -------------------------------------------------------------------------------- export


def student_name(recipe: Recipe) -> str:
    """File-name stem of the student: its registry name, or its checkpoint's stem."""
    return (
        Path(recipe.student.checkpoint).stem if recipe.student.checkpoint else recipe.student.name
    )


def run_export(ctx: RunContext, out: Path) -> list[str]:
    """The distilled student in int8 and the recipe's other modes, each with its parity."""
    from lean_kd.export.tflite import input_samples

    recipe, index = ctx.recipe, ctx.index()
    model = experiment.load_model(ctx.path("distill", "best.keras"))
    num_samples = input_samples(model)
    windows = _waveforms(index, recipe, num_samples, recipe.export.parity_windows, ctx.eval_split)
    models = []
    for quant in recipe.export.all_modes:
        path = out / f"{student_name(recipe)}_{quant}.tflite"
        models.append(_export_one(ctx, model, quant, path, num_samples, windows))
        logger.info("Exported %s (%d bytes)", path, models[-1]["size_bytes"])
    write_json(out / "export.json", {"models": models})
    return ["export.json"] + [m["path"] for m in models]


def _export_one(ctx, model, quant: str, path: Path, num_samples: int, windows) -> dict[str, Any]:
    from lean_kd.export.checkpoint import export_checkpoint
    from lean_kd.export.verify import parity

    recipe, index = ctx.recipe, ctx.index()
    try:
        result = export_checkpoint(
            model,
            quant=quant,
            out=path,
            index=index,
            sample_rate=recipe.audio.sample_rate,
            calibration_count=recipe.export.num_calibration,
            keep_frontend_float=recipe.export.keep_frontend_float,
            float_ops=recipe.export.float_ops,
            equalize_channels=recipe.export.equalize_channels,
            dynamic_layers=recipe.export.dynamic_layers,
            lstm=recipe.export.lstm,
            dft=recipe.export.dft,
            multi_label=index.multi_label,
        )
    except OSError as exc:  # e.g. a full disk while the converter writes its temporary files
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise ExportError(
            f"Cannot export {path} ({quant}): {reason}; nothing was marked done"
        ) from None
    agreement = parity(model, result.path, windows, multi_label=index.multi_label)
    return {
        "quant": quant,
        "path": path.name,
        "size_bytes": result.size_bytes,
        "parity": dataclasses.asdict(agreement),
    }


def _waveforms(index: DatasetIndex, recipe: Recipe, num_samples: int, count: int, split: str):
    """Up to ``count`` centre crops of ``split`` as float32 ``[N, num_samples]``."""
    from lean_kd.export.representative import representative_from_index

    crops = representative_from_index(
        index,
        sample_rate=recipe.audio.sample_rate,
        num_samples=num_samples,
        count=count,
        split=split,
    )
    return np.stack([np.reshape(waveform, [-1])[:num_samples] for waveform, _ in crops]).astype(
        np.float32
    )


# ------------------------------------------------------------------------------ evaluate


def evaluated_models(ctx: RunContext) -> dict[str, Path]:
    """Report name -> model file: Keras teacher, students, then every exported file."""
    models = {"teacher": ctx.path("teacher", "best.keras")}
    if ctx.recipe.baseline_student:
        models["student"] = ctx.path("student", "best.keras")
    models["distill"] = ctx.path("distill", "best.keras")
    for entry in read_export(ctx.run_dir)["models"]:
        models[f"distill_{entry['quant']}"] = ctx.path("export", entry["path"])
    return models


def read_export(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "export" / "export.json").read_text())


def run_evaluate(ctx: RunContext, out: Path) -> list[str]:
    """Clip-level metrics of every model on the test split (val when there is none)."""
    from lean_kd.evaluation import evaluate_model, write_evaluation

    outputs = []
    for name, path in evaluated_models(ctx).items():
        report = evaluate_model(
            path, ctx.index(), split=ctx.eval_split, audio=ctx.recipe.audio, progress=ctx.progress
        )
        write_evaluation(report, out / f"{name}.json")
        outputs.append(f"{name}.json")
        logger.info("%s: mAP %.4f on %s", name, report["map"], ctx.eval_split)
    return outputs


# --------------------------------------------------------------------------------- bench


def yamnet_baseline(ctx: RunContext) -> str | None:
    """The official yamnet.tflite to benchmark against, when the found weights are one."""
    from lean_kd.models.yamnet.weights import weights_format

    source = ctx.yamnet_weights
    if not ctx.recipe.bench.yamnet_baseline or source is None or weights_format(source) != "tflite":
        return None
    return source


def bench_inputs(ctx: RunContext) -> dict[str, Any]:
    baseline = yamnet_baseline(ctx)
    size = Path(baseline).stat().st_size if baseline else None
    return {"bench": to_dict(ctx.recipe.bench), "baseline_bytes": size}


def run_bench(ctx: RunContext, out: Path) -> list[str]:
    """Latency, memory and size of the int8 student (and the official YAMNet, interleaved)."""
    from lean_kd.bench.benchmark import BenchConfig, TimingConfig, run_benchmark
    from lean_kd.bench.report import write_bench_report

    settings = ctx.recipe.bench
    int8 = next(m for m in read_export(ctx.run_dir)["models"] if m["quant"] == "int8")
    config = BenchConfig(
        threads=settings.threads,
        timing=TimingConfig(runs=settings.runs, warmup_runs=settings.warmup_runs),
        sample_rate_hz=ctx.recipe.audio.sample_rate,
        memory_repeats=settings.memory_repeats,
    )
    baseline = yamnet_baseline(ctx)
    if baseline is None:
        logger.info("No official yamnet.tflite found: benchmarking the student alone")
    report = run_benchmark(ctx.path("export", int8["path"]), baseline=baseline, config=config)
    write_bench_report(report, json_path=out / "bench.json", markdown_path=out / "bench.md")
    return ["bench.json", "bench.md"]


def run_report(ctx: RunContext, out: Path) -> list[str]:
    """DIR/report.md and its plots (lean_kd.run.report), from whatever the stages left."""
    from lean_kd.run.report import write_run_report

    return [str(write_run_report(out).relative_to(out))]


DATA = ("audio", "pipeline", "augment")
STAGES: tuple[Stage, ...] = (
    Stage("prepare", (), prepare_inputs, run_prepare),
    Stage(
        "probe",
        ("prepare",),
        probe_inputs,
        run_probe,
        enabled=lambda recipe: recipe.probe.enabled,
    ),
    Stage(
        "teacher",
        ("prepare",),
        _training_sections("teacher", "teacher_loss", "teacher_training", *DATA),
        run_teacher,
    ),
    Stage(
        "cache",
        ("prepare", "teacher"),
        _sections("cache", "audio", "pipeline"),
        run_cache,
        enabled=lambda recipe: recipe.cache.enabled,
    ),
    Stage(
        "student",
        ("prepare",),
        _training_sections("student", "teacher_loss", "training", *DATA),
        run_student,
        enabled=lambda recipe: recipe.baseline_student,
    ),
    Stage(
        "distill",
        ("prepare", "teacher", "cache"),
        _training_sections("student", "loss", "training", *DATA),
        run_distill,
    ),
    Stage("export", ("prepare", "distill"), _sections("export", "audio"), run_export),
    Stage(
        "evaluate",
        ("prepare", "teacher", "student", "distill", "export"),
        _sections("audio"),
        run_evaluate,
    ),
    Stage(
        "bench",
        ("export",),
        bench_inputs,
        run_bench,
        enabled=lambda recipe: recipe.bench.enabled,
    ),
    Stage("report", (), lambda ctx: {}, run_report, recorded=False),  # seconds: always rebuilt
)
