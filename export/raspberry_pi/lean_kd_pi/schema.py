"""The benchmark report format: constants copied verbatim from lean_kd/bench/schema.py.

The format is documented there (module docstring) and validated by lean_kd's
``validate_report``; tests/export/test_raspberry_pi.py asserts these values equal lean_kd's.
Do not edit here: change lean_kd/bench/schema.py, then copy.
"""

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
