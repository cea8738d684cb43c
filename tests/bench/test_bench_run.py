"""``run_benchmark`` and ``lean-kd bench``: figures, interleaving, baseline ratios and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.tflite_testing import EXPECTED_MACS, attach_metadata, with_input
from lean_kd.bench.benchmark import BenchConfig, TimingConfig, run_benchmark
from lean_kd.bench.schema import validate_report
from lean_kd.cli.main import main
from lean_kd.errors import ConfigError, ModelError
from lean_kd_runtime.timing import time_interleaved

FAST = TimingConfig(runs=30, warmup_runs=2, block_runs=5)


def test_figures_of_one_model(bench_model_tflite):
    report = run_benchmark(
        bench_model_tflite, config=BenchConfig(threads=(1, 2), timing=FAST, memory_repeats=1)
    )
    validate_report(report)
    (entry,) = report["models"]
    assert [e["threads"] for e in entry["latency"]] == [1, 2]
    for e in entry["latency"]:
        assert e["runs"] == 30
        assert 0 < e["min_ms"] <= e["p50_ms"] <= e["p90_ms"] <= e["p99_ms"] <= e["max_ms"]
        assert e["real_time_factor"] == pytest.approx(e["p50_ms"] / 1000 / 1.0)
    assert entry["input_shape"] == [1, 16000] and entry["audio_seconds"] == 1.0
    assert entry["sample_rate_source"] == "option" and entry["sample_rate_hz"] == 16000
    assert entry["file_size_bytes"] == bench_model_tflite.stat().st_size
    assert entry["macs_by_op"] == EXPECTED_MACS
    memory = entry["memory"]
    assert memory["peak_rss_bytes"] > memory["runtime_only_peak_rss_bytes"] > 0
    assert (
        memory["model_delta_bytes"]
        == memory["peak_rss_bytes"] - memory["runtime_only_peak_rss_bytes"]
    )
    assert memory["tensor_arena_bytes"] is None
    assert report["ratios"] is None and report["settings"]["block_runs"] is None


def test_baseline_in_the_same_run_gives_ratios(bench_model_tflite, yamnet_tflite):
    report = run_benchmark(
        bench_model_tflite,
        baseline=yamnet_tflite,
        config=BenchConfig(timing=FAST, memory_repeats=1),
    )
    model, baseline = report["models"]
    assert baseline["role"] == "baseline" and baseline["input_shape"] == [1, 15600]
    assert baseline["audio_seconds"] == pytest.approx(0.975)
    ratios = report["ratios"]
    assert ratios["file_size"] == pytest.approx(
        model["file_size_bytes"] / baseline["file_size_bytes"]
    )
    assert ratios["macs"] == pytest.approx(
        model["macs_per_inference"] / baseline["macs_per_inference"]
    )
    (row,) = ratios["latency"]
    assert row["p50"] == pytest.approx(
        model["latency"][0]["p50_ms"] / baseline["latency"][0]["p50_ms"]
    )
    assert report["settings"]["block_runs"] == 5


def test_sample_rate_from_metadata(bench_model_tflite, tmp_path):
    path = tmp_path / "8k.tflite"
    path.write_bytes(attach_metadata(bench_model_tflite.read_bytes(), sample_rate_hz=8000))
    timing = TimingConfig(runs=3, warmup_runs=0)
    (entry,) = run_benchmark(path, config=BenchConfig(timing=timing, memory_repeats=1))["models"]
    assert (entry["sample_rate_hz"], entry["sample_rate_source"], entry["audio_seconds"]) == (
        8000,
        "metadata",
        2.0,
    )


class FakeModel:
    """Records the order of invokes, to check that timed blocks alternate."""

    def __init__(self, name, log):
        self.name, self.log, self.engine = name, log, self

    def feed(self, seed):
        pass

    def invoke(self):  # warm-up
        self.log.append(self.name.upper())

    def invoke_ns(self):
        self.log.append(self.name)
        return 1000


def test_timed_invokes_alternate_in_blocks():
    log = []
    times = time_interleaved(
        [FakeModel("m", log), FakeModel("b", log)], runs=5, warmup_runs=1, block_runs=2, seed=0
    )
    assert "".join(log) == "MB" + "mmbb" + "mmbb" + "mb"
    assert [t.tolist() for t in times] == [[1e-6] * 5] * 2


@pytest.mark.parametrize("threads", [(0,), (1, -2), ()])
def test_threads_below_one(threads):
    with pytest.raises(ConfigError, match="threads"):
        BenchConfig(threads=threads)


@pytest.mark.parametrize(
    "shape, dtype, expected",
    [
        ([1, 96, 64], None, "float32 \\[1, 96, 64\\]"),
        (None, 9, "int8 \\[1, 16000\\]"),
    ],  # 9: TensorType.INT8
)
def test_non_waveform_input(bench_model_tflite, tmp_path, shape, dtype, expected):
    path = tmp_path / "patch.tflite"
    path.write_bytes(with_input(bench_model_tflite.read_bytes(), shape=shape, dtype=dtype))
    with pytest.raises(
        ModelError,
        match=f"expected a float32 waveform input of shape \\[1, N\\] or \\[N\\], got {expected}",
    ):
        run_benchmark(path)


def test_cli_on_official_yamnet(yamnet_tflite, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--model", str(yamnet_tflite), "--threads", "1", "--memory-repeats", "1"]
    assert main(argv + ["--json", str(out), "--markdown", str(tmp_path / "bench.md")]) == 0
    report = json.loads(out.read_text())
    validate_report(report)
    (entry,) = report["models"][0]["latency"]
    assert entry["runs"] == 200 and entry["threads"] == 1
    assert "| yamnet.tflite (model) | 1 |" in capsys.readouterr().out
    assert "| yamnet.tflite (model) | 1 |" in (tmp_path / "bench.md").read_text()


@pytest.mark.heavy
def test_cli_lean_int8_against_official_yamnet(lean_int8_tflite, yamnet_tflite, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--model", str(lean_int8_tflite), "--baseline", str(yamnet_tflite),
            "--runs", "20", "--warmup-runs", "2", "--block-runs", "5", "--memory-repeats", "1",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    validate_report(report)
    model, baseline = report["models"]
    assert (model["role"], model["sample_rate_source"], model["input_shape"]) == (
        "model",
        "metadata",
        [1, 16000],
    )
    assert (baseline["role"], baseline["input_shape"]) == ("baseline", [1, 15600])
    for entry in (model, baseline):
        assert entry["file_size_bytes"] > 0 and entry["macs_per_inference"] > 0
        assert entry["memory"]["model_delta_bytes"] > 0
        (latency,) = entry["latency"]
        assert latency["runs"] == 20 and latency["threads"] == 1
        assert 0 < latency["min_ms"] <= latency["p50_ms"] <= latency["p90_ms"]
        assert latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert latency["real_time_factor"] == pytest.approx(
            latency["p50_ms"] / 1000 / entry["audio_seconds"]
        )
    ratios = report["ratios"]
    assert ratios["baseline_path"] == str(yamnet_tflite)
    assert 0 < ratios["file_size"] < 1  # int8 lean_tiny is smaller than YAMNet
    assert ratios["macs"] == pytest.approx(
        model["macs_per_inference"] / baseline["macs_per_inference"]
    )
    (row,) = ratios["latency"]
    for key in ("p50", "p90", "p99"):
        assert row[key] == pytest.approx(
            model["latency"][0][f"{key}_ms"] / baseline["latency"][0][f"{key}_ms"]
        )
        assert row[key] > 0
    for line in (f"| {lean_int8_tflite.name} (model) | 1 |", "| yamnet.tflite (baseline) | 1 |",
                 "| ratio model / yamnet.tflite | 1 |"):  # fmt: skip
        assert line in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "{tmp}/missing.tflite"], "missing.tflite: model file not found"),
        (
            ["--model", "{yamnet}", "--baseline", "{tmp}/gone.tflite"],
            "gone.tflite: model file not found",
        ),
        (["--model", "{tmp}/text.tflite"], "not a TFLite flatbuffer"),
        (
            ["--model", "{tmp}/patch.tflite"],
            (
                "patch.tflite: expected a float32 waveform input of shape [1, N] or [N], "
                "got float32 [1, 96, 64]"
            ),
        ),
        (["--model", "{yamnet}", "--threads", "0"], "threads must be >= 1, got 0"),
        (["--model", "{yamnet}", "--threads", "2,0"], "threads must be >= 1, got 0"),
        (["--model", "{yamnet}", "--runs", "0"], "runs must be >= 1, got 0"),
        (["--model", "{yamnet}", "--sample-rate", "0"], "sample_rate_hz must be > 0, got 0"),
    ],
)
def test_cli_errors_are_one_line(
    args, message, tmp_path, yamnet_tflite, bench_model_tflite, capsys
):
    (tmp_path / "text.tflite").write_text("not a model")
    (tmp_path / "patch.tflite").write_bytes(
        with_input(bench_model_tflite.read_bytes(), shape=[1, 96, 64])
    )
    argv = ["bench"] + [a.format(tmp=tmp_path, yamnet=yamnet_tflite) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("lean-kd: error:") and err.count("\n") == 1


def test_cli_error_without_traceback_in_a_real_process(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lean_kd.cli.main",
            "bench",
            "--model",
            str(tmp_path / "nope.tflite"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"lean-kd: error: {tmp_path / 'nope.tflite'}: model file not found"
    )
