"""The JSON schema of a benchmark report, shared by ``lean-kd bench`` and the device runners.

One report format serves the host (``lean-kd bench``), the Raspberry Pi runner
(``python -m lean_kd_pi bench`` in ``export/raspberry_pi``) and the Android driver
(``export/android/android_bench.py``), so their results sit in one table. The device runners
cannot import lean_kd, so they carry a copy of the constants below; a test asserts that the
copies stay identical. Change the format only here, bump :data:`SCHEMA_VERSION`, and copy.

Report (top level)::

    schema            "lean_kd.bench"
    schema_version    1
    tool              who measured: "lean-kd bench", "lean_kd_pi bench", "android_bench"
    created_utc       ISO 8601 time of the run
    host              where it ran: machine ("x86_64", "aarch64"), system, cpu_count, python,
                      runtime ("ai_edge_litert 2.3.0", "tflite_runtime 2.14.0",
                      "benchmark_model"), emulated (true under qemu: latency is NOT a device
                      figure), device (adb model name or null)
    settings          runs (timed invokes per model and thread count), warmup_runs,
                      block_runs (invokes per block when model and baseline alternate; null
                      without a baseline), threads (list), input_seed (random input; null when
                      the tool makes its own input)
    models            one entry per model, the measured model first (role "model"), then the
                      baseline (role "baseline") when there is one
    ratios            model / baseline for every figure, or null without a baseline

Model entry::

    role                   "model" or "baseline"
    path                   the .tflite file as given
    file_size_bytes        size of the file
    input_shape            e.g. [1, 16000]; input_dtype "float32"
    sample_rate_hz         from the model's metadata (AudioProperties) when present, else the
                           --sample-rate option; sample_rate_source says which ("metadata",
                           "option")
    audio_seconds          input samples / sample_rate_hz: the audio one invoke consumes
    macs_per_inference     multiply-accumulates of one invoke, counted from the op list
                           (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL, LSTM,
                           RFFT2D ~N log N, ...); macs_by_op per op type; uncounted_ops lists
                           op types that were not counted (element-wise and data movement ops
                           are counted as 0 on purpose and not listed). null when not computed.
    memory                 see below
    latency                one entry per thread count, see below

Memory (bytes; figures a tool cannot measure are null)::

    method                      how it was measured (free text)
    peak_rss_bytes              peak resident set size of a fresh process that imported the
                                runtime, loaded the model and ran it (ru_maxrss)
    runtime_only_peak_rss_bytes the same for a process that only imported the runtime
    model_delta_bytes           peak_rss_bytes - runtime_only_peak_rss_bytes: what the model
                                adds (approximate: allocator and page granularity)
    init_delta_bytes            Android: memory delta after init (benchmark_model)
    tensor_arena_bytes          the interpreter's tensor arena; ai-edge-litert does not expose
                                it, so null

Latency entry (milliseconds per invoke, i.e. per input window)::

    threads, delegate ("xnnpack", "cpu", "gpu", "nnapi"), runs
    p50_ms, p90_ms, p99_ms      percentiles of the timed invokes (null where the tool gives none)
    mean_ms, min_ms, max_ms, std_ms
    init_ms, first_inference_ms, warmup_mean_ms    Android benchmark_model only, else null
    real_time_factor            latency / audio_seconds (< 1: faster than real time), from
                                p50_ms, or from mean_ms where percentiles are missing;
                                real_time_factor_basis says which ("p50", "mean")
    samples_ms                  every timed invoke in order (for CDF plots), or null

Ratios (model / baseline; < 1 means the model is smaller or faster)::

    baseline_path, file_size, model_memory (model_delta_bytes), macs,
    latency: [{threads, p50, p90, p99, mean, real_time_factor}]

:func:`validate_report` checks a report against these tables and the invariants
(p50 <= p90 <= p99, positive sizes and times, ratios present exactly when a baseline is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lean_kd.errors import DataError

# Copied into export/raspberry_pi/lean_kd_pi/schema.py and export/android/android_bench.py
# (tests compare the values): change them here, then copy.
SCHEMA_NAME = "lean_kd.bench"
SCHEMA_VERSION = 1
ROLES = ("model", "baseline")
DELEGATES = ("xnnpack", "cpu", "gpu", "nnapi")
SAMPLE_RATE_SOURCES = ("metadata", "option")
RTF_BASES = ("p50", "mean")
REPORT_FIELDS = {
    "schema": "str",
    "schema_version": "int",
    "tool": "str",
    "created_utc": "str",
    "host": "object",
    "settings": "object",
    "models": "array",
    "ratios": "object|null",
}
HOST_FIELDS = {
    "machine": "str",
    "system": "str",
    "cpu_count": "int|null",
    "python": "str|null",
    "runtime": "str",
    "emulated": "bool",
    "device": "str|null",
}
SETTINGS_FIELDS = {
    "runs": "int",
    "warmup_runs": "int",
    "block_runs": "int|null",
    "threads": "array",
    "input_seed": "int|null",
}
MODEL_FIELDS = {
    "role": "str",
    "path": "str",
    "file_size_bytes": "int",
    "input_shape": "array|null",
    "input_dtype": "str|null",
    "sample_rate_hz": "int|null",
    "sample_rate_source": "str|null",
    "audio_seconds": "number|null",
    "macs_per_inference": "int|null",
    "macs_by_op": "object|null",
    "uncounted_ops": "array|null",
    "memory": "object",
    "latency": "array",
}
MEMORY_FIELDS = {
    "method": "str",
    "peak_rss_bytes": "int|null",
    "runtime_only_peak_rss_bytes": "int|null",
    "model_delta_bytes": "int|null",
    "init_delta_bytes": "int|null",
    "tensor_arena_bytes": "int|null",
}
LATENCY_FIELDS = {
    "threads": "int",
    "delegate": "str",
    "runs": "int",
    "p50_ms": "number|null",
    "p90_ms": "number|null",
    "p99_ms": "number|null",
    "mean_ms": "number|null",
    "min_ms": "number|null",
    "max_ms": "number|null",
    "std_ms": "number|null",
    "init_ms": "number|null",
    "first_inference_ms": "number|null",
    "warmup_mean_ms": "number|null",
    "real_time_factor": "number|null",
    "real_time_factor_basis": "str|null",
    "samples_ms": "array|null",
}
RATIO_FIELDS = {
    "baseline_path": "str",
    "file_size": "number|null",
    "model_memory": "number|null",
    "macs": "number|null",
    "latency": "array",
}
RATIO_LATENCY_FIELDS = {
    "threads": "int",
    "p50": "number|null",
    "p90": "number|null",
    "p99": "number|null",
    "mean": "number|null",
    "real_time_factor": "number|null",
}

_TYPES = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float))
    and not isinstance(v, bool)
    and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def validate_report(report: Any) -> None:
    """Raise :class:`DataError` listing every way ``report`` departs from the schema."""
    problems = report_problems(report)
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 10 else ""
        )
        raise DataError(
            f"Benchmark report does not match schema {SCHEMA_NAME} v{SCHEMA_VERSION}: {shown}"
        )


def report_problems(report: Any) -> list[str]:
    """Every schema violation of ``report`` as a readable string (empty: valid)."""
    problems = _fields(report, REPORT_FIELDS, "report")
    if problems:
        return problems
    if report["schema"] != SCHEMA_NAME or report["schema_version"] != SCHEMA_VERSION:
        problems.append(
            f"schema is {report['schema']!r} v{report['schema_version']}, "
            f"expected {SCHEMA_NAME!r} v{SCHEMA_VERSION}"
        )
    problems += _fields(report["host"], HOST_FIELDS, "host")
    problems += _fields(report["settings"], SETTINGS_FIELDS, "settings")
    problems += _models_problems(report["models"])
    has_baseline = any(
        isinstance(m, Mapping) and m.get("role") == "baseline" for m in report["models"]
    )
    if has_baseline != (report["ratios"] is not None):
        problems.append("ratios must be present exactly when a baseline model is")
    elif report["ratios"] is not None:
        problems += _ratio_problems(report["ratios"])
    return problems


def _models_problems(models: list) -> list[str]:
    problems = []
    roles = [m.get("role") for m in models if isinstance(m, Mapping)]
    if roles not in (["model"], ["model", "baseline"]):
        problems.append(f"models must be [model] or [model, baseline], got roles {roles}")
    for i, model in enumerate(models):
        where = f"models[{i}]"
        found = _fields(model, MODEL_FIELDS, where)
        if found:
            problems += found
            continue
        problems += _fields(model["memory"], MEMORY_FIELDS, f"{where}.memory")
        problems += _positive(model, ("file_size_bytes", "sample_rate_hz", "audio_seconds"), where)
        problems += _choice(model, "sample_rate_source", SAMPLE_RATE_SOURCES, where)
        if not model["latency"]:
            problems.append(f"{where}.latency is empty")
        for j, entry in enumerate(model["latency"]):
            problems += _latency_problems(entry, f"{where}.latency[{j}]")
    return problems


def _latency_problems(entry: Any, where: str) -> list[str]:
    problems = _fields(entry, LATENCY_FIELDS, where)
    if problems:
        return problems
    problems += _positive(
        entry, ("threads", "runs", "p50_ms", "p90_ms", "p99_ms", "mean_ms"), where
    )
    problems += _choice(entry, "delegate", DELEGATES, where)
    problems += _choice(entry, "real_time_factor_basis", RTF_BASES, where)
    ordered = [
        entry[k] for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms") if entry[k] is not None
    ]
    if ordered != sorted(ordered):
        problems.append(f"{where}: expected min <= p50 <= p90 <= p99 <= max, got {ordered}")
    if entry["samples_ms"] is not None and len(entry["samples_ms"]) != entry["runs"]:
        problems.append(f"{where}: {len(entry['samples_ms'])} samples_ms for {entry['runs']} runs")
    return problems


def _ratio_problems(ratios: Any) -> list[str]:
    problems = _fields(ratios, RATIO_FIELDS, "ratios")
    if not problems:
        for j, entry in enumerate(ratios["latency"]):
            problems += _fields(entry, RATIO_LATENCY_FIELDS, f"ratios.latency[{j}]")
    return problems


def _fields(value: Any, table: Mapping[str, str], where: str) -> list[str]:
    """Missing, unknown and mistyped fields of one JSON object."""
    if not isinstance(value, Mapping):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    problems = [f"{where}: missing field {k!r}" for k in table if k not in value]
    problems += [f"{where}: unknown field {k!r}" for k in value if k not in table]
    for key, kinds in table.items():
        if key in value and not any(_TYPES[k](value[key]) for k in kinds.split("|")):
            problems.append(f"{where}.{key}: expected {kinds}, got {value[key]!r}")
    return problems


def _positive(value: Mapping, keys: tuple[str, ...], where: str) -> list[str]:
    return [
        f"{where}.{k}: expected > 0, got {value[k]}"
        for k in keys
        if value[k] is not None and value[k] <= 0
    ]


def _choice(value: Mapping, key: str, allowed: tuple[str, ...], where: str) -> list[str]:
    if value[key] is None or value[key] in allowed:
        return []
    return [f"{where}.{key}: {value[key]!r} is not one of {allowed}"]
