"""Side-by-side report of the FSDD models: TFLite size, test mAP, latency, memory, plots.

    python benchmarks/run_all.py [--runs benchmarks/runs/fsdd_kd] [--seed 0] [--rebench]

Takes the Keras runs of ``benchmarks/fsdd_kd.py`` (``teacher/``, ``lean_kd_s0/``,
``cnn_kd_s0/``; ``lean_tiny_kd_s0/`` and ``lean_fast_kd_s0/`` are distilled here from the
teacher cache with the FSDD recipe's KD when missing), exports each to TFLite with
``lean_kd.export`` (int8 calibrated on the training split, as ``lean-kd export``, whose
``--lstm auto`` keeps LEAN's LSTMs hybrid and unrolls lean_fast's and lean_tiny's; also with
integer LSTMs, whose kernel is much slower), scores it on
the FSDD test split with ``lean_kd.evaluation`` and times it with ``lean_kd.bench`` at 1
thread, interleaved with the official YAMNet TFLite in the same run, so load drift hits both
alike and each ratio is a same-run ratio. Every step's output (``benchmarks/runs/run_all/``) is
reused on the next call, so an interrupted report resumes; ``--rebench`` times everything
again. A run that is not finished yet (no ``metrics.json``) is left out with a line saying so.
Writes benchmarks/results/summary.md, latency_cdf.png, size_latency.png and map_vs_size.png
(tables, goals and plots: ``run_all_report.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fsdd_kd import RECIPE, RESULTS, SHARED_YAMNET, Student, run_once, student_recipe
from lean_kd.distill.teacher_cache import META_FILE
from lean_kd.files import write_atomic
from lean_kd.run import experiment
from lean_kd.run.recipe import ModelSection, Recipe, load_recipe
from run_all_report import CANDIDATES, THREADS, Candidate, Measured, summary_text, write_plots

HERE = Path(__file__).resolve().parent
KD_METHOD = "KD"  # fsdd_kd's run folders: <student>_kd_s<seed>
logger = logging.getLogger("run_all")


def write_json(path: Path, data: Mapping) -> None:
    """Write ``data`` atomically (temporary file beside ``path``, then rename)."""
    write_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def cached_json(path: Path, compute: Callable[[], dict], *, refresh: bool = False) -> dict:
    """``path``'s JSON, computing and writing it first when missing (or ``refresh``)."""
    if refresh or not path.exists():
        write_json(path, compute())
    return json.loads(path.read_text())


EXTRA_STUDENTS: dict[str, Student] = {  # distilled here, with fsdd_kd's KD settings
    "lean_tiny": Student(  # random init; 4 epochs left it at 0.72 train accuracy
        ModelSection(name="lean_tiny"), epochs=8
    ),
    "lean_fast": Student(  # pretrained YAMNet branch: LEAN's settings
        ModelSection(name="lean_fast", options={"pretrained": "if_available"}), epochs=3
    ),
}


def extra_recipe(base: Recipe, student: str, seed: int) -> Recipe:
    """The FSDD recipe with one of :data:`EXTRA_STUDENTS`, Hinton KD (as fsdd_kd's KD cells)."""
    return student_recipe(base, student, KD_METHOD, seed, students=EXTRA_STUDENTS)


def ensure_distilled(recipe: Recipe, runs: Path, student: str, seed: int) -> None:
    """Distil ``student`` from the teacher cache unless its run is finished (or the cache is not)."""
    run_dir, cache_dir = runs / f"{student}_kd_s{seed}", runs / "cache"
    if (run_dir / "metrics.json").exists():
        return
    if not (cache_dir / META_FILE).exists():
        logger.warning(
            "Teacher cache %s not finished: %s not trained this time", cache_dir, student
        )
        return
    logger.info("Distilling %s into %s", student, run_dir)
    variant = extra_recipe(recipe, student, seed)
    run_once(run_dir, lambda: experiment.distill(variant, run_dir, cache_dir=cache_dir, verbose=2))


def export_candidate(checkpoint: Path, cand: Candidate, out: Path, index, count: int) -> dict:
    """Export ``checkpoint`` as ``lean-kd export`` does; a JSON-ready summary of the result."""
    from lean_kd.export.checkpoint import export_checkpoint

    result = export_checkpoint(
        checkpoint,
        quant=cand.quant,
        lstm=cand.lstm,
        dft=cand.dft,
        out=out,
        index=index,
        calibration_count=count,
    )
    return {
        "checkpoint": str(checkpoint),
        "path": str(result.path),
        "quant": result.quant,
        "lstm": result.lstm,
        "dft": result.dft,
        "size_bytes": result.size_bytes,
        "ops": result.summary.format(),
        "calibration_count": result.calibration_count,
        "timings_seconds": result.timings_seconds,
    }


def measure_candidate(
    cand: Candidate, args: argparse.Namespace, index, yamnet: Path | None
) -> Measured | None:
    """Export, evaluate and benchmark one candidate (each step reused when done before)."""
    from lean_kd.bench.benchmark import BenchConfig, TimingConfig, run_benchmark
    from lean_kd.evaluation import evaluate_model

    run_dir, stem = cand.run_dir(args.runs, args.seed), cand.stem(args.seed)
    tflite = args.work / f"{stem}.tflite"
    if not tflite.exists():
        if not (run_dir / "metrics.json").exists():
            logger.warning("%s: run %s not finished (no metrics.json); left out", cand.key, run_dir)
            return None
        export = export_candidate(
            run_dir / "best.keras", cand, tflite, index, args.calibration_count
        )
        write_json(args.work / f"{stem}.export.json", export)
    evaluation = cached_json(
        args.work / f"{stem}.eval.json",
        lambda: evaluate_model(tflite, index, split="test", progress=False),
    )
    timing = TimingConfig(runs=args.bench_runs, block_runs=args.block_runs)
    config = BenchConfig(threads=(THREADS,), timing=timing)
    bench = cached_json(
        args.work / f"{stem}.bench.json",
        lambda: run_benchmark(tflite, baseline=yamnet, config=config),
        refresh=args.rebench,
    )
    metrics = run_dir / "metrics.json"
    keras_map = json.loads(metrics.read_text())["test"]["map"] if metrics.exists() else None
    return Measured(cand, tflite, evaluation, bench, keras_map)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument(
        "--runs", type=Path, default=HERE / "runs" / "fsdd_kd", help="fsdd_kd.py's --out"
    )
    parser.add_argument(
        "--work", type=Path, default=HERE / "runs" / "run_all", help="TFLite files and JSON"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--yamnet", type=Path, default=SHARED_YAMNET, help="official YAMNet TFLite")
    parser.add_argument("--bench-runs", type=int, default=400, help="timed invokes per model")
    parser.add_argument("--block-runs", type=int, default=5, help="invokes per interleaved block")
    parser.add_argument("--calibration-count", type=int, default=200)
    parser.add_argument("--rebench", action="store_true", help="time every model again")
    parser.add_argument(
        "--no-train", action="store_true", help="do not distil lean_tiny and lean_fast"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    if "LEAN_KD_YAMNET" not in os.environ and SHARED_YAMNET.exists():
        os.environ["LEAN_KD_YAMNET"] = str(SHARED_YAMNET)  # as fsdd_kd.py: the team's copy
    recipe = load_recipe(args.recipe)
    if not args.no_train:
        for student in EXTRA_STUDENTS:
            ensure_distilled(recipe, args.runs, student, args.seed)
    index = experiment.load_data(recipe)
    yamnet = args.yamnet if args.yamnet.is_file() else None
    skipped = (
        []
        if yamnet
        else [f"Official YAMNet TFLite not found at {args.yamnet}: no baseline, no latency ratios"]
    )
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for cand in CANDIDATES:
        measured = measure_candidate(cand, args, index, yamnet)
        if measured is None:
            skipped.append(
                f"{cand.name} {cand.quant}: run `{cand.run_dir(args.runs, args.seed)}` not finished; not measured"
            )
        else:
            results.append(measured)
    context = {
        "command": f"python benchmarks/{Path(__file__).name} {shlex.join(sys.argv[1:])}".strip(),
        "created_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "minutes": (time.perf_counter() - start) / 60,
        "seed": args.seed,
        "calibration_count": args.calibration_count,
        "load_start": load_start,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    if results:
        write_plots(results, yamnet, args.results)
    text = summary_text(results, skipped, context)
    (args.results / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
