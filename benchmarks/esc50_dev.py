"""Real environmental sound, few clips per class: ESC-50 dev set, 4-fold cross-validation.

For each test fold k of ``../shared/datasets/esc50-dev`` (train on the other three, 15 % of
their source recordings held out for validation) and each seed, through ``lean_kd.run.experiment``
and ``lean_kd.probe`` (the code of ``lean-kd probe / train / cache-teacher / distill``) and the
recipe ``models/recipes/esc50_dev.yaml``:

- **probe**: the floor, a logistic regression on clip-pooled frozen-YAMNet outputs;
- **teacher**: the recipe's teacher (frozen YAMNet, linear head fitted on every window);
- with ``--students``: the rows of ``METHODS`` per seed: LEAN without KD and with each
  distillation method from the teacher's cache; KD with mixup, where the teacher runs online on
  the mixed clip (consistent teaching: a cache holds unmixed crops only); lean_tiny distilled.
  Rows marked ``int8`` are also exported as int8 TFLite and scored from the file.

The probe and the linear-head teacher have no random part (a convex fit on fixed features): their
spread is over folds only, and they run once per fold. Students run per seed.

    python benchmarks/esc50_dev.py [--out benchmarks/runs/esc50_dev] [--seeds 0 1 2] [--students]
        [--methods "LEAN, KD" ...] [--folds 1 2]

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd.distill.teacher_cache import META_FILE
from lean_kd.files import write_atomic
from lean_kd.probe import run_probe, yamnet_backbone
from lean_kd.run import experiment
from lean_kd.run.recipe import Recipe, load_recipe

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RECIPE = HERE.parent / "models" / "recipes" / "esc50_dev.yaml"
SHARED = HERE.parent.parent / "shared"
FOLDS = (1, 2, 3, 4)
KD = {"name": "hinton_kd", "temperature": 2.0, "lambda": 1.0}


@dataclasses.dataclass(frozen=True)
class Student:
    """One student row: what is trained and how it is taught."""

    loss: tuple[dict[str, Any], ...]
    targets: str = "crop"  # cache.targets; "clip": the teacher's verdict on the whole clip
    model: str = "lean"  # the registry name (the recipe's student options apply to "lean")
    mixup_alpha: float = 0.0  # > 0: consistent teaching, the teacher runs online on the mixed clip
    int8: bool = False  # also export int8 TFLite and evaluate it
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # over the recipe's
    int8_dfts: tuple[str, ...] = ("fft",)  # int8 files: the log-mel DFT modes to export


SMALL_WAVE_ENCODER = {"lstm_units": 64, "lstm_layers": 1}  # LEAN at <= 2x YAMNet's latency
# lean_tiny's YAMNet branch from the official weights' strongest channels (models.yamnet.narrow)
NARROWED_PRETRAINED = {"pretrained": "if_available", "yamnet_mean_normalize": False}
DFT_NAMES = {"fft": "", "rfft": ", DFT as RFFT2D", "int8": ", DFT as int8 matrix product"}
EVERY_DFT = ("fft", "rfft", "int8")  # the export's default first


METHODS: dict[str, Student] = {
    "LEAN, no KD": Student(({"name": "ce"},)),
    "LEAN, KD": Student((KD,), int8=True),
    "LEAN, KD on clip targets": Student((KD,), targets="clip"),
    "LEAN, KD + PKT": Student((KD, {"name": "pkt", "weight": 1.0})),
    "LEAN, no KD + mixup": Student(({"name": "ce"},), mixup_alpha=0.4),  # mixup's own share
    "LEAN, KD + mixup (online teacher)": Student(
        (KD,), mixup_alpha=0.4, int8=True, int8_dfts=EVERY_DFT
    ),
    "LEAN 1 x BiLSTM(64), KD + mixup (online teacher)": Student(  # the options of lean_fast
        (KD,), mixup_alpha=0.4, int8=True, options=SMALL_WAVE_ENCODER, int8_dfts=EVERY_DFT
    ),
    "lean_tiny, KD": Student((KD,), model="lean_tiny", int8=True),
    "lean_tiny from narrowed pretrained YAMNet, KD + mixup (online teacher)": Student(
        (KD,), model="lean_tiny", mixup_alpha=0.4, int8=True, options=NARROWED_PRETRAINED
    ),
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


def fold_runs(
    base: Recipe, out: Path, fold: int, seeds: list[int], students: bool, methods: list[str]
) -> list[dict]:
    """Every run of one test fold: probe, teacher, then (optionally) the students per seed.

    Student methods outside ``methods`` are not trained, but their finished runs are reported."""
    recipe = fold_recipe(base, fold)
    index = experiment.load_data(recipe)
    folder = out / f"fold{fold}"
    rows = [
        _row(
            "probe (floor)",
            fold,
            None,
            finished(
                folder / "probe",
                lambda: run_probe(
                    index,
                    folder / "probe",
                    backbone=yamnet_backbone(),
                    settings=recipe.probe,
                    cache_dir=out / "window_outputs",
                ),
            ),
        ),  # fmt: skip
        _row(
            "teacher (frozen YAMNet, window head)",
            fold,
            None,
            finished(
                folder / "teacher", lambda: experiment.train(recipe, folder / "teacher", verbose=0)
            ),
            folder / "teacher" / "best.keras",
        ),  # fmt: skip
    ]
    if not students:
        return rows
    cache = folder / "cache"
    if not (cache / META_FILE).exists():
        experiment.cache_teacher(recipe, folder / "teacher" / "best.keras", cache, progress=False)
    for seed in seeds:
        for method, student in METHODS.items():
            run_dir = folder / f"{run_name(method)}_s{seed}"
            if method not in methods and not (run_dir / "metrics.json").exists():
                continue
            teach = student_recipe(fold_recipe(base, fold, seed), student)
            online = folder / "teacher" / "best.keras" if student.mixup_alpha else None
            metrics = finished(run_dir, lambda: experiment.distill(
                teach, run_dir, cache_dir=None if online else cache, teacher_path=online, verbose=2
            ))  # fmt: skip
            rows.append(_row(method, fold, seed, metrics, run_dir / "best.keras"))
            for dft in student.int8_dfts if student.int8 else ():
                int8 = finished_int8(run_dir, teach, index, dft)
                name = f"{method}, int8 TFLite{DFT_NAMES[dft]}"
                rows.append(_row(name, fold, seed, int8, run_dir / "best.keras"))
    return rows


def run_name(method: str) -> str:
    """The run folder of a method: "LEAN 1 x BiLSTM(64), KD" -> "lean1xbilstm(64)_kd"."""
    return method.lower().replace(", ", "_").replace(" ", "")


def student_recipe(recipe: Recipe, student: Student) -> Recipe:
    """``recipe`` with the student row's model, loss, targets and mixup."""
    model = recipe.student
    if student.model != model.name:  # another architecture: its own registry defaults
        model = dataclasses.replace(model, name=student.model, options={})
    model = dataclasses.replace(model, options={**model.options, **student.options})
    return dataclasses.replace(
        recipe, student=model, loss=student.loss,
        cache=dataclasses.replace(recipe.cache, targets=student.targets, enabled=not student.mixup_alpha),
        augment=dataclasses.replace(recipe.augment, mixup_alpha=student.mixup_alpha),
    )  # fmt: skip


def finished_int8(run_dir: Path, recipe: Recipe, index: Any, dft: str) -> dict[str, Any]:
    """Test metrics of the run's best model as int8 TFLite with the log-mel DFT as ``dft``
    (exported once, then reused)."""
    path = run_dir / f"int8_dft-{dft}" / "metrics.json"
    if not path.exists():
        from lean_kd.evaluation import evaluate_model
        from lean_kd.export.checkpoint import export_checkpoint

        model = experiment.load_model(run_dir / "best.keras")
        path.parent.mkdir(exist_ok=True)
        start = time.perf_counter()
        exported = export_checkpoint(
            model, quant="int8", out=path.parent / "model.tflite", index=index,
            calibration_count=recipe.export.num_calibration, lstm=recipe.export.lstm, dft=dft,
        )  # fmt: skip
        report = evaluate_model(
            exported.path, index, split="test", audio=recipe.audio, progress=False
        )
        metrics = {
            "test": report, "parameters": int(model.count_params()),
            "wall_seconds": round(time.perf_counter() - start, 1), "size_bytes": exported.size_bytes,
        }  # fmt: skip
        write_atomic(path, json.dumps(metrics, indent=1))
    return json.loads(path.read_text())


def _row(
    model: str, fold: int, seed: int | None, metrics: dict[str, Any], checkpoint: Path | None = None
) -> dict[str, Any]:
    test = metrics["test"]
    return {
        "model": model, "fold": fold, "seed": seed, "accuracy": test["accuracy"],
        "map": test["map"], "wall_seconds": metrics.get("wall_seconds"),
        "parameters": metrics.get("parameters"), "size_bytes": metrics.get("size_bytes"),
        "checkpoint": str(checkpoint) if checkpoint else None,
    }  # fmt: skip


def macs_per_window(checkpoint: str | None) -> str:
    """Multiply-accumulates of one 1 s window of the Keras model (the int8 file runs the same ops)."""
    if checkpoint is None:
        return "—"
    from lean_kd.models.macs import count_macs

    return f"{count_macs(experiment.load_model(checkpoint)) / 1e6:.0f} M"


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: mean ± std over folds (x seeds) of test accuracy and mAP per model."""
    lines = [
        "| model | runs | test accuracy | test mAP | parameters | MACs per 1 s | file | wall s per run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        acc, ap = (np.array([r[k] for r in mine]) for k in ("accuracy", "map"))
        ddof = 1 if len(mine) > 1 else 0
        seconds = [r["wall_seconds"] for r in mine if r["wall_seconds"] is not None]
        params = mine[0]["parameters"] or "—"
        size = f"{mine[0]['size_bytes'] / 2**20:.2f} MiB" if mine[0].get("size_bytes") else "—"
        wall = f"{np.mean(seconds):.0f}" if seconds else "—"
        lines.append(
            f"| {model} | {len(mine)} | {acc.mean():.3f} ± {acc.std(ddof=ddof):.3f} | "
            f"{ap.mean():.3f} ± {ap.std(ddof=ddof):.3f} | {params} | "
            f"{macs_per_window(mine[0].get('checkpoint'))} | {size} | {wall} |"
        )
    return lines


def total_minutes(rows: list[dict[str, Any]]) -> float:
    """Wall time of every run in the table (probe and teacher once per fold), in minutes."""
    return sum(r["wall_seconds"] or 0 for r in rows) / 60


def write_results(rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    RESULTS.mkdir(exist_ok=True)
    name = "esc50_dev" if sorted(args.folds) == list(FOLDS) else "esc50_dev_partial"
    command = " ".join(["python benchmarks/esc50_dev.py", *sys.argv[1:]])
    header = [
        "# ESC-50 dev set: 4-fold cross-validation, few clips per class",
        "",
        f"Written by `{command}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; this invocation {seconds / 60:.1f} min (finished runs reused); "
        f"the runs' own wall times add up to {total_minutes(rows):.0f} min.",
        "Test fold k, training on the other three folds (15 % of their source recordings held",
        "out for validation); mean ± sample std over folds (and seeds for the students).",
        "The probe and the linear-head teacher have no random part: one run per fold. Students",
        "keep their last epoch (the recipe's `training.monitor: none`); int8 rows are the same",
        "runs exported to int8 TFLite and scored from the file.",
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
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="METHOD",
        help="student rows to train (finished runs of the others are still reported)",
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
    rows = [
        r
        for fold in args.folds
        for r in fold_runs(base, args.out, fold, args.seeds, args.students, args.methods)
    ]
    write_results(rows, args, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
