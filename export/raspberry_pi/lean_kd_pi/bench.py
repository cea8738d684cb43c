"""``bench``: latency, memory and size on the device, in lean_kd's report format.

The same measurement as ``lean-kd bench`` (shared code in timing.py and memory.py), minus the
MAC count, which needs the TFLite schema module that tflite-runtime does not ship: MACs are
the same on every device, so take them from ``lean-kd bench`` on the host.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from . import memory
from .runtime import host_info
from .schema import SCHEMA_NAME, SCHEMA_VERSION
from .timing import check_threads, latency_entry, load_model, ratios, time_interleaved
from .tflite_metadata import model_audio_facts

TOOL = "lean_kd_pi bench"
NOT_MEASURED = "not measured (--no-memory)"


def run_bench(
    models: list[Path],
    *,
    threads: list[int],
    runs: int,
    warmup_runs: int,
    block_runs: int,
    sample_rate: int,
    memory_repeats: int,
    emulated: bool,
) -> dict:
    """Report dict for ``models`` ([model] or [model, baseline]); memory_repeats 0 skips memory."""
    threads = check_threads(threads)
    entries = [_entry(path, role, sample_rate) for path, role in zip(models, ("model", "baseline"))]
    for count in threads:
        loaded = [
            load_model(e["path"], threads=count, sample_rate_hz=e["sample_rate_hz"])
            for e in entries
        ]
        seconds = time_interleaved(
            loaded, runs=runs, warmup_runs=warmup_runs, block_runs=block_runs, seed=0, progress=_dot
        )
        print(file=sys.stderr)
        for entry, times in zip(entries, seconds):
            entry["latency"].append(
                latency_entry(times, threads=count, audio_seconds=entry["audio_seconds"])
            )
    _add_memory(entries, threads=threads[0], repeats=memory_repeats)
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "tool": TOOL,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(emulated=emulated),
        "settings": {
            "runs": runs,
            "warmup_runs": warmup_runs,
            "block_runs": block_runs if len(entries) > 1 else None,
            "threads": list(threads),
            "input_seed": 0,
        },
        "models": entries,
        "ratios": ratios(entries[0], entries[1]) if len(entries) > 1 else None,
    }


def _dot(invokes: int) -> None:
    print(".", end="", file=sys.stderr, flush=True)


def _entry(path: Path, role: str, default_rate: int) -> dict:
    rate, source, _ = model_audio_facts(path, default_rate=default_rate)
    loaded = load_model(path, threads=1, sample_rate_hz=rate)  # missing / non-waveform: ModelError
    return {
        "role": role,
        "path": str(path),
        "file_size_bytes": path.stat().st_size,
        "input_shape": list(loaded.input_shape),
        "input_dtype": "float32",
        "sample_rate_hz": int(rate),
        "sample_rate_source": source,
        "audio_seconds": loaded.input_shape[-1] / rate,
        "macs_per_inference": None,
        "macs_by_op": None,
        "uncounted_ops": None,
        "memory": {},
        "latency": [],
    }


def _add_memory(entries: list[dict], *, threads: int, repeats: int) -> None:
    if repeats < 1:
        blank = dict.fromkeys(
            ("peak_rss_bytes", "runtime_only_peak_rss_bytes", "model_delta_bytes")
        )
        for entry in entries:
            entry["memory"] = {
                "method": NOT_MEASURED,
                **blank,
                "init_delta_bytes": None,
                "tensor_arena_bytes": None,
            }
        return
    runtime_bytes = memory.runtime_peak_bytes(repeats=repeats)
    for entry in entries:
        entry["memory"] = memory.model_memory(
            entry["path"],
            shape=tuple(entry["input_shape"]),
            threads=threads,
            runtime_bytes=runtime_bytes,
            repeats=repeats,
        )


def summary_lines(report: dict) -> list[str]:
    """A short human-readable summary (the JSON holds everything)."""
    lines = []
    for model in report["models"]:
        delta = model["memory"]["model_delta_bytes"]
        memory_text = "n/a" if delta is None else f"{delta / 2**20:.1f} MiB"
        for e in model["latency"]:
            lines.append(
                f"{Path(model['path']).name} ({model['role']}), {e['threads']} thread(s): "
                f"p50 {e['p50_ms']:.2f} ms, p90 {e['p90_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms, "
                f"RTF {e['real_time_factor']:.4f}; size {model['file_size_bytes'] / 2**20:.2f} MiB, "
                f"memory {memory_text}"
            )
    for r in (report["ratios"] or {}).get("latency", []):
        lines.append(
            f"ratio model / baseline, {r['threads']} thread(s): p50 x{r['p50']:.2f}, p99 x{r['p99']:.2f}"
        )
    if report["host"]["emulated"]:
        lines.append("EMULATED (qemu): these latencies are not device figures.")
    return lines
