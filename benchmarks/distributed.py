"""Epoch time of one training command on 1 worker and on N workers (MultiWorkerMirroredStrategy).

Runs ``lean-kd train`` (the demo recipe's teacher stage: YAMNet teacher, batch 32, on the demo's
synthetic data) as a user would: without a strategy, then with ``--strategy multiworker`` and a
TF_CONFIG of 1 worker, then of each worker count asked for, all workers on this host with free
localhost ports. Epoch time is the gap between consecutive epochs' TensorBoard summaries on the
chief (training + validation, without the first epoch's graph tracing). On a real cluster, run it
with the workers on separate hosts by hand (README "Scaling out"); here every worker shares the
same cores, so the numbers show the cost of the machinery, not a speed-up.

    python benchmarks/distributed.py [--recipe models/recipes/demo.yaml] [--epochs 4] [--workers 2]

Writes benchmarks/results/distributed.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from lean_kd.training.distribute import localhost_cluster, worker_tf_config

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "distributed.md"
LEAN_KD = str(Path(sys.executable).parent / "lean-kd")


def run_workers(recipe: Path, out: Path, workers: int, logs: Path) -> float:
    """Run the command on ``workers`` processes (0: plain, no strategy); wall seconds."""
    base = [LEAN_KD, "train", "--config", str(recipe), "--out", str(out)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    cluster = localhost_cluster(max(workers, 1))
    processes = []
    start = time.perf_counter()
    for index in range(max(workers, 1)):
        task_env = dict(env)
        args = list(base)
        if workers:
            task_env["TF_CONFIG"] = worker_tf_config(cluster, index)
            args += ["--strategy", "multiworker"]
        log = open(logs / f"{out.name}-{index}.log", "w")
        processes.append(subprocess.Popen(args, env=task_env, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"{out.name}: exit codes {codes}; see the logs in {logs}")
    return time.perf_counter() - start


def epoch_seconds(run_dir: Path) -> list[float]:
    """Gaps between the chief's per-epoch TensorBoard summaries (epochs 2, 3, ...)."""
    from lean_kd._keras import tf

    stamps = []
    for path in sorted((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            if any(value.tag == "epoch_loss" for value in event.summary.value):
                stamps.append(event.wall_time)
    stamps.sort()
    return [b - a for a, b in zip(stamps, stamps[1:])]


def write_recipe(source: Path, data: Path, epochs: int, out: Path) -> Path:
    raw = yaml.safe_load(source.read_text())
    raw["data"] = {**raw.get("data", {}), "root": str(data)}
    raw["teacher_training"] = {**raw.get("teacher_training", {}), "epochs": epochs}
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "models" / "recipes" / "demo.yaml")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--clips-per-class", type=int, default=40)
    args = parser.parse_args()
    from lean_kd.data.synth import SynthConfig, synthesize

    work = Path(tempfile.mkdtemp(prefix="lean_kd_distributed_"))
    synthesize(work / "data", SynthConfig(clips_per_class=args.clips_per_class), progress=False)
    recipe = write_recipe(args.recipe, work / "data", args.epochs, work / "recipe.yaml")
    rows = []
    for workers in [0, 1, *args.workers]:
        out = work / ("plain" if not workers else f"workers{workers}")
        wall = run_workers(recipe, out, workers, work)
        gaps = epoch_seconds(out)
        rows.append((workers, statistics.median(gaps), min(gaps), max(gaps), wall))
        print(
            f"{out.name}: median epoch {rows[-1][1]:.1f} s over {len(gaps)} epochs; command {wall:.0f} s",
            flush=True,
        )
    write_results(args, rows)


def wrap(text: str) -> str:
    return textwrap.fill(text, width=100, break_long_words=False, break_on_hyphens=False)


def write_results(args: argparse.Namespace, rows: list[tuple]) -> None:
    reference = rows[0][1]
    recipe, workers = os.path.relpath(args.recipe, REPO), " ".join(map(str, args.workers))
    command = f"python benchmarks/distributed.py --recipe {recipe} --epochs {args.epochs} --workers {workers}"
    method = wrap(
        f"`lean-kd train` of the recipe's teacher ({args.clips_per_class} synthetic clips per class, "
        "global batch as in the recipe), every worker a process on this host. Epoch time: median gap "
        f"between the chief's per-epoch TensorBoard summaries over epochs 2-{args.epochs} (training + "
        "validation; the first epoch's tracing excluded). The command column is the whole command "
        "(start-up, tracing, every epoch, the final evaluation)."
    )
    machine = wrap(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU, shared with other jobs while "
        f"it ran ({time.strftime('%Y-%m-%d')}). All workers share these cores, so more workers cannot be "
        "faster here: each all-reduces its gradients with the others after every step (over gRPC on "
        "localhost), and each runs its own input pipeline and a whole validation pass. On separate "
        "hosts each worker has its own cores and the step time falls with the per-worker batch, less "
        "the all-reduce time."
    )
    lines = [
        "# Multi-worker training on one host: the cost of the machinery",
        "",
        f"Command: `{command}`",
        "",
        method,
        "",
        "| run | epoch (s), median | min - max | vs 1 process | whole command (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for workers, median, low, high, wall in rows:
        name = "1 process, no strategy" if not workers else f"multiworker, {workers} worker(s)"
        lines.append(
            f"| {name} | {median:.1f} | {low:.1f} - {high:.1f} | {median / reference:.2f}x | {wall:.0f} |"
        )
    lines += ["", machine, ""]
    RESULTS.write_text("\n".join(lines))
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
