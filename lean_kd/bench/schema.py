"""Checks a benchmark report against its format (``lean_kd_runtime.schema``).

The format is defined and documented in one place, :mod:`lean_kd_runtime.schema` (the Raspberry Pi
runner, shipped with lean_kd and importable without TensorFlow), so that ``lean-kd bench``, the
Pi runner and the Android driver write the same report. :func:`validate_report` checks a report
against its tables and the invariants (p50 <= p90 <= p99, positive sizes and times, ratios
present exactly when a baseline is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lean_kd.errors import DataError
from lean_kd_runtime.schema import (
    DELEGATES,
    HOST_FIELDS,
    LATENCY_FIELDS,
    MEMORY_FIELDS,
    MODEL_FIELDS,
    RATIO_FIELDS,
    RATIO_LATENCY_FIELDS,
    REPORT_FIELDS,
    RTF_BASES,
    SAMPLE_RATE_SOURCES,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SETTINGS_FIELDS,
)

_TYPES = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: (
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ),
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
