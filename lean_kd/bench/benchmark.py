"""``run_benchmark``: latency, memory, size and MACs of a TFLite model, optionally vs a baseline.

The measurement is the Raspberry Pi runner's (``lean_kd_runtime.bench.measure_models``: explicit thread
counts, warm-up, timed invokes interleaved with the baseline in blocks, memory from fresh
subprocesses), so host and device figures mean the same; this module adds what needs the
host's libraries (MACs from the TFLite schema module, a progress bar) and validates the report against :mod:`lean_kd.bench.schema` before returning it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from tqdm import tqdm

from lean_kd.bench.macs import tflite_macs
from lean_kd.bench.schema import validate_report
from lean_kd.errors import ConfigError
from lean_kd_runtime import bench as runner_bench
from lean_kd_runtime import timing as runner_timing
from lean_kd_runtime.engines import check_engine
from lean_kd_runtime.tflite_graph import read_graph

logger = logging.getLogger(__name__)

TOOL = "lean-kd bench"
check_threads = runner_timing.check_threads


@dataclasses.dataclass(frozen=True)
class TimingConfig:
    """How many invokes: warm-up, timed (per model and thread count), per interleaved block."""

    runs: int = 200
    warmup_runs: int = 10
    block_runs: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("runs", "block_runs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_runs < 0:
            raise ConfigError(f"warmup_runs must be >= 0, got {self.warmup_runs}")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to measure: thread counts, invoke counts, fallback sample rate, memory probe repeats,
    and the engine that runs the models (``lean_kd_runtime.engines``)."""

    threads: tuple[int, ...] = (1,)
    timing: TimingConfig = TimingConfig()
    sample_rate_hz: int = 16000  # used when the model has no AudioProperties metadata
    memory_repeats: int = 3
    engine: str = "interpreter"

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", check_threads(self.threads))
        check_engine(self.engine)
        if self.sample_rate_hz <= 0:
            raise ConfigError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz}")
        if self.memory_repeats < 1:
            raise ConfigError(f"memory_repeats must be >= 1, got {self.memory_repeats}")


def run_benchmark(
    model: str | Path, *, baseline: str | Path | None = None, config: BenchConfig = BenchConfig()
) -> dict:
    """Measure ``model`` (and ``baseline`` in the same run, interleaved); return the report dict."""
    paths = [Path(model)] + ([Path(baseline)] if baseline is not None else [])
    macs = [mac_fields(path) for path in paths]  # ModelError for a missing or non-TFLite file
    timing = config.timing
    with _progress_bar(timing.runs * len(paths) * len(config.threads)) as update:
        report = runner_bench.measure_models(
            paths,
            threads=config.threads,
            runs=timing.runs,
            warmup_runs=timing.warmup_runs,
            block_runs=timing.block_runs,
            seed=timing.seed,
            sample_rate=config.sample_rate_hz,
            memory_repeats=config.memory_repeats,
            engine=config.engine,
            tool=TOOL,
            macs=macs,
            progress=update,
        )
    validate_report(report)
    return report


@contextlib.contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], object]]:
    """``update(invokes)`` of a bar that opens at the first timed block and closes at the end.

    Opening it lazily keeps the one-line error of a bad model (found before timing) alone.
    """
    bars: list[tqdm] = []

    def update(invokes: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="timed invokes", unit="invoke", leave=False))
        bars[0].update(invokes)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def mac_fields(path: Path) -> dict:
    """The MAC fields of a model entry (macs_per_inference, macs_by_op, uncounted_ops)."""
    graph = read_graph(path)
    macs = tflite_macs(graph.ops)
    if graph.subgraph_count > 1:
        logger.warning(
            "%s: %d subgraphs; MACs count the main subgraph only", path, graph.subgraph_count
        )
    return {
        "macs_per_inference": macs.total,
        "macs_by_op": macs.by_op,
        "uncounted_ops": list(macs.uncounted),
    }
