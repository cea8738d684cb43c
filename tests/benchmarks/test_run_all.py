"""benchmarks/run_all.py and run_all_report.py: goal verdicts, summary table, resumable steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import fsdd_kd
import run_all
import run_all_report as report

MIB = 1024 * 1024


def model_entry(path, *, size, p50, delta, macs=1e6):
    latency = {
        "threads": 1,
        "p50_ms": p50,
        "p90_ms": p50 * 1.2,
        "p99_ms": p50 * 1.5,
        "real_time_factor": p50 / 1000,
        "mean_ms": p50,
        "min_ms": p50 / 2,
        "samples_ms": [p50] * 3,
    }
    memory = {
        "model_delta_bytes": delta,
        "peak_rss_bytes": None if delta is None else delta + 30 * MIB,
    }
    return {
        "path": path,
        "file_size_bytes": size,
        "latency": [latency],
        "memory": memory,
        "macs_per_inference": macs,
        "macs_by_op": {"CONV_2D": macs * 0.75, "ADD": 0, "FULLY_CONNECTED": macs * 0.25},
    }


def measured(
    key, *, p50, size=MIB, delta=2 * MIB, yamnet_p50=10.0, evaluation=None, keras_map=None
):
    cand = next(c for c in report.CANDIDATES if c.key == key)
    own = model_entry(f"{key}.tflite", size=size, p50=p50, delta=delta)
    bench = {"models": [own]}
    if yamnet_p50 is not None:
        bench["models"].append(
            model_entry("yamnet.tflite", size=4 * MIB, p50=yamnet_p50, delta=20 * MIB, macs=7e7)
        )
        bench["ratios"] = {"latency": [{"threads": 1, "p50": p50 / yamnet_p50}]}
    return report.Measured(cand, Path(f"{key}.tflite"), evaluation, bench, keras_map)


def test_goals_met_not_met_and_unmeasured():
    results = {  # official YAMNet: p50 10 ms, memory 20 MiB
        "lean_int8": measured("lean_int8", p50=20.0, delta=22 * MIB),  # 2.0 x, 1.1 x: met
        "lean_tiny_int8": measured("lean_tiny_int8", p50=10.5),  # 1.05 x: not met
        "lean_fast_int8": measured("lean_fast_int8", p50=15.0, delta=23 * MIB),  # 1.15 x memory
        "lean_tiny_dynamic": measured("lean_tiny_dynamic", p50=9.0),  # 0.90 x: met
    }
    lines = dict(zip((g.text for g in report.GOALS), report.goal_lines(results), strict=True))
    lean, fast, tiny, tiny_dynamic, lean_memory, fast_memory = lines.values()
    assert "ratio 2.00 (limit 2): **MET**; ratio of the fastest invokes 2.00" in lean
    assert "ratio 1.50 (limit 2): **MET**" in fast
    assert "ratio 1.05 (limit 1): **NOT MET**" in tiny
    assert "ratio 0.90 (limit 1): **MET**" in tiny_dynamic
    assert lean_memory.endswith("ratio 1.10 (limit 1.1): **MET** (22.0 MiB vs 20.0 MiB)")
    assert "ratio 1.15 (limit 1.1): **NOT MET**" in fast_memory
    results["lean_int8"] = measured("lean_int8", p50=16.0, delta=None, yamnet_p50=None)
    lean, _, _, _, lean_memory, _ = report.goal_lines(results)
    assert "NOT MEASURED" in lean and "NOT MEASURED" in lean_memory
    assert all("NOT MEASURED" in line for line in report.goal_lines({}))


def test_table_puts_yamnet_first_with_na_map_and_same_run_ratios():
    results = [
        measured(
            "cnn_int8",
            p50=2.0,
            yamnet_p50=8.0,
            evaluation={"map": 0.9, "accuracy": 0.8},
            keras_map=0.91,
        ),
        measured(
            "lean_int8", p50=12.0, yamnet_p50=10.0, evaluation={"map": 0.95, "accuracy": None}
        ),
    ]
    yamnet = report.yamnet_entry(results)
    assert yamnet["latency"][0]["p50_ms"] == 10.0  # the baseline of LEAN int8's run
    lines = report.results_table(results, yamnet)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0][:6] == [report.YAMNET_NAME, report.YAMNET_FORMAT, "4.00", "n/a", "n/a", "n/a"]
    assert cells[2][1] == "TFLite int8 (hybrid LSTMs)"
    assert cells[0][-1] == "1.00"
    assert cells[1][3:8] == ["0.900", "0.910", "0.800", "1.00", "2.00"] and cells[1][-1] == "0.25"
    assert cells[2][3:6] == ["0.950", "n/a", "n/a"] and cells[2][-1] == "1.20"
    assert cells[2][11:14] == ["2.00", "32.00", "1.0"]  # memory MiB, peak RSS MiB, MMACs
    macs = report.macs_lines(results, yamnet, top=2)
    assert macs[0] == f"- {report.YAMNET_NAME}: CONV_2D 52.5, FULLY_CONNECTED 17.5"


def test_cached_json_computes_once_and_refreshes(tmp_path):
    path, calls = tmp_path / "step.json", []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    assert run_all.cached_json(path, compute) == {"n": 1}
    assert run_all.cached_json(path, compute) == {"n": 1} and len(calls) == 1
    assert run_all.cached_json(path, compute, refresh=True) == {"n": 2}
    assert json.loads(path.read_text()) == {"n": 2}
    with pytest.raises(ValueError):  # NaN is not JSON; the old file stays
        run_all.cached_json(path, lambda: {"n": float("nan")}, refresh=True)
    assert json.loads(path.read_text()) == {"n": 2}


def test_extra_students_are_fsdd_kd_with_their_model_and_epochs():
    base = run_all.load_recipe(run_all.RECIPE)
    tiny = run_all.extra_recipe(base, "lean_tiny", seed=3)
    fast = run_all.extra_recipe(base, "lean_fast", seed=0)
    assert tiny.student.name == "lean_tiny" and tiny.training.seed == 3
    assert tiny.loss == fast.loss == tuple(fsdd_kd.METHODS["KD"])
    assert tiny.data == base.data and tiny.training.epochs == 8
    assert fast.student.name == "lean_fast" and fast.training.epochs == base.training.epochs


def test_fsdd_student_recipes_take_the_students_model_epochs_method_and_seed():
    base = run_all.load_recipe(run_all.RECIPE)
    lean = fsdd_kd.student_recipe(base, "lean", "KD + PKT", seed=2)
    cnn = fsdd_kd.student_recipe(base, "cnn", "no KD", seed=1)
    assert (lean.student.name, lean.training.epochs, lean.training.seed) == ("lean", 3, 2)
    assert [term["name"] for term in lean.loss] == ["hinton_kd", "pkt"]
    assert (cnn.student.name, cnn.training.epochs, cnn.loss) == (
        "mobilenet_v2",
        4,
        ({"name": "ce"},),
    )
    assert lean.teacher == cnn.teacher == base.teacher and lean.cache == base.cache


def test_write_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / "table.md"
    fsdd_kd.write_atomic(path, "old")
    fsdd_kd.write_atomic(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_cpu_features_name_the_model_and_its_int8_dot_products(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n")
    assert report.cpu_features(str(cpuinfo)) == " (AMD EPYC, no int8 dot-product instructions)"
    cpuinfo.write_text("model name\t: Xeon\nflags\t\t: avx2 avx512_vnni avx_vnni\n")
    assert report.cpu_features(str(cpuinfo)) == " (Xeon, int8 dot products (avx512_vnni, avx_vnni))"
    assert report.cpu_features(str(tmp_path / "missing")) == ""


def test_summary_without_any_measured_model_says_so():
    context = {
        "command": "python benchmarks/run_all.py",
        "created_utc": "now",
        "minutes": 0.1,
        "seed": 0,
        "calibration_count": 200,
        "load_start": 1.0,
    }
    text = report.summary_text([], ["LEAN int8: run `x` not finished; not measured"], context)
    assert "- LEAN int8: run `x` not finished; not measured" in text
    assert (
        text.count("NOT MEASURED") == len(report.GOALS)
        and "Benchmarks finished between n/a and n/a" in text
    )
