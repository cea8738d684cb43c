"""Training runs of a benchmark in parallel worker processes.

One TensorFlow training on this kind of machine keeps about 1.45 of 2 cores busy (LSTM steps
are sequential); two runs side by side keep both busy. Each run gets a fresh process (spawned,
one task per child), so no TensorFlow state or memory carries from one run to the next.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


def map_in_processes(
    work: Callable[..., Any], calls: Sequence[tuple], jobs: int, *, announce: Sequence[str] = ()
) -> list[Any]:
    """``work(*call)`` for every call, ``jobs`` at a time, results in the order of ``calls``.

    ``work`` must be a module-level function (it is pickled by name); ``announce`` holds one
    line per call, printed as the call is queued. The first failure is raised here."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=context, max_tasks_per_child=1
    ) as pool:
        futures = []
        for index, call in enumerate(calls):
            if index < len(announce):
                print(announce[index], flush=True)
            futures.append(pool.submit(work, *call))
        return [future.result() for future in futures]
