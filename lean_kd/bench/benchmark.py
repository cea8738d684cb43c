"""``run_benchmark``: latency, memory, size and MACs of a TFLite model, optionally vs a baseline.

The report is a plain dict in the format of :mod:`lean_kd.bench.schema` (validated before it is
returned), so that host and device runs can be compared and stored as JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import logging
import os
import platform
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lean_kd.bench import memory
from lean_kd.bench.graph import read_graph
from lean_kd.bench.latency import (
    TimingConfig,
    check_threads,
    latency_entry,
    load_model,
    time_interleaved,
)
from lean_kd.bench.macs import count_macs
from lean_kd.bench.metadata import read_audio_metadata
from lean_kd.bench.report import ratios
from lean_kd.bench.schema import SCHEMA_NAME, SCHEMA_VERSION, validate_report
from lean_kd.errors import ConfigError

logger = logging.getLogger(__name__)

TOOL = "lean-kd bench"


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to measure: thread counts, invoke counts, fallback sample rate, memory probe repeats."""

    threads: tuple[int, ...] = (1,)
    timing: TimingConfig = TimingConfig()
    sample_rate_hz: int = 16000  # used when the model has no AudioProperties metadata
    memory_repeats: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", check_threads(self.threads))
        if self.sample_rate_hz <= 0:
            raise ConfigError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz}")
        if self.memory_repeats < 1:
            raise ConfigError(f"memory_repeats must be >= 1, got {self.memory_repeats}")


def run_benchmark(
    model: str | Path, *, baseline: str | Path | None = None, config: BenchConfig = BenchConfig()
) -> dict:
    """Measure ``model`` (and ``baseline`` in the same run, interleaved); return the report dict."""
    paths = [Path(model)] + ([Path(baseline)] if baseline is not None else [])
    entries = [
        _static_entry(path, role, config) for path, role in zip(paths, ("model", "baseline"))
    ]
    for threads in config.threads:
        seconds = _time(entries, threads, config.timing)
        for entry, times in zip(entries, seconds):
            entry["latency"].append(
                latency_entry(times, threads=threads, audio_seconds=entry["audio_seconds"])
            )
    runtime_bytes = memory.runtime_peak_bytes(repeats=config.memory_repeats)
    for entry in entries:
        entry["memory"] = memory.model_memory(
            entry["path"],
            shape=tuple(entry["input_shape"]),
            threads=config.threads[0],
            runtime_bytes=runtime_bytes,
            repeats=config.memory_repeats,
        )
    report = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "tool": TOOL,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(),
        "settings": _settings(config, with_baseline=baseline is not None),
        "models": entries,
        "ratios": ratios(entries[0], entries[1]) if len(entries) == 2 else None,
    }
    validate_report(report)
    return report


def _static_entry(path: Path, role: str, config: BenchConfig) -> dict:
    """Everything about one model that does not need timing: size, input, rate, MACs."""
    graph = read_graph(path)  # ModelError for a missing or non-TFLite file
    metadata = read_audio_metadata(path)
    rate, source = (
        (metadata["sample_rate_hz"], "metadata")
        if metadata["sample_rate_hz"]
        else (config.sample_rate_hz, "option")
    )
    probe = load_model(path, threads=1, sample_rate_hz=rate)  # checks the waveform input
    macs = count_macs(graph.ops)
    if graph.subgraph_count > 1:
        logger.warning(
            "%s: %d subgraphs; MACs count the main subgraph only", path, graph.subgraph_count
        )
    return {
        "role": role,
        "path": str(path),
        "file_size_bytes": path.stat().st_size,
        "input_shape": list(probe.input_shape),
        "input_dtype": "float32",
        "sample_rate_hz": int(rate),
        "sample_rate_source": source,
        "audio_seconds": probe.input_shape[-1] / rate,
        "macs_per_inference": macs.total,
        "macs_by_op": macs.by_op,
        "uncounted_ops": list(macs.uncounted),
        "memory": {},
        "latency": [],
    }


def _time(entries: list[dict], threads: int, timing: TimingConfig) -> list[np.ndarray]:
    """Per-invoke seconds of each model at ``threads`` threads, interleaved, with a progress bar."""
    loaded = [
        load_model(e["path"], threads=threads, sample_rate_hz=e["sample_rate_hz"]) for e in entries
    ]
    total = timing.runs * len(loaded)
    with tqdm(total=total, desc=f"{threads} thread(s)", unit="invoke", leave=False) as bar:
        return time_interleaved(
            loaded,
            runs=timing.runs,
            warmup_runs=timing.warmup_runs,
            block_runs=timing.block_runs,
            seed=timing.seed,
            progress=bar.update,
        )


def _settings(config: BenchConfig, *, with_baseline: bool) -> dict:
    return {
        "runs": config.timing.runs,
        "warmup_runs": config.timing.warmup_runs,
        "block_runs": config.timing.block_runs if with_baseline else None,
        "threads": list(config.threads),
        "input_seed": config.timing.seed,
    }


def host_info() -> dict:
    """The ``host`` object: this machine and the runtime's version (never emulated here)."""
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "runtime": f"ai_edge_litert {importlib.metadata.version('ai-edge-litert')}",
        "emulated": False,
        "device": None,
    }
