"""Invoke latency of TFLite models, interleaved when comparing models; ``lean-kd bench`` uses it too.

Each model gets its own engine (the classic Interpreter, or LiteRT's CompiledModel with XNNPACK's
weight cache: :mod:`.engines`) with an explicit ``num_threads`` (the runtime's default is
1 thread with XNNPACK; passing it makes the figure reproducible). After the warm-up invokes,
the timed invokes run in blocks that alternate between the models (model, baseline, model,
...), so a slow-down of the machine (thermal throttling, another process) hits both alike and
their ratio stays fair. Times are wall-clock ``perf_counter_ns`` around ``invoke()`` only; the
input is written once before the timed loop. lean_kd imports this module rather than keeping
its own, so host and device measure alike.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .engines import Engine, open_engine
from .errors import ConfigError, ModelError


@dataclasses.dataclass
class LoadedModel:
    """An allocated engine and its waveform input (mutable: the engine is stateful)."""

    path: Path
    engine: Engine
    input_shape: tuple[int, ...]
    threads: int

    def feed(self, seed: int) -> None:
        """Write a reproducible noise waveform in [-0.5, 0.5] to the input."""
        wave = np.random.default_rng(seed).uniform(-0.5, 0.5, self.input_shape).astype(np.float32)
        self.engine.write(wave)

    def invoke_ns(self) -> int:
        start = time.perf_counter_ns()
        self.engine.invoke()
        return time.perf_counter_ns() - start


def check_threads(threads: Sequence[int]) -> tuple[int, ...]:
    """Thread counts as a tuple; ConfigError for an empty list or a count below 1."""
    if not threads:
        raise ConfigError("threads: expected at least one thread count, got none")
    bad = [t for t in threads if int(t) < 1]
    if bad:
        raise ConfigError(f"threads must be >= 1, got {bad[0]}")
    return tuple(int(t) for t in threads)


def waveform_shape(details: dict, *, path: Path, sample_rate_hz: int) -> tuple[int, ...]:
    """The concrete input shape of a waveform model: ``[1, N]`` or ``[N]`` float32.

    A dynamic sample count (-1 in the signature) becomes one second at ``sample_rate_hz``.
    Raises ModelError for any other input (int8, a log-mel patch, several channels).
    """
    signature = [int(d) for d in details.get("shape_signature", details["shape"])]
    dtype = np.dtype(details["dtype"])
    is_wave = len(signature) == 1 or (len(signature) == 2 and signature[0] in (1, -1))
    if dtype != np.float32 or not is_wave:
        raise ModelError(
            f"{path}: expected a float32 waveform input of shape [1, N] or [N], "
            f"got {dtype.name} {signature}"
        )
    samples = signature[-1] if signature[-1] > 0 else sample_rate_hz
    return (samples,) if len(signature) == 1 else (1, samples)


def load_model(
    path: str | Path, *, threads: int, sample_rate_hz: int, engine: str = "interpreter"
) -> LoadedModel:
    """``path`` allocated on ``engine`` with ``threads`` threads; the waveform input checked."""
    path = Path(path)
    loaded = open_engine(path, threads=threads, engine=engine)
    shape = waveform_shape(loaded.input, path=path, sample_rate_hz=sample_rate_hz)
    loaded.resize(shape)
    return LoadedModel(path, loaded, shape, threads)


def time_interleaved(
    models: Sequence[LoadedModel],
    *,
    runs: int,
    warmup_runs: int,
    block_runs: int,
    seed: int,
    progress: Callable[[int], object] | None = None,
) -> list[np.ndarray]:
    """Seconds per timed invoke for each model, measured in alternating blocks of ``block_runs``."""
    for model in models:
        model.feed(seed)
        for _ in range(warmup_runs):
            model.engine.invoke()
    times: list[list[int]] = [[] for _ in models]
    while len(times[0]) < runs:
        block = min(block_runs, runs - len(times[0]))
        for model, record in zip(models, times):
            record.extend(model.invoke_ns() for _ in range(block))
            if progress is not None:
                progress(block)
    return [np.asarray(t, dtype=np.float64) / 1e9 for t in times]


def latency_entry(seconds: np.ndarray, *, threads: int, audio_seconds: float | None) -> dict:
    """A latency entry of the report schema from per-invoke times in seconds."""
    ms = seconds * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    rtf = p50 / 1e3 / audio_seconds if audio_seconds else None
    return {
        "threads": threads,
        "delegate": "xnnpack",
        "runs": int(ms.size),
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "std_ms": float(ms.std()),
        "init_ms": None,
        "first_inference_ms": None,
        "warmup_mean_ms": None,
        "real_time_factor": rtf,
        "real_time_factor_basis": "p50" if rtf is not None else None,
        "samples_ms": [round(float(v), 4) for v in ms],
    }
