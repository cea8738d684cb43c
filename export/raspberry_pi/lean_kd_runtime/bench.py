"""``bench``: latency, memory and size, in lean_kd's report format; ``lean-kd bench`` runs it too.

:func:`measure_models` is the one measurement behind both commands. The runner cannot count MACs
(that needs the TFLite schema module, which tflite-runtime does not ship), so its reports leave
them null; ``lean-kd bench`` counts them on the host and passes them in (``macs``). MACs are the
same on every device, so take them from ``lean-kd bench``.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from . import memory
from .runtime import host_info
from .schema import SCHEMA_NAME, SCHEMA_VERSION, ratios
from .tflite_metadata import model_audio_facts
from .timing import check_threads, latency_entry, load_model, time_interleaved

TOOL = "lean_kd_pi bench"
NOT_MEASURED = "not measured (--no-memory)"
NO_MACS = {"macs_per_inference": None, "macs_by_op": None, "uncounted_ops": None}


def measure_models(
    models: Sequence[Path],
    *,
    threads: Sequence[int],
    runs: int,
    warmup_runs: int,
    block_runs: int,
    sample_rate: int,
    memory_repeats: int,
    emulated: bool = False,
    seed: int = 0,
    engine: str = "interpreter",
    tool: str = TOOL,
    macs: Sequence[Mapping] | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Report dict for ``models`` ([model] or [model, baseline]); memory_repeats 0 skips memory.

    ``macs``: per model, the MAC fields of the schema (default: null); ``progress`` is called
    with the number of invokes after each timed block (default: a dot on stderr). ``engine``
    runs every model (:mod:`.engines`); the report's ``host.runtime`` names it.
    """
    threads = check_threads(threads)
    entries = [
        _entry(Path(path), role, sample_rate, macs=counted, engine=engine)
        for path, role, counted in zip(models, ("model", "baseline"), macs or (NO_MACS, NO_MACS))
    ]
    timing = {"runs": runs, "warmup_runs": warmup_runs, "block_runs": block_runs, "seed": seed}
    for count in threads:
        _time(entries, threads=count, engine=engine, progress=progress or _dot, **timing)
    _add_memory(entries, threads=threads[0], repeats=memory_repeats, engine=engine)
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "tool": tool,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": host_info(emulated=emulated, engine=engine),
        "settings": {
            "runs": runs,
            "warmup_runs": warmup_runs,
            "block_runs": block_runs if len(entries) > 1 else None,
            "threads": list(threads),
            "input_seed": seed,
        },
        "models": entries,
        "ratios": ratios(entries[0], entries[1]) if len(entries) > 1 else None,
    }


def _time(
    entries: list[dict],
    *,
    threads: int,
    engine: str,
    progress: Callable[[int], object],
    **timing,
) -> None:
    """Append a latency entry at ``threads`` threads to every entry, the models interleaved."""
    loaded = [
        load_model(e["path"], threads=threads, sample_rate_hz=e["sample_rate_hz"], engine=engine)
        for e in entries
    ]
    seconds = time_interleaved(loaded, progress=progress, **timing)
    for entry, times in zip(entries, seconds):
        entry["latency"].append(
            latency_entry(times, threads=threads, audio_seconds=entry["audio_seconds"])
        )


def _dot(invokes: int) -> None:
    print(".", end="", file=sys.stderr, flush=True)


def _entry(path: Path, role: str, default_rate: int, *, macs: Mapping, engine: str) -> dict:
    """Everything about one model that does not need timing."""
    rate, source, _ = model_audio_facts(path, default_rate=default_rate)
    # missing, not a waveform model, or not loadable on the engine: ModelError
    loaded = load_model(path, threads=1, sample_rate_hz=rate, engine=engine)
    return {
        "role": role,
        "path": str(path),
        "file_size_bytes": path.stat().st_size,
        "input_shape": list(loaded.input_shape),
        "input_dtype": "float32",
        "sample_rate_hz": int(rate),
        "sample_rate_source": source,
        "audio_seconds": loaded.input_shape[-1] / rate,
        **macs,
        "memory": {},
        "latency": [],
    }


def _add_memory(entries: list[dict], *, threads: int, repeats: int, engine: str) -> None:
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
    runtime_bytes = memory.runtime_peak_bytes(repeats=repeats, engine=engine)
    for entry in entries:
        entry["memory"] = memory.model_memory(
            entry["path"],
            shape=tuple(entry["input_shape"]),
            threads=threads,
            runtime_bytes=runtime_bytes,
            repeats=repeats,
            engine=engine,
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
