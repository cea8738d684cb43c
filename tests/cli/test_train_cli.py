"""``lean-kd train``, ``cache-teacher`` and ``distill`` as a user types them (the README's steps)."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_model
from lean_kd.cli.main import main
from lean_kd.data.adapters import load_index
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.export.metadata import read_metadata
from lean_kd.models.contract import class_names
from lean_kd.models.registry import load_model
from lean_kd.training.trainer import read_history, save_model

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

RECIPE = """\
name: tiny_cli
data: {{dataset: csv, root: {root}}}
pipeline: {{batch_size: 8, cache: true}}
teacher: {{checkpoint: {teacher}}}
student: {{checkpoint: {student}}}
teacher_training: {{epochs: 2, learning_rate: 3.0e-3}}
training: {{epochs: 2, learning_rate: 3.0e-3}}
cache: {{enabled: true, crops_per_clip: 2}}
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    config = SynthConfig(
        classes=("siren", "knock", "rain"), clips_per_class=6, duration_seconds=(1.0, 1.5)
    )
    synthesize(root / "data", config, progress=False)
    save_model(tiny_model(3, width=8, seed=0, name="teacher"), root / "teacher.keras")
    save_model(tiny_model(3, width=4, seed=1, name="student"), root / "student.keras")
    path = root / "recipe.yaml"
    path.write_text(
        RECIPE.format(
            root=root / "data", teacher=root / "teacher.keras", student=root / "student.keras"
        )
    )
    return path


def check_run(run_dir, epochs: int) -> dict:
    assert (run_dir / "best.keras").is_file() and (run_dir / "final.keras").is_file()
    assert read_history(run_dir / "history.csv")["epoch"] == [float(e) for e in range(epochs)]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == epochs
    for split in ("val", "test"):
        assert 0.0 <= metrics[split]["map"] <= 1.0 and 0.0 <= metrics[split]["accuracy"] <= 1.0
    return metrics


@pytest.mark.heavy
def test_train_cache_distill_commands(recipe, tmp_path, capsys):
    teacher, cache, student = tmp_path / "teacher", tmp_path / "cache", tmp_path / "student"
    assert main(["train", "--config", str(recipe), "--out", str(teacher)]) == 0
    check_run(teacher, epochs=2)
    assert "Best checkpoint" in capsys.readouterr().out
    assert (
        main(
            [
                "cache-teacher",
                "--config",
                str(recipe),
                "--teacher",
                str(teacher / "best.keras"),
                "--out",
                str(cache),
            ]
        )
        == 0
    )
    assert "0 unreadable files skipped" in capsys.readouterr().out
    assert (
        main(["distill", "--config", str(recipe), "--cache", str(cache), "--out", str(student)])
        == 0
    )
    check_run(student, epochs=2)
    assert {"ce", "kd", "val_kd", "val_map"} <= set(
        read_history(student / "history.csv")
    )  # Hinton KD terms


def test_distill_without_a_teacher_is_one_line(recipe, tmp_path, capsys):
    no_teacher = tmp_path / "no_teacher.yaml"
    no_teacher.write_text(
        "\n".join(
            line for line in recipe.read_text().splitlines() if not line.startswith("teacher:")
        )
    )
    assert main(["distill", "--config", str(no_teacher), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lean-kd: error:") and "teacher" in err and "\n" not in err


def test_missing_data_root_is_one_line(recipe, tmp_path, capsys):
    code = main(
        [
            "train",
            "--config",
            str(recipe),
            "--data",
            str(tmp_path / "absent"),
            "--out",
            str(tmp_path / "t"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "absent does not exist" in err and "\n" not in err


@pytest.mark.heavy
def test_trained_checkpoint_carries_its_classes_to_export_and_evaluate(recipe, tmp_path, capsys):
    """No --labels: the class names travel in best.keras (README: export after training)."""
    run, out = tmp_path / "teacher", tmp_path / "teacher.tflite"
    assert main(["train", "--config", str(recipe), "--out", str(run)]) == 0
    classes = list(load_index("csv", recipe.parent / "data").class_names)
    assert class_names(load_model(run / "best.keras")) == tuple(classes)
    export = ["export", "--model", str(run / "best.keras"), "--quant", "dynamic", "--out", str(out)]
    assert main(export) == 0
    assert read_metadata(out)["labels"] == classes
    assert main(["evaluate", "--model", str(run / "best.keras"), "--config", str(recipe)]) == 0
    report = json.loads((run / "best.keras.eval_test.json").read_text())
    assert report["class_names"] == classes
    assert "best model: val mAP" in (run / "lean_kd.log").read_text()  # INFO goes to the run folder
    assert "INFO" not in capsys.readouterr().err  # and not to the console


def test_cache_teacher_in_parts(recipe, tmp_path, capsys):
    teacher = tmp_path / "teacher.keras"
    save_model(tiny_model(3, width=8, seed=0, name="teacher"), teacher)
    cache = tmp_path / "cache"
    command = [
        "cache-teacher",
        "--config",
        str(recipe),
        "--teacher",
        str(teacher),
        "--out",
        str(cache),
    ]
    assert main([*command, "--shard", "1/2"]) == 0
    assert "part 1/2 written" in capsys.readouterr().out and not (cache / "cache.json").exists()
    assert main([*command, "--shard", "0/2"]) == 0  # the last part merges
    assert "Teacher cache:" in capsys.readouterr().out and (cache / "cache.json").is_file()
    assert (
        main(
            [
                "distill",
                "--config",
                str(recipe),
                "--cache",
                str(cache),
                "--out",
                str(tmp_path / "student"),
            ]
        )
        == 0
    )
    with pytest.raises(SystemExit):
        main([*command, "--shard", "2/2"])
    assert "expected I/N with 0 <= I < N (e.g. 0/4), got '2/2'" in capsys.readouterr().err


def test_distill_with_teacher_streams_records_once_and_reads_after(recipe, tmp_path):
    """Mixup recipe: the teacher runs online; the second student reads the first's stream."""
    mixup = tmp_path / "mixup.yaml"
    text = recipe.read_text().replace("enabled: true", "enabled: false")
    text = text.replace("training: {epochs: 2,", "training: {epochs: 2, steps_per_epoch: 2,")
    mixup.write_text(text + "augment: {mixup_alpha: 0.4}\n")
    teacher = recipe.parent / "teacher.keras"
    streams = tmp_path / "streams"
    logs = []
    for name in ("first", "second"):
        out = tmp_path / name
        args = ["distill", "--config", str(mixup), "--teacher", str(teacher)]
        assert main([*args, "--teacher-streams", str(streams), "--out", str(out)]) == 0
        check_run(out, epochs=2)
        logs.append((out / "lean_kd.log").read_text())
    assert "steps recorded to" in logs[0] and "steps read from" in logs[1]
    assert len(list(streams.iterdir())) == 1
