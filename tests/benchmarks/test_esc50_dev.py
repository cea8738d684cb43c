"""benchmarks/esc50_dev.py bookkeeping (no training): table order, kept rows, MACs, parallel runs."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import esc50_dev
from lean_kd.run.recipe import load_recipe
from processes import THREAD_VARIABLES, map_in_processes


def row(model, fold, seed, accuracy=0.5, **extra):
    return {
        "model": model, "fold": fold, "seed": seed, "accuracy": accuracy, "map": 0.6,
        "wall_seconds": 10.0, "parameters": 5, "size_bytes": None, "checkpoint": None, **extra,
    }  # fmt: skip


def test_earlier_rows_are_kept_unless_this_invocation_ran_the_same_model_fold_and_seed(tmp_path):
    earlier = [row("LEAN, no KD", 1, 0, 0.1), row("LEAN, no KD", 1, 1, 0.2), row("LEAN, KD", 1, 0)]
    path = tmp_path / "esc50_dev.json"
    path.write_text(json.dumps({"runs": earlier}))
    now = [row("LEAN, no KD", 1, 0, 0.9)]
    rows, kept = esc50_dev.with_earlier_rows(now, path)
    assert kept == 2
    assert sorted((r["model"], r["seed"], r["accuracy"]) for r in rows) == [
        ("LEAN, KD", 0, 0.5), ("LEAN, no KD", 0, 0.9), ("LEAN, no KD", 1, 0.2),
    ]  # fmt: skip
    assert esc50_dev.with_earlier_rows(now, tmp_path / "absent.json") == (now, 0)


def test_table_orders_floor_teacher_then_each_method_with_its_int8_rows():
    method = "LEAN, KD + mixup (online teacher)"
    rows = [
        row(f"{method}, int8 TFLite", 1, 0),
        row("unknown row", 1, 0),
        row(method, 1, 0),
        row("LEAN, no KD", 1, 0),
        row(esc50_dev.TEACHER_ROW, 1, None, macs=140e6),
        row("probe (floor)", 1, None),
    ]
    names = [line.split(" | ")[0].lstrip("| ") for line in esc50_dev.table(rows)[2:]]
    assert names == [
        "probe (floor)", esc50_dev.TEACHER_ROW, "LEAN, no KD", method,
        f"{method}, int8 TFLite", "unknown row",
    ]  # fmt: skip


def test_macs_come_from_the_rows_when_their_checkpoints_are_gone():
    rows = [row("LEAN, KD", 1, 0, checkpoint="/gone/best.keras"), row("LEAN, KD", 2, 0, macs=121e6)]
    assert esc50_dev.macs_per_window(rows) == "121 M"
    assert all(r["macs"] == 121e6 for r in rows)  # kept for the JSON
    assert esc50_dev.macs_per_window([row("probe (floor)", 1, None)]) == "—"


def test_goal_methods_are_student_rows_and_the_default_of_methods():
    assert set(esc50_dev.GOAL_METHODS) <= set(esc50_dev.METHODS)
    students = [esc50_dev.METHODS[m] for m in esc50_dev.GOAL_METHODS[1:]]
    assert all(s.int8 or s.equalized or s.dynamic_layers for s in students)  # an int8 row each


def test_a_student_run_is_done_only_with_its_metrics_and_every_int8_form(tmp_path):
    method = "LEAN, KD + mixup (online teacher), YAMNet blocks 1-12 frozen, new layers at 3e-3, 480 steps"
    run = esc50_dev.StudentRun(method, 1, 0, tmp_path, None, tmp_path / "teacher", None)
    assert not run.done(("fft",))
    (tmp_path / "metrics.json").write_text("{}")
    forms = [
        "int8_dft-fft",
        "int8_dft-fft_equalized",
        "int8_dft-fft_equalized_dynamic-layer13-layer14",
    ]
    for form in forms:
        assert not run.done(("fft",))  # each export form the row names is needed
        (tmp_path / form).mkdir()
        (tmp_path / form / "metrics.json").write_text("{}")
    assert run.done(("fft",)) and not run.done(("fft", "rfft"))


def test_map_in_processes_keeps_the_order_of_the_calls():
    assert map_in_processes(math.pow, [(2, 3), (3, 2), (10, 0)], jobs=2) == [8.0, 9.0, 1.0]


def test_workers_get_their_share_of_the_cores_and_the_parent_keeps_its_environment(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    share = str(max(1, (os.cpu_count() or 1) // 2))
    seen = map_in_processes(os.getenv, [(name,) for name in THREAD_VARIABLES], jobs=2)
    assert seen == [share, share]
    assert not any(name in os.environ for name in THREAD_VARIABLES)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "7")  # the user's setting wins
    assert map_in_processes(os.getenv, [("TF_NUM_INTRAOP_THREADS",)], jobs=2) == ["7"]


def test_results_keep_the_invocations_that_trained_runs(tmp_path, monkeypatch):
    import argparse

    monkeypatch.setattr(esc50_dev, "RESULTS", tmp_path)
    monkeypatch.setattr(esc50_dev.sys, "argv", ["esc50_dev.py", "--students"])
    args = argparse.Namespace(folds=list(esc50_dev.FOLDS), jobs=2, fresh=False)
    rows = [row("probe (floor)", 1, None), row("LEAN, no KD", 1, 0)]
    esc50_dev.write_results(rows, args, 600.0, kept=0, trained=2)
    esc50_dev.write_results(rows, args, 6.0, kept=0, trained=0)  # all reused: not recorded
    data = json.loads((tmp_path / "esc50_dev.json").read_text())
    assert [(i["command"], i["minutes"], i["runs_trained"]) for i in data["invocations"]] == [
        ("python benchmarks/esc50_dev.py --students", 10.0, 2)
    ]
    text = (tmp_path / "esc50_dev.md").read_text()
    assert "2 runs (int8 exports included) in 10.0 min, 2 at a time" in text
    args.fresh = True
    esc50_dev.write_results(rows, args, 6.0, kept=0, trained=0)
    assert json.loads((tmp_path / "esc50_dev.json").read_text())["invocations"] == []


def test_rows_override_only_the_training_settings_they_name():
    recipe = load_recipe(esc50_dev.RECIPE)
    for method, student in esc50_dev.METHODS.items():
        training = esc50_dev.student_recipe(recipe, student).training
        for field in ("learning_rate", "pretrained_learning_rate_scale", "epochs"):
            expected = student.training.get(field, getattr(recipe.training, field))
            assert getattr(training, field) == expected, (method, field)
