"""Export parity: size and accuracy of each TFLite mode against its Keras model.

For every Keras checkpoint and every quantization mode (float32, float16, dynamic, int8,
int16x8 where the model allows it) the model is exported with ``export_tflite`` (metadata
included, calibrated on the train split), then both models score the same evaluation windows
(1 s, 50 % overlap, the recipe's windowing): the table gives the file size, the clip-level mAP
of the TFLite and of the Keras model and their difference, the max abs difference of window
scores and the top-1 agreement of the windows.

    # the FSDD-trained checkpoints, FSDD recipe (data root from the recipe or --data)
    python benchmarks/export_parity.py --model runs/fsdd/student.keras --recipe models/recipes/fsdd.yaml --data ../shared/datasets/fsdd
    # default: synthesise the demo data, train lean_tiny for a few epochs, measure it
    python benchmarks/export_parity.py
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from lean_kd._keras import keras
from lean_kd.data.index import DatasetIndex
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.errors import ExportError
from lean_kd.export.checkpoint import export_checkpoint
from lean_kd.export.quantize import QUANT_MODES
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd.models.registry import load_model
from lean_kd.run.experiment import load_data, make_pipeline, train_student
from lean_kd.run.recipe import Recipe, load_recipe
from lean_kd_runtime.metrics import aggregate_windows, evaluate_scores

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "export.md"
DEMO_RECIPE = ROOT / "models" / "recipes" / "demo.yaml"


@dataclasses.dataclass(frozen=True)
class Windows:
    """The evaluation windows of one split, scored by every model."""

    waveforms: np.ndarray  # [N, samples] float32
    clip_index: np.ndarray  # [N] int
    clip_labels: np.ndarray  # [clips, C]
    multi_label: bool


@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    mode: str
    size_bytes: int | None
    tflite_map: float | None
    keras_map: float
    max_abs_diff: float | None
    top1_agreement: float | None
    note: str = ""


def collect_windows(recipe: Recipe, index: DatasetIndex, split: str, limit: int | None) -> Windows:
    """Every window of ``split`` (the first ``limit`` clips when given), with clip labels."""
    waves, clips, labels = [], [], {}
    for inputs, batch_labels in make_pipeline(recipe, index).windows(split):
        for wave, clip, label in zip(
            inputs["waveform"].numpy(), inputs["clip_index"].numpy(), batch_labels.numpy()
        ):
            if limit is None or clip < limit:
                waves.append(wave)
                clips.append(int(clip))
                labels[int(clip)] = label
    rows, clip_index = np.unique(np.array(clips), return_inverse=True)
    return Windows(
        np.stack(waves).astype(np.float32),
        clip_index,
        np.stack([labels[int(r)] for r in rows]),
        index.multi_label,
    )


def clip_map(window_scores: np.ndarray, windows: Windows) -> float:
    clip_scores = aggregate_windows(
        window_scores, windows.clip_index, num_clips=len(windows.clip_labels)
    )
    return float(
        evaluate_scores(clip_scores, windows.clip_labels, multi_label=windows.multi_label)["map"]
    )


def measure_model(
    name: str, model: keras.Model, index: DatasetIndex, windows: Windows, args: argparse.Namespace
) -> list[Row]:
    """One row per mode: export, score the windows, compare with the Keras scores."""
    folder = Path(args.work_dir)
    expected = keras_scores(model, windows.waveforms, multi_label=windows.multi_label)
    keras_map = clip_map(expected, windows)
    rows = []
    for mode in args.modes:
        start = time.perf_counter()
        try:
            result = export_checkpoint(
                model, quant=mode, out=folder / f"{mode}.tflite", index=index,
                calibration_count=args.calibration_count, multi_label=windows.multi_label,
            )  # fmt: skip
        except ExportError as exc:
            rows.append(Row(name, mode, None, None, keras_map, None, None, f"not exported: {exc}"))
            continue
        actual = tflite_scores(result.path, windows.waveforms)
        agreement = float(np.mean(expected.argmax(1) == actual.argmax(1)))
        max_diff = float(np.abs(expected - actual).max())
        seconds = f"{time.perf_counter() - start:.0f} s"
        row = Row(
            name, mode, result.size_bytes, clip_map(actual, windows), keras_map, max_diff,
            agreement, seconds,
        )  # fmt: skip
        rows.append(row)
        print(_cells(row), flush=True)
    return rows


def train_tiny_lean(recipe: Recipe, folder: Path, epochs: int) -> Path:
    """lean_tiny trained on the recipe's data with the recipe's training settings."""
    recipe = dataclasses.replace(
        recipe,
        student=dataclasses.replace(recipe.student, name="lean_tiny", options={}),
        training=dataclasses.replace(recipe.training, epochs=epochs),
    )
    return Path(train_student(recipe, folder / "train", verbose=0).best_path)


def _recipe(args: argparse.Namespace, folder: Path) -> Recipe:
    if args.recipe is None:  # the demo recipe on freshly synthesised data
        root = folder / "synth"
        synthesize(root, SynthConfig(clips_per_class=args.clips_per_class), progress=False)
        recipe = load_recipe(DEMO_RECIPE)
        return dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, root=str(root)))
    recipe = load_recipe(args.recipe)
    if args.data is not None:
        recipe = dataclasses.replace(
            recipe, data=dataclasses.replace(recipe.data, root=str(args.data))
        )
    return recipe


COLUMNS = (
    "model", "mode", "size (bytes)", "size (MiB)", "mAP TFLite", "mAP Keras", "ΔmAP",
    "max abs score diff", "top-1 agreement", "note",
)  # fmt: skip


def _cells(r: Row) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    delta = None if r.tflite_map is None else r.tflite_map - r.keras_map
    cells = (
        r.model, r.mode, num(r.size_bytes, "d"), num(r.size_bytes and r.size_bytes / 2**20, ".3f"),
        num(r.tflite_map, ".4f"), f"{r.keras_map:.4f}", num(delta, "+.4f"),
        num(r.max_abs_diff, ".2e"), num(r.top1_agreement, ".3f"), r.note.replace("|", "/"),
    )  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(rows: list[Row], facts: dict) -> str:
    lines = [
        "# Export parity: TFLite modes against their Keras models",
        "",
        (
            f"Made by `benchmarks/export_parity.py` (see its docstring). Data: {facts['data']}, "
            f"split {facts['split']!r}: {facts['clips']} clips, {facts['windows']} windows of 1 s "
            "(50 % overlap); mAP is clip-level (mean of window scores). Calibration: "
            f"{facts['calibration']} train clips (int8, int16x8). Sizes include the metadata. "
            f"{platform.machine()}, TFLite on 1 thread, LSTM state reset before each window."
            f"{facts['note']}"
        ),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * (len(COLUMNS) - 3) + "---|",
        *(_cells(r) for r in rows),
    ]
    return "\n".join(lines) + "\n"


def display_name(path: Path) -> str:
    """``run/best.keras`` -> ``run/best.keras`` (the run folder tells checkpoints apart)."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        type=Path,
        default=[],
        help="Keras checkpoint (repeatable); default: train lean_tiny on synthetic data",
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        help="recipe whose data and windows to use (default: demo on synthetic data)",
    )
    parser.add_argument("--data", type=Path, help="dataset root (overrides the recipe's data.root)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--modes", nargs="+", default=list(QUANT_MODES), choices=QUANT_MODES)
    parser.add_argument("--calibration-count", type=int, default=200)
    parser.add_argument("--max-clips", type=int, help="evaluate only the first clips of the split")
    parser.add_argument(
        "--clips-per-class", type=int, default=30, help="synthetic data (default mode)"
    )
    parser.add_argument("--epochs", type=int, default=12, help="lean_tiny training (default mode)")
    parser.add_argument("--note", default="", help="a sentence added to the report's intro")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipe = _recipe(args, folder)
        checkpoints = args.model or [train_tiny_lean(recipe, folder, args.epochs)]
        index = load_data(recipe)
        windows = collect_windows(recipe, index, args.split, args.max_clips)
        args.work_dir = tmp
        rows = []
        for path in checkpoints:
            name = display_name(path) if args.model else "lean_tiny (synthetic, trained here)"
            rows += measure_model(name, load_model(path), index, windows, args)
    facts = {
        "data": args.data or (recipe.data.root if args.recipe else "synthetic (demo recipe)"),
        "split": args.split,
        "clips": len(windows.clip_labels),
        "windows": len(windows.waveforms),
        "calibration": args.calibration_count,
        "note": f" {args.note}" if args.note else "",
    }
    args.out.write_text(markdown(rows, facts))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
