"""Every recipe in models/recipes loads and dry-runs the prepare stage on a fixture in its
dataset's layout (tiny WAVs; the layouts follow tests/data/test_adapters.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lean_kd.audio.io import write_wav
from lean_kd.data.adapters.esc50 import ESC50_CLASSES
from lean_kd.data.adapters.urbansound8k import URBANSOUND8K_CLASSES
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.run.demo import DEMO_RECIPE
from lean_kd.run.recipe import load_recipe
from lean_kd.run.runner import run_pipeline

RECIPES = DEMO_RECIPE.resolve().parent  # the package's demo.yaml links to models/recipes


def write_csv(path: Path, header: list[str] | None, rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows(([header] if header else []) + rows)


def tiny_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, np.full(800, 0.1, dtype=np.float32), sample_rate=8000)


def esc50(root: Path) -> None:
    rows = []
    for fold in range(1, 6):
        for target in (0, 10, 20, 49):
            rows.append(
                [
                    f"{fold}-{1000 + target}-A-{target}.wav",
                    fold,
                    target,
                    ESC50_CLASSES[target],
                    False,
                    1000 + target,
                    "A",
                ]
            )
    write_csv(
        root / "meta" / "esc50.csv",
        ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
        rows,
    )
    for row in rows:
        tiny_wav(root / "audio" / row[0])


def urbansound8k(root: Path) -> None:
    rows = []
    for fold in range(1, 11):
        for class_id in range(10):
            name = f"{fold}{class_id}-{class_id}-0-0.wav"
            rows.append([name, 100 + fold, 0, 1, 1, fold, class_id, URBANSOUND8K_CLASSES[class_id]])
            tiny_wav(root / "audio" / f"fold{fold}" / name)
    header = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
    write_csv(root / "metadata" / "UrbanSound8K.csv", header, rows)


def fsd50k(root: Path) -> None:
    truth = root / "FSD50K.ground_truth"
    write_csv(
        truth / "vocabulary.csv",
        None,
        [[0, "Bark", "/m/05tny_"], [1, "Dog", "/m/0bt9lr"], [2, "Music", "/m/04rlf"]],
    )
    dev = [
        [1, "Bark,Dog", "", "train"],
        [2, "Music", "", "train"],
        [3, "Dog", "", "train"],
        [4, "Dog,Music", "", "val"],
    ]
    write_csv(truth / "dev.csv", ["fname", "labels", "mids", "split"], dev)
    write_csv(
        truth / "eval.csv", ["fname", "labels", "mids"], [[5, "Music,Bark", ""], [6, "Dog", ""]]
    )
    for name in (1, 2, 3, 4):
        tiny_wav(root / "FSD50K.dev_audio" / f"{name}.wav")
    for name in (5, 6):
        tiny_wav(root / "FSD50K.eval_audio" / f"{name}.wav")


def fsdd(root: Path) -> None:
    for digit in range(10):
        for index in range(12):
            tiny_wav(root / "recordings" / f"{digit}_ana_{index}.wav")


def demo(root: Path) -> None:
    synthesize(root, SynthConfig(clips_per_class=4, duration_seconds=(1.0, 1.0)), progress=False)


# recipe -> (fixture writer, expected {split: examples}, classes)
CASES = {
    "demo": (demo, {"train": 20, "val": 10, "test": 10}, 10),
    "esc50": (esc50, {"train": 12, "val": 4, "test": 4}, 50),
    "esc50_dev": (esc50, None, 50),  # test: fold 1; val: a seeded 15 % of the recordings
    "urbansound8k": (urbansound8k, None, 10),  # val: a seeded 10 % of folds 1-9
    "fsd50k": (fsd50k, {"train": 3, "val": 1, "test": 2}, 3),
    "fsdd": (fsdd, None, 10),  # test: index 0-4; val: a seeded 10 % of the rest
}


def test_every_recipe_has_a_case():
    assert sorted(p.stem for p in RECIPES.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_recipe_dry_runs_prepare_on_its_layout(name, tmp_path):
    write, expected, num_classes = CASES[name]
    write(tmp_path / "data")
    recipe = load_recipe(RECIPES / f"{name}.yaml", data={"root": str(tmp_path / "data")})
    assert recipe.name == name
    assert "int8" in recipe.export.all_modes and recipe.training.epochs > 0
    result = run_pipeline(
        recipe, tmp_path / "run", until="prepare", progress=False, echo=lambda _: None
    )
    assert [(o.stage, o.status) for o in result.outcomes] == [("prepare", "ran")]
    index = json.loads((tmp_path / "run" / "prepare" / "index.json").read_text())
    assert index["num_classes"] == num_classes and index["broken_files"] == []
    if expected is not None:
        assert index["splits"] == expected
    assert all(index["splits"][s] > 0 for s in ("train", "val", "test"))
    if name == "urbansound8k":
        assert (
            index["splits"]["test"] == 10
            and index["splits"]["train"] + index["splits"]["val"] == 90
        )
    if name == "fsdd":
        assert (
            index["splits"]["test"] == 50
            and index["splits"]["train"] + index["splits"]["val"] == 70
        )
