"""The Markdown table of a benchmark report, and writing a report to disk.

Tables are built with :mod:`lean_kd.reporting.markdown`, like every table lean_kd writes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from lean_kd.bench.schema import validate_report
from lean_kd.files import write_atomic
from lean_kd.reporting.markdown import MIB, format_number, markdown_table

logger = logging.getLogger(__name__)

_HEADER = (
    "model",
    "threads",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "RTF (p50)",
    "size MiB",
    "memory MiB",
    "MMACs",
)


def to_markdown(report: Mapping) -> str:
    """One row per model and thread count, then the ratio rows; notes on how it was measured."""
    host = report["host"]
    rows = [
        [
            f"{Path(model['path']).name} ({model['role']})",
            e["threads"],
            format_number(e["p50_ms"]),
            format_number(e["p90_ms"]),
            format_number(e["p99_ms"]),
            format_number(e["real_time_factor"], digits=4),
            format_number(model["file_size_bytes"], MIB),
            format_number(model["memory"]["model_delta_bytes"], MIB),
            format_number(model["macs_per_inference"], 1e6, 1),
        ]
        for model in report["models"]
        for e in model["latency"]
    ]
    lines = [
        (
            f"Benchmark by `{report['tool']}` on {host['machine']} ({host['system']}, "
            f"{host['cpu_count']} CPUs, int8 features: {_features(host)}, {host['runtime']}), "
            f"{report['created_utc']}; "
            f"{report['settings']['runs']} timed invokes per model and thread count."
        ),
        "",
        *markdown_table(_HEADER, rows + _ratio_rows(report.get("ratios")), align="lrrrrrrrr"),
        "",
        f"Memory: {report['models'][0]['memory']['method']}. Tensor arena: not exposed by the runtime.",
    ]
    if host["emulated"]:
        lines.append("**Emulated run (qemu): latency is not a device figure.**")
    return "\n".join(lines) + "\n"


def _features(host: Mapping) -> str:
    """The CPU's int8 features, "none" for an empty list, "unknown" when not read."""
    features = host.get("cpu_int8_features")
    return "unknown" if features is None else (" ".join(features) or "none")


def _ratio_rows(r: Mapping | None) -> list[list[object]]:
    if not r:
        return []
    name = f"ratio model / {Path(r['baseline_path']).name}"
    return [
        [name, e["threads"]]
        + [format_number(e[key]) for key in ("p50", "p90", "p99", "real_time_factor")]
        + [format_number(r[key]) for key in ("file_size", "model_memory", "macs")]
        for e in r["latency"]
    ]


def write_bench_report(
    report: Mapping, *, json_path: Path | None = None, markdown_path: Path | None = None
) -> None:
    """Validate, then write the JSON and/or Markdown files (parent folders created)."""
    validate_report(report)
    if json_path is not None:
        write_text(Path(json_path), json.dumps(report, indent=2) + "\n")
    if markdown_path is not None:
        write_text(Path(markdown_path), to_markdown(report))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` (parents created), then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    logger.info("Wrote %s", path)
