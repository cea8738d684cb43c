"""The Android driver: benchmark_model output parsing and the adb calls (with a fake adb on PATH).

The sample outputs follow the format LiteRT's benchmark_model prints (lines quoted in the
module docstring of android_bench.py): recent releases add p5/median/p95 to the timed
``count=`` line and log through logcat-style prefixes; older ones print
"Peak memory footprint (MB): init=… overall=…" and floats like 2.95e+06. No phone was used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lean_kd.bench.schema import validate_report
from lean_kd_runtime import engines, schema

ANDROID_DIR = Path(__file__).resolve().parents[2] / "export" / "android"
sys.path.insert(0, str(ANDROID_DIR))

import android_bench  # noqa: E402

MIB = 1024 * 1024

RECENT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/lean_kd/lean_int8.tflite]
INFO: #threads used for CPU inference: [4]
INFO: Loaded model /data/local/tmp/lean_kd/lean_int8.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: The input model file size (MB): 0.61234
INFO: Initialized session in 21.5ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=12 first=9120 curr=4410 min=4302 max=9120 avg=4876.5 std=1290 p5=4302 median=4455 p95=9120
INFO: Running benchmark for at least 200 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=200 first=4401 curr=4398 min=4290 max=6120 avg=4467.25 std=171 p5=4305 median=4431 p95=4790
INFO: Inference timings in us: Init: 21500, First inference: 9120, Warmup (avg): 4876.5, Inference (avg): 4467.25
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=3.25 overall=7.5
INFO: Overall peak memory footprint (MB) via periodic monitoring: 12.75
INFO: Memory status at the end of exeution:
INFO: - VmRSS              : 12 MB
"""

OLDER = """\
STARTING!
Num threads: [1]
Graph: [/data/local/tmp/lean_kd/yamnet.tflite]
Loaded model /data/local/tmp/lean_kd/yamnet.tflite
Initialized session in 3.337ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=9 first=81913 curr=55502 min=55502 max=81913 avg=58984.7 std=8115

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 3337, First inference: 81913, Warmup (avg): 58984.7, Inference (avg): 2.95034e+06
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Peak memory footprint (MB): init=4.92969 overall=138.809
"""

LOGCAT = "\n".join("I tflite  : " + line.removeprefix("INFO: ") for line in RECENT.splitlines())

FAILED = """\
INFO: Loaded model /data/local/tmp/lean_kd/lean_int8.tflite
ERROR: Failed to apply GPU delegate.
ERROR: Benchmarking failed.
"""


@pytest.mark.parametrize("text", [RECENT, LOGCAT], ids=["recent", "logcat"])
def test_parse_recent_output(text):
    entry, memory = android_bench.parse_output(
        text, threads=4, delegate="xnnpack", runs=200, audio_seconds=1.0
    )
    assert entry["runs"] == 200
    assert entry["mean_ms"] == pytest.approx(4.46725)
    assert (
        entry["init_ms"],
        entry["first_inference_ms"],
        entry["warmup_mean_ms"],
    ) == pytest.approx((21.5, 9.12, 4.8765))
    assert (entry["min_ms"], entry["max_ms"], entry["std_ms"]) == pytest.approx((4.29, 6.12, 0.171))
    assert entry["p50_ms"] == pytest.approx(4.431)  # median of the timed runs, not of the warm-up
    assert entry["p90_ms"] is None and entry["p99_ms"] is None
    assert (
        entry["real_time_factor"] == pytest.approx(4.431e-3)
        and entry["real_time_factor_basis"] == "p50"
    )
    assert memory["model_delta_bytes"] == int(7.5 * MIB) and memory["init_delta_bytes"] == int(
        3.25 * MIB
    )
    assert memory["peak_rss_bytes"] == int(12.75 * MIB) and memory["tensor_arena_bytes"] is None


def test_parse_older_output():
    entry, memory = android_bench.parse_output(
        OLDER, threads=1, delegate="cpu", runs=50, audio_seconds=0.975
    )
    assert entry["runs"] == 50 and entry["mean_ms"] == pytest.approx(2950.34)
    assert entry["p50_ms"] is None and entry["real_time_factor_basis"] == "mean"
    assert entry["real_time_factor"] == pytest.approx(2.95034 / 0.975)
    assert entry["min_ms"] == pytest.approx(2727.568)
    assert memory["model_delta_bytes"] == int(138.809 * MIB) and memory["peak_rss_bytes"] is None


def test_parse_failed_run():
    with pytest.raises(
        android_bench.BenchError,
        match="no 'Inference timings' line \\(gpu, 1 threads\\): .*Benchmarking failed",
    ):
        android_bench.parse_output(FAILED, threads=1, delegate="gpu", runs=50, audio_seconds=1.0)


def test_schema_constants_match_lean_kd_pi():
    assert (android_bench.SCHEMA_NAME, android_bench.SCHEMA_VERSION) == (
        schema.SCHEMA_NAME,
        schema.SCHEMA_VERSION,
    )
    assert set(android_bench.DELEGATE_FLAGS) == set(schema.DELEGATES)
    assert android_bench.IN_MEMORY_WEIGHT_CACHE == engines.IN_MEMORY_WEIGHT_CACHE


FAKE_ADB = """\
#!{python}
import os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:1] == ["-s"]:
    args = args[2:]
if args[0] == "get-state":
    state = os.environ.get("FAKE_ADB_STATE", "device")
    if state != "device":
        sys.exit("error: device " + state)
    print(state)
elif args[0] == "shell" and args[1] == "getprop":
    print("Pixel 7")
elif args[0] == "shell" and "benchmark_model" in args[1] and "--graph" in args[1]:
    print(open(os.environ["FAKE_ADB_OUTPUT"]).read())
"""


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    """An adb on PATH that logs its arguments and answers like a phone running benchmark_model."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(0o755)
    (tmp_path / "output.txt").write_text(RECENT)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_LOG", str(tmp_path / "adb.log"))
    monkeypatch.setenv("FAKE_ADB_OUTPUT", str(tmp_path / "output.txt"))
    (tmp_path / "benchmark_model").write_bytes(b"\x7fELF fake")
    (tmp_path / "model.tflite").write_bytes(b"fake model")
    return tmp_path


def test_push_run_parse_with_fake_adb(fake_adb, capsys):
    out = fake_adb / "report.json"
    argv = ["--model", fake_adb / "model.tflite", "--benchmark-binary", fake_adb / "benchmark_model", "--serial", "ABC123",
            "--threads", "1,4", "--delegates", "xnnpack,gpu,nnapi", "--runs", "200", "--json", out, "--raw-dir", fake_adb / "raw"]  # fmt: skip
    assert android_bench.main([str(a) for a in argv]) == 0
    report = json.loads(out.read_text())
    validate_report(report)
    assert report["host"]["device"] == "Pixel 7" and report["tool"] == "android_bench"
    entries = report["models"][0]["latency"]
    assert [(e["threads"], e["delegate"]) for e in entries] == [
        (t, d) for t in (1, 4) for d in ("xnnpack", "gpu", "nnapi")
    ]
    assert report["models"][0]["memory"]["peak_rss_bytes"] == int(12.75 * MIB)
    assert len(list((fake_adb / "raw").glob("*.txt"))) == 6
    log = (fake_adb / "adb.log").read_text().splitlines()
    assert all(line.startswith("-s ABC123 ") for line in log)
    assert (
        f"-s ABC123 push {fake_adb / 'benchmark_model'} /data/local/tmp/lean_kd/benchmark_model"
        in log
    )
    assert "-s ABC123 shell chmod 755 /data/local/tmp/lean_kd/benchmark_model" in log
    runs = [line for line in log if "--graph=" in line]
    assert runs[1] == (
        "-s ABC123 shell /data/local/tmp/lean_kd/benchmark_model --graph=/data/local/tmp/lean_kd/model.tflite "
        "--num_threads=1 --num_runs=200 --warmup_runs=10 --report_peak_memory_footprint=true --use_gpu=true"
    )
    assert runs[2].endswith("--use_nnapi=true") and runs[3].endswith(
        "--num_threads=4 --num_runs=200 --warmup_runs=10 --report_peak_memory_footprint=true --use_xnnpack=true"
    )
    assert "gpu      1 thread(s): mean 4.47 ms" in capsys.readouterr().out


def test_weight_cache_flag_goes_to_xnnpack_runs_only(fake_adb):
    out = fake_adb / "report.json"
    argv = ["--model", fake_adb / "model.tflite", "--benchmark-binary", fake_adb / "benchmark_model",
            "--delegates", "xnnpack,gpu", "--weight-cache", "--json", out]  # fmt: skip
    assert android_bench.main([str(a) for a in argv]) == 0
    report = json.loads(out.read_text())
    validate_report(report)
    assert report["host"]["runtime"] == "benchmark_model, XNNPACK weight cache"
    xnnpack, gpu = [
        line for line in (fake_adb / "adb.log").read_text().splitlines() if "--graph=" in line
    ]
    assert xnnpack.endswith("--use_xnnpack=true --xnnpack_weight_cache_file_path=:memory")
    assert gpu.endswith("--use_gpu=true")


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        ("no_adb", [], "adb not found on PATH"),
        ("unauthorized", [], "device unauthorized"),
        ("", ["--threads", "0"], "threads must be >= 1, got 0"),
        ("no_model", [], "model.tflite: model not found"),
    ],
)
def test_errors_are_one_line(setup, extra, message, fake_adb, monkeypatch, capsys):
    if setup == "no_adb":
        monkeypatch.setenv("PATH", "/nonexistent")
    if setup == "unauthorized":
        monkeypatch.setenv("FAKE_ADB_STATE", "unauthorized")
    if setup == "no_model":
        (fake_adb / "model.tflite").unlink()
    argv = [
        "--model",
        fake_adb / "model.tflite",
        "--benchmark-binary",
        fake_adb / "benchmark_model",
        *extra,
    ]
    assert android_bench.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("android_bench: error:") and message in err and err.count("\n") == 1


def test_imports_only_the_standard_library():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ANDROID_DIR / "android_bench.py"), "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    modules = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert not modules & {"tensorflow", "lean_kd", "numpy", "ai_edge_litert"}
