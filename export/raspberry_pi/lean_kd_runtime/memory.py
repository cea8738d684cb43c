"""Peak resident memory of running a model, measured in fresh subprocesses.

The process that benchmarks may have large libraries loaded (``lean-kd bench`` has TensorFlow,
hundreds of MB) and a warm allocator, so its own numbers say nothing about a device. Instead
two fresh interpreters run ``memory_probe.py`` (numpy + the TFLite runtime only): one imports
the runtime and stops, the other also loads the model, allocates it and invokes it a few
times. Each reports its peak resident set size (VmHWM on Linux, where ``ru_maxrss`` would carry
the parent's peak over fork + exec; ``ru_maxrss`` elsewhere); the difference is what the model
adds (its mapped file pages, the tensor arena, XNNPACK's packed weights and scratch). It is
approximate: page granularity and the allocator's caching move it by tens of kB, so each probe
runs ``repeats`` times and the median is kept. Neither runtime has a Python API for the arena
size, so ``tensor_arena_bytes`` is null. ``lean-kd bench`` uses this module too.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path

from .errors import ModelError

logger = logging.getLogger(__name__)

PROBE = Path(__file__).with_name("memory_probe.py")
METHOD = (
    "peak RSS (VmHWM / ru_maxrss) of a fresh python process that imports numpy and the TFLite "
    "runtime, loads the model, allocates and invokes it, minus the same for a process that only "
    "imports them (median of {repeats}; approximate)"
)
PROBE_INVOKES = 5
_TIMEOUT_SECONDS = 300


def _probe(args: list[str]) -> int:
    """Run the probe once; its peak RSS in bytes."""
    command = [sys.executable, "-I", str(PROBE), *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"memory probe timed out after {_TIMEOUT_SECONDS} s: {' '.join(command)}"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"memory probe failed for {args[1:2] or 'the runtime'}: {last}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["tensorflow_loaded"]:
        raise ModelError(
            "memory probe imported TensorFlow; its figure would include TensorFlow's memory"
        )
    return int(result["peak_rss_bytes"])


def runtime_peak_bytes(*, repeats: int = 3, engine: str = "interpreter") -> int:
    """Median peak RSS of a process that only imports numpy and ``engine``'s TFLite runtime."""
    return int(statistics.median(_probe([engine]) for _ in range(repeats)))


def model_memory(
    path: str | Path,
    *,
    shape: tuple[int, ...],
    threads: int,
    runtime_bytes: int,
    repeats: int = 3,
    engine: str = "interpreter",
) -> dict:
    """The ``memory`` object of the report schema for one model run on ``engine``."""
    args = [engine, str(path), str(threads), str(PROBE_INVOKES)]
    args.append(",".join(str(d) for d in shape))
    peak = int(statistics.median(_probe(args) for _ in range(repeats)))
    logger.debug("%s: peak RSS %d bytes, runtime only %d bytes", path, peak, runtime_bytes)
    return {
        "method": METHOD.format(repeats=repeats) + f"; {engine} engine, {threads} thread(s)",
        "peak_rss_bytes": peak,
        "runtime_only_peak_rss_bytes": runtime_bytes,
        "model_delta_bytes": peak - runtime_bytes,
        "init_delta_bytes": None,
        "tensor_arena_bytes": None,
    }
