"""The tables ``lean-kd run`` and ``lean-kd demo`` print at the end: stage times and results.

The results come from the run folder through :func:`lean_kd.run.results.load_run` (the same
reader as the report), so the console and report.md never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from lean_kd.run.recipe import Recipe
from lean_kd.run.results import floor_note, load_run
from lean_kd.run.runner import RunResult, StageOutcome, run_pipeline


def stage_table(
    outcomes: Iterable[StageOutcome], extra: Mapping[str, tuple[float, float]] | None = None
) -> str:
    """One row per stage: what happened, wall and CPU seconds in this invocation.

    ``extra``: steps before the pipeline, ``{name: (wall seconds, CPU seconds)}``, listed first.
    """
    rows = [(name, "ran", wall, cpu) for name, (wall, cpu) in (extra or {}).items()]
    rows += [(o.stage, o.status, o.seconds, o.cpu_seconds) for o in outcomes]
    lines = ["| stage | status | wall s | CPU s |", "|---|---|---:|---:|"]
    lines += [f"| {name} | {status} | {wall:.1f} | {cpu:.1f} |" for name, status, wall, cpu in rows]
    lines.append(f"| total | | {sum(r[2] for r in rows):.1f} | {sum(r[3] for r in rows):.1f} |")
    return "\n".join(lines)


def results_table(run_dir: Path) -> str:
    """One row per evaluated model: mAP, accuracy, size, p50 latency (benchmarked models); then
    the floor (the linear probe) and the models below it."""
    run = load_run(run_dir)
    latency = _latency_by_file(run.bench)
    lines = [
        "| model | split | mAP | accuracy | size MB | p50 latency ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model in run.models:
        accuracy = model.metrics.get("accuracy")
        lines.append(
            f"| {model.label} | {model.split} | {model.metrics['map']:.4f} | "
            f"{'n/a' if accuracy is None else f'{accuracy:.4f}'} | "
            f"{'n/a' if model.size_bytes is None else f'{model.size_bytes / 1e6:.2f}'} | "
            f"{latency.get(model.file_name or '', 'n/a')} |"
        )
    for name, value in latency.items():
        if name not in {m.file_name for m in run.models}:  # the official YAMNet baseline
            lines.append(f"| {name} (baseline) | | | | | {value} |")
    return "\n".join([*lines, "", floor_note(run)])


def _latency_by_file(bench: Mapping | None) -> dict[str, str]:
    """{file name: p50 ms at the first thread count} from bench.json."""
    latency = {}
    for model in (bench or {}).get("models", []):
        entries = model.get("latency") or []
        if entries and entries[0].get("p50_ms") is not None:
            latency[Path(model["path"]).name] = f"{entries[0]['p50_ms']:.2f}"
    return latency


def run_with_summary(
    recipe: Recipe,
    out: Path,
    *,
    from_stage: str | None = None,
    until: str | None = None,
    recipe_path: str | None = None,
    extra_times: Mapping[str, tuple[float, float]] | None = None,
) -> RunResult:
    """:func:`run_pipeline` for a terminal: each stage's line as it goes, then both tables.

    ``extra_times``: steps before the pipeline (the demo's data synthesis), see :func:`stage_table`.
    """
    result = run_pipeline(
        recipe,
        out,
        from_stage=from_stage,
        until=until,
        recipe_path=recipe_path,
        echo=lambda line: print(line, flush=True),
    )
    print("\nStage times (this invocation):\n" + stage_table(result.outcomes, extra_times))
    if any((out / stage / "stage.json").is_file() for stage in ("probe", "evaluate")):
        print("\nResults:\n" + results_table(out))
    if not result.pretrained_yamnet:
        print(
            "Note: no pretrained YAMNet weights were found; YAMNet branches started from random init."
        )
    if (out / "report.md").is_file():
        print(f"\nReport: {out / 'report.md'}")
    return result
