"""The benchmark report schema: a valid report passes, each kind of departure is named."""

from __future__ import annotations

import copy

import pytest

from lean_kd.bench.schema import SCHEMA_NAME, SCHEMA_VERSION, report_problems, validate_report
from lean_kd.errors import DataError


def latency(threads=1, p50=2.0, p90=3.0, p99=4.0):
    return {
        "threads": threads, "delegate": "xnnpack", "runs": 200,
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": 2.5, "min_ms": 1.5, "max_ms": 5.0, "std_ms": 0.5,
        "init_ms": None, "first_inference_ms": None, "warmup_mean_ms": None,
        "real_time_factor": p50 / 1000, "real_time_factor_basis": "p50", "samples_ms": None,
    }  # fmt: skip


def model(role="model"):
    return {
        "role": role, "path": f"{role}.tflite", "file_size_bytes": 1000, "input_shape": [1, 16000],
        "input_dtype": "float32", "sample_rate_hz": 16000, "sample_rate_source": "option", "audio_seconds": 1.0,
        "macs_per_inference": 123, "macs_by_op": {"CONV_2D": 123}, "uncounted_ops": [],
        "memory": {
            "method": "test", "peak_rss_bytes": 2000, "runtime_only_peak_rss_bytes": 1000, "model_delta_bytes": 1000,
            "init_delta_bytes": None, "tensor_arena_bytes": None,
        },
        "latency": [latency()],
    }  # fmt: skip


def report(with_baseline=False):
    ratios = {
        "baseline_path": "baseline.tflite", "file_size": 1.0, "model_memory": 1.0, "macs": 1.0,
        "latency": [{"threads": 1, "p50": 1.0, "p90": 1.0, "p99": 1.0, "mean": 1.0, "real_time_factor": 1.0}],
    }  # fmt: skip
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "tool": "test",
        "created_utc": "2026-01-01T00:00:00+00:00",
        "host": {"machine": "x86_64", "system": "Linux", "cpu_count": 2, "python": "3.11.7",
                 "runtime": "ai_edge_litert 2.3.0", "emulated": False, "device": None,
                 "cpu_int8_features": ["avx2"]},
        "settings": {"runs": 200, "warmup_runs": 10, "block_runs": None, "threads": [1], "input_seed": 0},
        "models": [model(), model("baseline")] if with_baseline else [model()],
        "ratios": ratios if with_baseline else None,
    }  # fmt: skip


@pytest.mark.parametrize("with_baseline", [False, True])
def test_valid_reports_pass(with_baseline):
    validate_report(report(with_baseline))
    assert report_problems(report(with_baseline)) == []


def _broken(change):
    value = copy.deepcopy(report())
    change(value)
    return value


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda r: r.pop("host"), "missing field 'host'"),
        (lambda r: r.update(extra=1), "unknown field 'extra'"),
        (lambda r: r.update(schema_version=2), "expected 'lean_kd.bench' v1"),
        (lambda r: r["models"][0].update(file_size_bytes="big"), "file_size_bytes: expected int"),
        (lambda r: r["models"][0].update(file_size_bytes=0), "file_size_bytes: expected > 0"),
        (lambda r: r["models"][0]["latency"][0].update(p90_ms=1.0), "p50 <= p90 <= p99"),
        (
            lambda r: r["models"][0]["latency"][0].update(p50_ms=float("nan")),
            "p50_ms: expected number|null",
        ),
        (lambda r: r["models"][0]["latency"][0].update(delegate="tpu"), "'tpu' is not one of"),
        (lambda r: r["models"][0]["latency"].clear(), "latency is empty"),
        (
            lambda r: r["models"][0]["latency"][0].update(samples_ms=[1.0]),
            "1 samples_ms for 200 runs",
        ),
        (
            lambda r: r["models"][0]["memory"].pop("tensor_arena_bytes"),
            "missing field 'tensor_arena_bytes'",
        ),
        (lambda r: r["models"][0].update(role="baseline"), "roles ['baseline']"),
        (lambda r: r.update(ratios={}), "ratios must be present exactly when a baseline"),
        (lambda r: r["host"].update(emulated="no"), "emulated: expected bool"),
    ],
)
def test_each_departure_is_reported(change, expected):
    broken = _broken(change)
    problems = report_problems(broken)
    assert any(expected in p for p in problems), problems
    with pytest.raises(DataError, match="does not match schema"):
        validate_report(broken)


def test_not_an_object():
    assert report_problems([1, 2]) == ["report: expected an object, got list"]
