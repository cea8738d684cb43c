"""``run_pipeline``: the stages of :mod:`lean_kd.run.stages` in order, skipping what is done.

A stage runs when it has no record, its fingerprint changed (its recipe sections, the data, or
an upstream stage that ran again), an output it listed is gone, or ``from_stage`` forces it;
otherwise it is skipped. A stage interrupted earlier with the same fingerprint resumes in its
folder (see :mod:`lean_kd.run.fingerprint`); any other rerun starts from an empty folder.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lean_kd.config import to_dict
from lean_kd.errors import ConfigError, LeanKDError, ModelError
from lean_kd.run import STAGE_NAMES
from lean_kd.run.fingerprint import (
    PENDING_FILE,
    fingerprint,
    new_record,
    not_done_reason,
    pending_fingerprint,
    read_record,
    write_json,
    write_record,
)
from lean_kd.run.recipe import ModelSection, Recipe
from lean_kd.run.stages import STAGES, RunContext, Stage
from lean_kd.training.distribute import check_run_strategy

logger = logging.getLogger(__name__)

PIPELINE_VERSION = 1  # bump when a stage's outputs change meaning: every stage reruns
IF_AVAILABLE = "if_available"  # lean_kd.models.yamnet.teacher.IF_AVAILABLE (no TF import here)


@dataclasses.dataclass(frozen=True)
class StageOutcome:
    stage: str
    status: str  # "ran", "skipped" (unchanged) or "off" (switched off in the recipe)
    seconds: float  # wall time
    cpu_seconds: float = (
        0.0  # process CPU time, all threads: what the stage costs on a busy machine
    )
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    outcomes: tuple[StageOutcome, ...]
    pretrained_yamnet: bool


def run_pipeline(
    recipe: Recipe,
    run_dir: Path,
    *,
    from_stage: str | None = None,
    until: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = logger.info,
    recipe_path: str | None = None,
) -> RunResult:
    """Run the stages up to ``until`` (default: all) into ``run_dir``; see the module docstring.

    ``echo`` receives one line per stage (what it does and how long it took).
    """
    for name in (from_stage, until):
        if name is not None and name not in STAGE_NAMES:
            raise ConfigError(f"Unknown stage {name!r}; expected one of {', '.join(STAGE_NAMES)}")
    check_export_modes(recipe)
    check_run_strategy(recipe.distribute.strategy)
    weights, why = find_yamnet_weights()
    if weights is None:
        echo(
            f"Pretrained YAMNet weights not found ({why}): YAMNet branches use RANDOM init; "
            "the report marks this run."
        )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(with_pretrained(recipe, weights is not None), run_dir, weights, progress)
    write_json(run_dir / "run.json", run_info(ctx, recipe_path))
    forced = set(STAGE_NAMES[STAGE_NAMES.index(from_stage) :]) if from_stage else set()
    stages = STAGES[: STAGE_NAMES.index(until) + 1] if until else STAGES
    outcomes = []
    for number, stage in enumerate(stages, 1):
        tag = f"[{number}/{len(stages)}] {stage.name}"
        outcomes.append(run_stage(stage, ctx, forced=stage.name in forced, echo=echo, tag=tag))
    return RunResult(run_dir, tuple(outcomes), weights is not None)


def run_stage(
    stage: Stage, ctx: RunContext, *, forced: bool, echo: Callable, tag: str
) -> StageOutcome:
    """Skip, resume or (re)run one stage; its record is written only once it succeeded."""
    out = ctx.path(stage.name)
    if not stage.enabled(ctx.recipe):
        if out.exists():  # an earlier run's outputs would look current in the report
            shutil.rmtree(out)
        echo(f"{tag}: off in the recipe")
        return StageOutcome(stage.name, "off", 0.0)
    if not stage.recorded:
        outputs, seconds, cpu = _timed_run(stage, ctx, ctx.run_dir)
        echo(f"{tag}: wrote {', '.join(outputs)} in {seconds:.1f} s (CPU {cpu:.1f} s)")
        return StageOutcome(stage.name, "ran", seconds, cpu)
    inputs = {
        "version": PIPELINE_VERSION,
        "config": stage.inputs(ctx),
        "upstream": {d: ctx.records[d].ref for d in stage.depends if d in ctx.records},
    }
    expected = fingerprint(inputs)
    record = read_record(out)
    reason = "forced by --from" if forced else not_done_reason(record, expected, out)
    if reason is None:
        ctx.records[stage.name] = record
        echo(f"{tag}: unchanged, skipped (ran in {record.seconds:.1f} s, {record.finished})")
        return StageOutcome(stage.name, "skipped", 0.0)
    pending = None if forced else pending_fingerprint(out)
    resume = pending == expected
    if record is None and pending is not None:
        reason = (
            "interrupted earlier"
            if resume
            else "interrupted earlier with other inputs; starting afresh"
        )
    echo(f"{tag}: {'resuming' if resume else 'running'} ({reason})")
    if not resume:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        write_json(out / PENDING_FILE, {"fingerprint": expected})
    outputs, seconds, cpu = _timed_run(stage, ctx, out)
    missing = [name for name in outputs if not (out / name).exists()]
    if missing:
        raise LeanKDError(f"Stage {stage.name} did not write {missing}; it is not marked done")
    record = new_record(stage.name, expected, inputs, seconds, outputs)
    write_record(out, record)
    (out / PENDING_FILE).unlink(missing_ok=True)
    ctx.records[stage.name] = record
    echo(f"{tag}: done in {seconds:.1f} s (CPU {cpu:.1f} s)")
    return StageOutcome(stage.name, "ran", seconds, cpu, reason)


def _timed_run(stage: Stage, ctx: RunContext, out: Path) -> tuple[list[str], float, float]:
    """(outputs, wall seconds, CPU seconds); a library error names the stage it came from."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        outputs = stage.run(ctx, out)
    except LeanKDError as exc:
        raise type(exc)(f"stage {stage.name}: {exc}") from exc
    return outputs, time.perf_counter() - start, time.process_time() - cpu


def find_yamnet_weights() -> tuple[str | None, str]:
    """(source of the official YAMNet weights, or None and why not) -- checked once per run."""
    from lean_kd.models.yamnet.pretrained import ENV_WEIGHTS, cache_dir, resolve_yamnet_weights
    from lean_kd.models.yamnet.weights import weights_format

    try:
        source = resolve_yamnet_weights()
        weights_format(source)
    except ModelError as exc:
        logger.debug("YAMNet weights: %s", exc)
        if os.environ.get(ENV_WEIGHTS):
            return None, str(exc)
        return None, f"no ${ENV_WEIGHTS}, none in {cache_dir()}, no download"
    return source, ""


def with_pretrained(recipe: Recipe, available: bool) -> Recipe:
    """``pretrained: if_available`` made definite, so models do not each look for the weights
    and the fingerprints change when the weights appear or disappear. Without weights a
    partly frozen YAMNet (``yamnet_trainable``) trains all its blocks: random ones must learn."""

    def resolve(section: ModelSection) -> ModelSection:
        if section.options.get("pretrained") != IF_AVAILABLE:
            return section
        options = {**section.options, "pretrained": available}
        if not available and "yamnet_trainable" in options:
            options["yamnet_trainable"] = "all"
        return dataclasses.replace(section, options=options)

    return dataclasses.replace(
        recipe, teacher=resolve(recipe.teacher), student=resolve(recipe.student)
    )


def check_export_modes(recipe: Recipe) -> None:
    """Unknown quantization modes fail before any stage runs, not after training."""
    from lean_kd.export.quantize import QUANT_MODES

    unknown = [mode for mode in recipe.export.all_modes if mode not in QUANT_MODES]
    if unknown:
        raise ConfigError(
            f"export.modes: unknown mode(s) {unknown}; expected some of {list(QUANT_MODES)}"
        )


def run_info(ctx: RunContext, recipe_path: str | None) -> dict:
    """DIR/run.json: how the run was started and the recipe as the stages see it."""
    return {
        "argv": sys.argv,
        "recipe": recipe_path,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "pretrained_yamnet": ctx.yamnet_weights is not None,
        "yamnet_weights": ctx.yamnet_weights,
        "resolved_recipe": to_dict(ctx.recipe),
    }
