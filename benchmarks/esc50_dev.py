"""Real environmental sound, few clips per class: ESC-50 dev set, 4-fold cross-validation.

For each test fold k of ``../shared/datasets/esc50-dev`` (train on the other three, 15 % of
their source recordings held out for validation) and each seed, through ``lean_kd.run.experiment``
and ``lean_kd.probe`` (the code of ``lean-kd probe / train / cache-teacher / distill``) and the
recipe ``models/recipes/esc50_dev.yaml``:

- **probe**: the floor, a logistic regression on clip-pooled frozen-YAMNet outputs;
- **teacher**: the recipe's teacher (frozen YAMNet, linear head fitted on every window);
- with ``--students``: LEAN without KD and LEAN with each method in ``METHODS``, distilled from
  the teacher's cache.

The probe and the linear-head teacher have no random part (a convex fit on fixed features): their
spread is over folds only, and they run once per fold. Students run per seed.

    python benchmarks/esc50_dev.py [--out benchmarks/runs/esc50_dev] [--seeds 0 1 2] [--students]

Finished runs (their ``metrics.json``) are reused, so an interrupted benchmark resumes. Writes
benchmarks/results/esc50_dev.md (the table) and esc50_dev.json (every run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lean_kd.run import experiment
from lean_kd.distill.teacher_cache import META_FILE
from lean_kd.files import write_atomic
from lean_kd.probe import run_probe, yamnet_backbone
from lean_kd.run.recipe import Recipe, load_recipe

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RECIPE = HERE.parent / "models" / "recipes" / "esc50_dev.yaml"
SHARED = HERE.parent.parent / "shared"
FOLDS = (1, 2, 3, 4)
KD = {"name": "hinton_kd", "temperature": 2.0, "lambda": 1.0}
# student rows: (distillation loss, cache.targets); "clip": the teacher's verdict on the whole clip
METHODS: dict[str, tuple[list[dict[str, Any]], str]] = {
    "LEAN, no KD": ([{"name": "ce"}], "crop"),
    "LEAN, KD": ([KD], "crop"),
    "LEAN, KD on clip targets": ([KD], "clip"),
    "LEAN, KD + PKT": ([KD, {"name": "pkt", "weight": 1.0}], "crop"),
}
logger = logging.getLogger("esc50_dev")


def fold_recipe(base: Recipe, fold: int, seed: int = 0) -> Recipe:
    data = dataclasses.replace(base.data, test_folds=(fold,))
    training = dataclasses.replace(base.training, seed=seed)
    return dataclasses.replace(base, data=data, training=training)


def finished(run_dir: Path, work: Callable[[], Any]) -> dict[str, Any]:
    """``metrics.json`` of ``run_dir``, running ``work`` first when it is missing."""
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        start = time.perf_counter()
        work()
        metrics = json.loads(metrics_path.read_text())
        metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_atomic(metrics_path, json.dumps(metrics, indent=1))
    return json.loads(metrics_path.read_text())


def fold_runs(base: Recipe, out: Path, fold: int, seeds: list[int], students: bool) -> list[dict]:
    """Every run of one test fold: probe, teacher, then (optionally) the students per seed."""
    recipe = fold_recipe(base, fold)
    index = experiment.load_data(recipe)
    folder = out / f"fold{fold}"
    rows = [
        _row("probe (floor)", fold, None, finished(folder / "probe", lambda: run_probe(
            index, folder / "probe", backbone=yamnet_backbone(), settings=recipe.probe,
            cache_dir=out / "window_outputs",
        ))),  # fmt: skip
        _row("teacher (frozen YAMNet, window head)", fold, None, finished(
            folder / "teacher", lambda: experiment.train(recipe, folder / "teacher", verbose=0)
        )),  # fmt: skip
    ]
    if not students:
        return rows
    cache = folder / "cache"
    if not (cache / META_FILE).exists():
        experiment.cache_teacher(recipe, folder / "teacher" / "best.keras", cache, progress=False)
    for seed in seeds:
        for method, (loss, targets) in METHODS.items():
            student = dataclasses.replace(
                fold_recipe(base, fold, seed), loss=tuple(loss),
                cache=dataclasses.replace(base.cache, targets=targets),
            )  # fmt: skip
            run_dir = folder / f"{method.lower().replace(', ', '_').replace(' ', '')}_s{seed}"
            metrics = finished(run_dir, lambda: experiment.distill(
                student, run_dir, cache_dir=cache, verbose=2
            ))  # fmt: skip
            rows.append(_row(method, fold, seed, metrics))
    return rows


def _row(model: str, fold: int, seed: int | None, metrics: dict[str, Any]) -> dict[str, Any]:
    test = metrics["test"]
    return {
        "model": model, "fold": fold, "seed": seed, "accuracy": test["accuracy"],
        "map": test["map"], "wall_seconds": metrics.get("wall_seconds"),
        "parameters": metrics.get("parameters"),
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: mean ± std over folds (x seeds) of test accuracy and mAP per model."""
    lines = [
        "| model | runs | test accuracy | test mAP | parameters | wall s per run |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        acc, ap = (np.array([r[k] for r in mine]) for k in ("accuracy", "map"))
        ddof = 1 if len(mine) > 1 else 0
        seconds = [r["wall_seconds"] for r in mine if r["wall_seconds"] is not None]
        params = mine[0]["parameters"] or "—"
        wall = f"{np.mean(seconds):.0f}" if seconds else "—"
        lines.append(
            f"| {model} | {len(mine)} | {acc.mean():.3f} ± {acc.std(ddof=ddof):.3f} | "
            f"{ap.mean():.3f} ± {ap.std(ddof=ddof):.3f} | {params} | {wall} |"
        )
    return lines


def write_results(rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    RESULTS.mkdir(exist_ok=True)
    name = "esc50_dev" if sorted(args.folds) == list(FOLDS) else "esc50_dev_partial"
    command = " ".join(["python benchmarks/esc50_dev.py", *sys.argv[1:]])
    header = [
        "# ESC-50 dev set: 4-fold cross-validation, few clips per class",
        "",
        f"Written by `{command}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; whole benchmark {seconds / 60:.1f} min (finished runs reused).",
        "Test fold k, training on the other three folds (15 % of their source recordings held",
        "out for validation); mean ± sample std over folds (and seeds for the students).",
        "The probe and the linear-head teacher have no random part: one run per fold.",
        "",
    ]
    text = "\n".join(header + table(rows)) + "\n"
    write_atomic(RESULTS / f"{name}.md", text)
    write_atomic(RESULTS / f"{name}.json", json.dumps({"runs": rows}, indent=1))
    print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "esc50_dev")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="an esc50_dev.yaml variant")
    parser.add_argument("--data", type=Path, default=SHARED / "datasets" / "esc50-dev")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--students", action="store_true", help="also train the LEAN students")
    parser.add_argument(
        "--folds", type=int, nargs="+", default=list(FOLDS),
        help="test folds to run (a subset writes esc50_dev_partial.md instead of the table)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not args.data.is_dir():
        print(f"esc50-dev not found at {args.data}", file=sys.stderr)
        return 2
    weights = SHARED / "pretrained" / "yamnet" / "yamnet.tflite"
    if weights.is_file():  # the team's copy of the official file; else the user's cache
        os.environ.setdefault("LEAN_KD_YAMNET", str(weights))
    base = load_recipe(args.recipe, data={"root": str(args.data)})
    start = time.perf_counter()
    rows = [r for fold in args.folds for r in fold_runs(base, args.out, fold, args.seeds, args.students)]
    write_results(rows, args, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
