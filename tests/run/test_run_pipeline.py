"""``lean-kd run`` on a tiny recipe: every stage's outputs, skip / resume / rerun, bad input."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import tiny_model
from lean_kd.config import to_dict
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.errors import ConfigError, DataError, ExportError
from lean_kd.run import STAGE_NAMES
from lean_kd.run.fingerprint import PENDING_FILE, STAGE_FILE
from lean_kd.run.recipe import load_recipe
from lean_kd.run.results import PROBE_SKIPPED
from lean_kd.run.runner import run_pipeline
from lean_kd.run.stages import STAGES
from lean_kd.training.trainer import read_history, save_model

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

TESTS = Path(__file__).resolve().parents[1]
CLASSES = ("siren", "knock", "rain", "whistle")
RECORDED = (
    "prepare",
    "probe",
    "teacher",
    "cache",
    "student",
    "distill",
    "export",
    "evaluate",
    "bench",
)

RECIPE = """\
name: tiny
data: {{dataset: csv, root: {root}}}
pipeline: {{batch_size: 8, cache: true}}
teacher: {{checkpoint: {teacher}}}
student: {{name: tiny, checkpoint: {student}}}
teacher_training: {{epochs: 2, learning_rate: 3.0e-3}}
training: {{epochs: 3, learning_rate: {lr}}}
cache: {{enabled: true, crops_per_clip: 2}}
export: {{modes: [float32], num_calibration: 8, parity_windows: 8}}
bench: {{runs: 20, warmup_runs: 2, memory_repeats: 1}}
"""

KILL_IN_DISTILL = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from lean_kd._keras import keras
    from lean_kd.training import trainer as training
    from lean_kd.run.recipe import load_recipe
    from lean_kd.run.runner import run_pipeline

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # after BackupAndRestore and CSVLogger
            os.kill(os.getpid(), signal.SIGKILL)

    fit = training.fit
    def killing_fit(*args, callbacks=(), **kwargs):
        if Path(args[3]).name == "distill":
            callbacks = [*callbacks, Kill()]
        return fit(*args, callbacks=callbacks, **kwargs)
    training.fit = killing_fit
    import lean_kd.run.experiment
    lean_kd.run.experiment.fit = killing_fit
    run_pipeline(load_recipe(sys.argv[1]), Path(sys.argv[2]), progress=False)
    """
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Synthetic data (4 classes x 8 clips), tiny saved teacher / student, recipe writer."""
    root = tmp_path_factory.mktemp("tiny")
    config = SynthConfig(classes=CLASSES, clips_per_class=8, duration_seconds=(1.0, 1.5))
    synthesize(root / "data", config, progress=False)
    save_model(tiny_model(4, width=16, seed=0, name="teacher"), root / "teacher.keras")
    save_model(tiny_model(4, width=4, seed=1, name="student"), root / "student.keras")

    def recipe(lr: float = 3e-3) -> Path:
        path = root / f"recipe_{lr}.yaml"
        path.write_text(
            RECIPE.format(
                root=root / "data",
                teacher=root / "teacher.keras",
                student=root / "student.keras",
                lr=lr,
            )
        )
        return path

    return {"root": root, "recipe": recipe}


def statuses(result) -> dict[str, str]:
    return {o.stage: o.status for o in result.outcomes}


def record(run_dir: Path, stage: str) -> dict:
    return json.loads((run_dir / stage / STAGE_FILE).read_text())


@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory) -> Path:
    """A run killed during distill (SIGKILL after its first epoch), then resumed to the end."""
    run_dir = tmp_path_factory.mktemp("run") / "out"
    recipe = tiny["recipe"]()
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_DISTILL, str(recipe), str(run_dir), str(TESTS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    for stage in ("prepare", "probe", "teacher", "cache", "student"):
        assert (run_dir / stage / STAGE_FILE).is_file()
    assert not (run_dir / "distill" / STAGE_FILE).exists()
    assert (run_dir / "distill" / PENDING_FILE).is_file()
    before = (run_dir / "distill" / "history.csv").read_text().splitlines()
    assert len(before) == 2  # header + epoch 0

    lines: list[str] = []
    result = run_pipeline(load_recipe(recipe), run_dir, progress=False, echo=lines.append)
    assert statuses(result) == {
        "prepare": "skipped", "probe": "skipped", "teacher": "skipped", "cache": "skipped",
        "student": "skipped", "distill": "ran", "export": "ran", "evaluate": "ran", "bench": "ran", "report": "ran",
    }  # fmt: skip
    assert any("distill: resuming" in line for line in lines), lines
    after = (run_dir / "distill" / "history.csv").read_text().splitlines()
    assert after[:2] == before  # epoch 0 kept, not trained again
    assert read_history(run_dir / "distill" / "history.csv")["epoch"] == [0.0, 1.0, 2.0]
    return run_dir


@pytest.mark.heavy
def test_every_stage_writes_its_outputs(finished_run, tiny):
    run_dir = finished_run
    for stage in RECORDED:
        info = record(run_dir, stage)
        assert info["stage"] == stage and len(info["fingerprint"]) == 64 and info["seconds"] >= 0
        assert info["outputs"] and all((run_dir / stage / out).exists() for out in info["outputs"])
        assert not (run_dir / stage / PENDING_FILE).exists()
    index = json.loads((run_dir / "prepare" / "index.json").read_text())
    assert index["class_names"] == list(CLASSES) and index["num_classes"] == 4
    assert index["splits"]["train"] + index["splits"]["val"] + index["splits"]["test"] == 32
    assert index["broken_files"] == [] and index["multi_label"] is False
    for stage in ("teacher", "student", "distill"):
        metrics = json.loads((run_dir / stage / "metrics.json").read_text())
        assert 0 <= metrics["test"]["map"] <= 1
    probe = json.loads((run_dir / "probe" / "metrics.json").read_text())
    assert probe.get("skipped") or probe["test"]["num_examples"] == index["splits"]["test"]
    assert json.loads((run_dir / "cache" / "cache.json").read_text())["crops_per_clip"] == 2
    export = json.loads((run_dir / "export" / "export.json").read_text())
    assert [m["quant"] for m in export["models"]] == ["int8", "float32"]
    for model in export["models"]:
        assert model["path"] == f"student_{model['quant']}.tflite"
        assert model["size_bytes"] == (run_dir / "export" / model["path"]).stat().st_size
        assert model["parity"]["num_windows"] == 8
    float32 = export["models"][1]["parity"]
    # a top-1 flip needs a Keras top-2 margin under 2e-4: rare, but a briefly trained model
    # has near-ties on some CPUs
    assert float32["max_abs_diff"] < 1e-4 and float32["top1_agreement"] >= 0.75
    names = {"teacher", "student", "distill", "distill_int8", "distill_float32"}
    assert {p.stem for p in (run_dir / "evaluate").glob("*.json")} - {"stage"} == names
    test_clips = index["splits"]["test"]
    for name in names:
        report = json.loads((run_dir / "evaluate" / f"{name}.json").read_text())
        assert report["num_clips"] == test_clips and 0 <= report["map"] <= 1
    for name in ("teacher", "student", "distill"):  # same windows and scoring as training's metrics
        report = json.loads((run_dir / "evaluate" / f"{name}.json").read_text())
        metrics = json.loads((run_dir / name / "metrics.json").read_text())["test"]
        assert report["map"] == pytest.approx(metrics["map"], abs=1e-6)
        assert report["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    bench = json.loads((run_dir / "bench" / "bench.json").read_text())
    assert Path(bench["models"][0]["path"]).name == "student_int8.tflite"
    run_info = json.loads((run_dir / "run.json").read_text())
    assert run_info["resolved_recipe"]["training"]["epochs"] == 3
    if (TESTS.parent / "lean_kd" / "run" / "report.py").is_file():
        assert "teacher" in (run_dir / "report.md").read_text()


@pytest.mark.heavy
def test_unchanged_rerun_skips_and_changes_rerun_downstream_only(finished_run, tiny, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    again = run_pipeline(
        load_recipe(tiny["recipe"]()), run_dir, progress=False, echo=lambda _: None
    )
    assert {s for s, v in statuses(again).items() if v == "ran"} == {"report"}

    teacher_before = record(run_dir, "teacher")
    changed = run_pipeline(
        load_recipe(tiny["recipe"](lr=1e-3)), run_dir, progress=False, echo=lambda _: None
    )
    assert statuses(changed) == {
        "prepare": "skipped", "probe": "skipped", "teacher": "skipped", "cache": "skipped",
        "student": "ran", "distill": "ran", "export": "ran", "evaluate": "ran", "bench": "ran", "report": "ran",
    }  # fmt: skip
    assert record(run_dir, "teacher") == teacher_before
    assert record(run_dir, "distill")["inputs"]["config"]["training"]["learning_rate"] == 1e-3

    forced = run_pipeline(
        load_recipe(tiny["recipe"](lr=1e-3)),
        run_dir,
        from_stage="evaluate",
        progress=False,
        echo=lambda _: None,
    )
    assert [s for s, v in statuses(forced).items() if v == "ran"] == ["evaluate", "bench", "report"]


@pytest.mark.heavy
def test_deleted_output_reruns_that_stage_and_what_depends_on_it(finished_run, tiny, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "evaluate" / "teacher.json").unlink()
    lines: list[str] = []
    result = run_pipeline(
        load_recipe(tiny["recipe"]()), run_dir, until="evaluate", progress=False, echo=lines.append
    )
    assert statuses(result)["export"] == "skipped" and statuses(result)["evaluate"] == "ran"
    assert any(
        "evaluate: running (output" in line and "teacher.json is missing" in line for line in lines
    )
    assert (run_dir / "evaluate" / "teacher.json").is_file()


@pytest.mark.heavy
def test_full_disk_at_export_is_a_clear_error_and_not_marked_done(
    finished_run, tiny, tmp_path, monkeypatch
):
    from lean_kd.export import checkpoint  # the export stage's one path to export_tflite

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    real = checkpoint.export_tflite

    def full_disk_after_first(model, **kwargs):
        if kwargs["quant"] != "int8":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(model, **kwargs)

    monkeypatch.setattr(checkpoint, "export_tflite", full_disk_after_first)
    recipe = load_recipe(tiny["recipe"]())
    with pytest.raises(
        ExportError,
        match=r"stage export: Cannot export .*student_float32\.tflite \(float32\): the disk is full",
    ):
        run_pipeline(recipe, run_dir, from_stage="export", progress=False, echo=lambda _: None)
    assert not (run_dir / "export" / STAGE_FILE).exists()
    assert not list((run_dir / "export").glob(".*.tflite*"))  # no temporary export left
    monkeypatch.setattr(
        checkpoint, "export_tflite", real
    )  # disk freed: the rerun finishes the stage
    result = run_pipeline(recipe, run_dir, until="export", progress=False, echo=lambda _: None)
    assert statuses(result)["export"] == "ran" and (run_dir / "export" / STAGE_FILE).is_file()


def test_missing_dataset_root_fails_before_any_stage(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"name: x\ndata: {{dataset: csv, root: {tmp_path / 'nowhere'}}}\n")
    with pytest.raises(
        DataError, match=r"Dataset root .*nowhere does not exist \(data.root in the recipe\)"
    ):
        run_pipeline(load_recipe(path), tmp_path / "out", progress=False, echo=lambda _: None)
    assert not list((tmp_path / "out").glob(f"*/{STAGE_FILE}"))


def test_bad_stage_name_and_export_mode_fail_before_any_stage(tiny, tmp_path):
    recipe = load_recipe(tiny["recipe"]())
    with pytest.raises(
        ConfigError, match=r"Unknown stage 'distil'; expected one of prepare, probe, teacher"
    ):
        run_pipeline(recipe, tmp_path / "a", from_stage="distil", echo=lambda _: None)
    bad = load_recipe(tiny["recipe"](), export={"modes": ["int4"]})
    with pytest.raises(ConfigError, match=r"export.modes: unknown mode\(s\) \['int4'\]"):
        run_pipeline(bad, tmp_path / "b", echo=lambda _: None)
    assert not (tmp_path / "b").exists()


def test_prepare_records_data_and_a_corrupt_record_means_not_done(tiny, tmp_path):
    recipe = load_recipe(tiny["recipe"]())
    first = run_pipeline(recipe, tmp_path, until="prepare", progress=False, echo=lambda _: None)
    assert statuses(first) == {"prepare": "ran"}
    assert record(tmp_path, "prepare")["inputs"]["config"]["data"] == to_dict(recipe.data)
    assert statuses(run_pipeline(recipe, tmp_path, until="prepare", echo=lambda _: None)) == {
        "prepare": "skipped"
    }
    (tmp_path / "prepare" / STAGE_FILE).write_text("{truncated")
    assert statuses(run_pipeline(recipe, tmp_path, until="prepare", echo=lambda _: None)) == {
        "prepare": "ran"
    }
    wav = next((tiny["root"] / "data" / "audio").glob("*.wav"))
    copy = tmp_path / "data"
    shutil.copytree(tiny["root"] / "data", copy)
    (copy / "audio" / wav.name).write_bytes(b"not a wav")  # an edited file changes the data
    moved = load_recipe(tiny["recipe"](), data={"root": str(copy)})
    result = run_pipeline(moved, tmp_path, until="prepare", progress=False, echo=lambda _: None)
    assert statuses(result) == {"prepare": "ran"}
    broken = json.loads((tmp_path / "prepare" / "index.json").read_text())["broken_files"]
    assert [Path(b["path"]).name for b in broken] == [wav.name]


def test_probe_stage_is_the_floor_of_the_report(tiny, yamnet_tflite, tmp_path):
    from lean_kd.run.report import write_run_report

    recipe = load_recipe(tiny["recipe"](), probe={"features": "scores"})
    result = run_pipeline(recipe, tmp_path, until="probe", progress=False, echo=lambda _: None)
    assert statuses(result) == {"prepare": "ran", "probe": "ran"}
    assert record(tmp_path, "probe")["inputs"]["config"]["probe"]["features"] == "scores"
    metrics = json.loads((tmp_path / "probe" / "metrics.json").read_text())
    assert metrics["feature_size"] == 2 * 521 and (tmp_path / "probe" / "probe.npz").is_file()
    assert list((tmp_path / "window_outputs").rglob("*.npz"))  # kept across probe reruns
    text = write_run_report(tmp_path).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| floor: linear probe"))
    assert f"| {metrics['test']['map']:.3f} | {metrics['test']['accuracy']:.3f} |" in row
    assert "Floor (linear probe on frozen pretrained YAMNet, scores features, C 1.0)" in text
    back = load_recipe(tiny["recipe"]())
    again = run_pipeline(back, tmp_path, until="probe", echo=lambda _: None)
    assert statuses(again) == {"prepare": "skipped", "probe": "ran"}  # features changed back


def test_probe_without_pretrained_weights_is_skipped_with_a_note(tiny, tmp_path, monkeypatch):
    from lean_kd.models.yamnet import pretrained as yamnet_pretrained
    from lean_kd.run.report import write_run_report

    monkeypatch.delenv("LEAN_KD_YAMNET", raising=False)
    monkeypatch.setenv("LEAN_KD_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setattr(yamnet_pretrained, "download", no_network)
    recipe = load_recipe(tiny["recipe"]())
    result = run_pipeline(recipe, tmp_path / "run", until="probe", echo=lambda _: None)
    assert statuses(result) == {"prepare": "ran", "probe": "ran"}
    skipped = json.loads((tmp_path / "run" / "probe" / "metrics.json").read_text())
    assert skipped == {"skipped": PROBE_SKIPPED}
    text = write_run_report(tmp_path / "run").read_text()
    assert f"No floor: the probe was skipped ({PROBE_SKIPPED})." in text
    off = load_recipe(tiny["recipe"](), probe={"enabled": False})
    result = run_pipeline(off, tmp_path / "run", until="probe", echo=lambda _: None)
    assert statuses(result)["probe"] == "off" and not (tmp_path / "run" / "probe").exists()


def no_network(entry, dest, **kwargs):
    from lean_kd.errors import ModelError

    raise ModelError(f"Could not download {entry.url}: no network")


def test_stage_names_match_the_package_list():
    assert tuple(stage.name for stage in STAGES) == STAGE_NAMES


def test_missing_yamnet_weights_is_one_line_and_recorded(tiny, tmp_path, monkeypatch):
    from lean_kd.models.yamnet import pretrained as yamnet_pretrained

    monkeypatch.delenv("LEAN_KD_YAMNET", raising=False)
    monkeypatch.setenv("LEAN_KD_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setattr(yamnet_pretrained, "download", no_network)
    teacher = {
        "name": "yamnet_teacher",
        "checkpoint": "",
        "options": {"pretrained": "if_available", "yamnet_trainable": 2},
    }
    recipe = load_recipe(tiny["recipe"](), teacher=teacher)
    lines: list[str] = []
    result = run_pipeline(
        recipe, tmp_path / "run", until="prepare", progress=False, echo=lines.append
    )
    assert not result.pretrained_yamnet
    assert [line for line in lines if "YAMNet" in line] == [
        (
            f"Pretrained YAMNet weights not found (no $LEAN_KD_YAMNET, none in {tmp_path / 'empty_cache'}, "
            "no download): YAMNet branches use RANDOM init; the report marks this run."
        )
    ]
    assert (
        json.loads((tmp_path / "run" / "prepare" / "index.json").read_text())["pretrained_yamnet"]
        is False
    )
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["pretrained_yamnet"] is False
    assert run_info["resolved_recipe"]["teacher"]["options"] == {
        "pretrained": False,
        "yamnet_trainable": "all",
    }


def test_cli_run_reports_a_bad_recipe_in_one_line(tmp_path, capsys):
    from lean_kd.cli.main import main

    path = tmp_path / "r.yaml"
    path.write_text(f"name: x\ndata: {{dataset: csv, root: {tmp_path / 'nowhere'}}}\n")
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("lean-kd: error: Dataset root") and "nowhere does not exist" in err[-1]
    )
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml does not exist" in capsys.readouterr().err
