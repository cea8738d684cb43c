"""The benchmark report format shared by ``lean-kd bench`` and the device runners.

One report format serves the host (``lean-kd bench``), this runner (``python -m lean_kd_pi
bench``) and the Android driver (``export/android/android_bench.py``), so their results sit in
one table. This module is its single definition: lean_kd imports the tables below and checks
reports against them (``lean_kd.bench.schema.validate_report``); the Android driver, which runs
without this package, carries a copy of SCHEMA_NAME and SCHEMA_VERSION that a test compares.
Change the format only here and bump :data:`SCHEMA_VERSION`.

Report (top level)::

    schema            "lean_kd.bench"
    schema_version    1
    tool              who measured: "lean-kd bench", "lean_kd_pi bench", "android_bench"
    created_utc       ISO 8601 time of the run
    host              where it ran: machine ("x86_64", "aarch64"), system, cpu_count, python,
                      runtime ("ai_edge_litert 2.3.0", "tflite_runtime 2.14.0",
                      "benchmark_model"), emulated (true under qemu: latency is NOT a device
                      figure), device (adb model name or null), cpu_int8_features (the
                      CPU flags behind XNNPACK's int8 speed present on this CPU, e.g.
                      ["avx512_vnni", "avx2"] or ["asimddp"]; null when not read)
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
"""

from __future__ import annotations

from collections.abc import Mapping

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
    "cpu_int8_features": "array|null",  # INT8_CPU_FLAGS present (lean_kd_runtime.runtime); null: unknown
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


_LATENCY_KEYS = {
    "p50": "p50_ms",
    "p90": "p90_ms",
    "p99": "p99_ms",
    "mean": "mean_ms",
    "real_time_factor": "real_time_factor",
}


def _ratio(a: float | None, b: float | None) -> float | None:
    return float(a) / float(b) if a is not None and b else None


def ratios(model: Mapping, baseline: Mapping) -> dict:
    """The ``ratios`` object: model / baseline, per thread count for latency."""
    by_threads = {e["threads"]: e for e in baseline["latency"]}
    latency = []
    for entry in model["latency"]:
        other = by_threads.get(entry["threads"])
        if other is not None:
            row = {key: _ratio(entry[field], other[field]) for key, field in _LATENCY_KEYS.items()}
            latency.append({"threads": entry["threads"], **row})
    return {
        "baseline_path": baseline["path"],
        "file_size": _ratio(model["file_size_bytes"], baseline["file_size_bytes"]),
        "model_memory": _ratio(
            model["memory"]["model_delta_bytes"], baseline["memory"]["model_delta_bytes"]
        ),
        "macs": _ratio(model["macs_per_inference"], baseline["macs_per_inference"]),
        "latency": latency,
    }
