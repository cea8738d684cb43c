"""Distillation on real speech: FSDD digits, YAMNet teacher -> LEAN and small-CNN students.

Fine-tunes the recipe's YAMNet teacher once, caches its outputs (fixed crops per clip), then
trains each student without KD, with Hinton KD, with PKT (+ CE) and with KD + PKT, for several
seeds, all from the cache. Every run goes through ``lean_kd.run.experiment`` (the code path of
``lean-kd train / cache-teacher / distill``) and the FSDD recipe, so ``lean-kd run`` with
``models/recipes/fsdd.yaml`` trains the "lean / kd" cell of the table.

    python benchmarks/fsdd_kd.py [--out benchmarks/runs/fsdd_kd] [--seeds 0 1 2] [--jobs 2]

Finished runs (their ``metrics.json``) are reused, so an interrupted benchmark resumes.
Student runs go ``--jobs`` at a time, each in a fresh process (``processes.py``).
Writes benchmarks/results/fsdd_kd.md (the table) and fsdd_kd.json (every run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd.distill.teacher_cache import META_FILE
from lean_kd.files import write_atomic
from lean_kd.run import experiment
from lean_kd.run.recipe import ModelSection, Recipe, load_recipe
from processes import map_in_processes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RECIPE = HERE.parent / "models" / "recipes" / "fsdd.yaml"
SHARED_YAMNET = HERE.parent.parent / "shared" / "pretrained" / "yamnet" / "yamnet.tflite"

METHODS: dict[str, list[dict[str, Any]]] = {
    "no KD": [{"name": "ce"}],
    "KD": [{"name": "hinton_kd", "temperature": 4.0, "lambda": 1.0}],
    "PKT": [{"name": "ce"}, {"name": "pkt", "weight": 1.0}],
    "KD + PKT": [
        {"name": "hinton_kd", "temperature": 4.0, "lambda": 1.0},
        {"name": "pkt", "weight": 1.0},
    ],
}


@dataclasses.dataclass(frozen=True)
class Student:
    model: ModelSection
    epochs: int  # LEAN starts from pretrained YAMNet weights; the CNN from scratch needs more


STUDENTS: dict[str, Student] = {
    "lean": Student(
        ModelSection(name="lean", options={"pretrained": "if_available"}), epochs=3
    ),  # = recipe
    "cnn": Student(
        ModelSection(name="mobilenet_v2", options={"width": 0.5, "last_channels": 256}), epochs=4
    ),
}


def run_once(run_dir: Path, train: Any) -> dict[str, Any]:
    """``metrics.json`` of a finished run, training it first when it is missing."""
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        start = time.perf_counter()
        train()
        seconds = time.perf_counter() - start
        metrics = json.loads(metrics_path.read_text())
        metrics["train_seconds"] = seconds
        write_atomic(metrics_path, json.dumps(metrics, indent=1))
    return json.loads(metrics_path.read_text())


def student_recipe(
    base: Recipe,
    student: str,
    method: str,
    seed: int,
    *,
    students: Mapping[str, Student] = STUDENTS,
) -> Recipe:
    setup = students[student]
    training = dataclasses.replace(base.training, seed=seed, epochs=setup.epochs)
    return dataclasses.replace(
        base, student=setup.model, loss=tuple(METHODS[method]), training=training
    )


def distill_run(run_dir: Path, recipe: Recipe, cache_dir: Path) -> dict[str, Any]:
    """One student run (in a worker process): its metrics, training it when not finished."""
    return run_once(
        run_dir, lambda: experiment.distill(recipe, run_dir, cache_dir=cache_dir, verbose=2)
    )


def summarise(rows: list[dict[str, Any]]) -> dict[str, str]:
    """mean ± std of the test metrics over seeds, as table cells."""

    def cell(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
        arr = np.asarray(values) * scale
        return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1) if len(arr) > 1 else 0.0:.{digits}f}"

    return {
        "accuracy": cell([r["test"]["accuracy"] for r in rows]),
        "map": cell([r["test"]["map"] for r in rows]),
        "val_map": cell([r["val"]["map"] for r in rows]),
        "params": f"{rows[0]['parameters'] / 1e6:.2f} M",
        "minutes": cell([r["train_seconds"] / 60 for r in rows], digits=1),
        "epochs": f"{np.mean([r['epochs_run'] for r in rows]):.0f}",
    }


def write_results(
    teacher: dict,
    runs: dict[tuple[str, str], list[dict]],
    args: argparse.Namespace,
    total: float,
    recipe: Recipe,
    reused: int,
) -> str:
    lines = [
        "# Knowledge distillation on FSDD (spoken digits)",
        "",
        f"Command: `python benchmarks/{Path(__file__).name} {shlex.join(sys.argv[1:])}`".rstrip(
            " `"
        )
        + "`",
        "",
        f"Data: Free Spoken Digit Dataset ({recipe.data.root}), customary split (recordings 0-4 of each "
        f"speaker/digit are the test set, 300 clips), {recipe.data.options.get('val_fraction', 0)} of train held out "
        "for validation. 16 kHz, 1 s crops (random in training, fixed teacher-cache crops for distillation), "
        "evaluation on 1 s windows with 50 % overlap averaged per clip. "
        f"Batch {recipe.pipeline.batch_size}, Adam, teacher lr {recipe.teacher_training.learning_rate} for "
        f"{recipe.teacher_training.epochs} epochs, students lr {recipe.training.learning_rate} for "
        f"{', '.join(f'{s.epochs} ({name})' for name, s in STUDENTS.items())} epochs; the best epoch by "
        "validation mAP is kept and scored on test.",
        "",
        "| model | method | params | test accuracy | test mAP | val mAP | epochs | train minutes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| YAMNet teacher (fine-tuned, seed 0) | supervised | {teacher['parameters'] / 1e6:.2f} M | "
        f"{teacher['test']['accuracy']:.3f} | {teacher['test']['map']:.3f} | {teacher['val']['map']:.3f} | "
        f"{teacher['epochs_run']} | {teacher['train_seconds'] / 60:.1f} |",
    ]
    for (student, method), rows in runs.items():
        cells = summarise(rows)
        lines.append(
            f"| {student} ({STUDENTS[student].model.name}) | {method} | {cells['params']} | {cells['accuracy']} | "
            f"{cells['map']} | {cells['val_map']} | {cells['epochs']} | {cells['minutes']} |"
        )
    lines += [
        "",
        f"Mean ± sample std over seeds {', '.join(map(str, args.seeds))}. Methods: no KD = cross-entropy on labels; "
        "KD = Hinton KD (T = 4, lambda = 1); PKT = cross-entropy + probabilistic knowledge transfer on the "
        "embeddings (seed 000); KD + PKT = both. The teacher's outputs come from the cache (built once).",
        "",
        f"Total wall time {total / 60:.1f} min for the whole script"
        + (
            f", not counting {reused} run(s) reused from an earlier invocation"
            if reused
            else ", from scratch"
        )
        + f"; student runs {args.jobs} at a time (`--jobs`), so a run's 'train minutes' is under that "
        f"sharing. Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU, "
        f"load average at the end {os.getloadavg()[0]:.1f}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--data", type=Path, default=None, help="FSDD root (default: the recipe's)")
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "fsdd_kd")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--results", type=Path, default=RESULTS / "fsdd_kd.md")
    parser.add_argument("--jobs", type=int, default=2, help="student runs at a time (default 2)")
    args = parser.parse_args()
    if "LEAN_KD_YAMNET" not in os.environ and SHARED_YAMNET.exists():
        os.environ["LEAN_KD_YAMNET"] = str(SHARED_YAMNET)  # the team's copy; users have the cache
    overrides = {"data": {"root": str(args.data)}} if args.data else {}
    recipe = load_recipe(args.recipe, **overrides)
    start = time.perf_counter()
    teacher_dir, cache_dir = args.out / "teacher", args.out / "cache"
    reused = int((teacher_dir / "metrics.json").exists())
    teacher = run_once(teacher_dir, lambda: experiment.train(recipe, teacher_dir, verbose=2))
    if not (cache_dir / META_FILE).exists():  # written last: a partial cache resumes
        experiment.cache_teacher(recipe, teacher_dir / "best.keras", cache_dir)
    cells = [  # seed-major: an interrupted benchmark has every cell at least once
        (student, method, seed)
        for seed in args.seeds
        for student in args.students
        for method in args.methods
    ]
    run_dirs = {
        cell: args.out
        / f"{cell[0]}_{cell[1].replace(' ', '').replace('+', '_').lower()}_s{cell[2]}"
        for cell in cells
    }
    reused += sum((d / "metrics.json").exists() for d in run_dirs.values())
    results = map_in_processes(
        distill_run,
        [(run_dirs[cell], student_recipe(recipe, *cell), cache_dir) for cell in cells],
        args.jobs,
        announce=[
            f"== {s} / {m} / seed {seed} -> {run_dirs[(s, m, seed)]}" for s, m, seed in cells
        ],
    )
    runs: dict[tuple[str, str], list[dict]] = {}
    for (student, method, _), result in zip(cells, results):
        runs.setdefault((student, method), []).append(result)
    text = write_results(teacher, runs, args, time.perf_counter() - start, recipe, reused)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.results, text)
    data = {"teacher": teacher, "runs": {f"{s}/{m}": r for (s, m), r in runs.items()}}
    write_atomic(args.results.with_suffix(".json"), json.dumps(data, indent=1))
    print(text)


if __name__ == "__main__":
    main()
