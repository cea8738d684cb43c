"""Ratios against the baseline, the Markdown table, and writing a report to disk."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from lean_kd.bench.schema import validate_report

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
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
    """The ``ratios`` object of the schema: model / baseline, per thread count for latency."""
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


def _num(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value / scale:.{digits}f}"


def to_markdown(report: Mapping) -> str:
    """One row per model and thread count, then the ratio rows; notes on how it was measured."""
    host = report["host"]
    lines = [
        f"Benchmark by `{report['tool']}` on {host['machine']} ({host['system']}, "
        f"{host['cpu_count']} CPUs, {host['runtime']}), {report['created_utc']}; "
        f"{report['settings']['runs']} timed invokes per model and thread count.",
        "",
        "| model | threads | p50 ms | p90 ms | p99 ms | RTF (p50) | size MiB | memory MiB | MMACs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model in report["models"]:
        name = f"{Path(model['path']).name} ({model['role']})"
        for e in model["latency"]:
            lines.append(
                f"| {name} | {e['threads']} | {_num(e['p50_ms'])} | {_num(e['p90_ms'])} | "
                f"{_num(e['p99_ms'])} | {_num(e['real_time_factor'], digits=4)} | "
                f"{_num(model['file_size_bytes'], MIB)} | "
                f"{_num(model['memory']['model_delta_bytes'], MIB)} | "
                f"{_num(model['macs_per_inference'], 1e6, 1)} |"
            )
    lines += _ratio_rows(report.get("ratios"))
    lines += [
        "",
        f"Memory: {report['models'][0]['memory']['method']}. Tensor arena: not exposed by the runtime.",
    ]
    if host["emulated"]:
        lines.append("**Emulated run (qemu): latency is not a device figure.**")
    return "\n".join(lines) + "\n"


def _ratio_rows(r: Mapping | None) -> list[str]:
    if not r:
        return []
    return [
        f"| ratio model / {Path(r['baseline_path']).name} | {e['threads']} | {_num(e['p50'])} | "
        f"{_num(e['p90'])} | {_num(e['p99'])} | {_num(e['real_time_factor'])} | "
        f"{_num(r['file_size'])} | {_num(r['model_memory'])} | {_num(r['macs'])} |"
        for e in r["latency"]
    ]


def write_report(
    report: Mapping, *, json_path: Path | None = None, markdown_path: Path | None = None
) -> None:
    """Validate, then write the JSON and/or Markdown files (parent folders created)."""
    validate_report(report)
    if json_path is not None:
        _write(Path(json_path), json.dumps(report, indent=2) + "\n")
    if markdown_path is not None:
        _write(Path(markdown_path), to_markdown(report))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    logger.info("Wrote %s", path)
