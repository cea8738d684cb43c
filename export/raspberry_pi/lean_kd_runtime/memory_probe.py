"""Peak memory of a fresh Python process running a TFLite model; prints one JSON line.

``python -I memory_probe.py ENGINE`` measures the peak resident memory of a process that
imported numpy and the TFLite runtime of ENGINE ("interpreter" or "compiled") only;
``python -I memory_probe.py ENGINE MODEL THREADS RUNS SHAPE`` also loads MODEL on that engine,
allocates it and invokes it RUNS times. It never imports TensorFlow or lean_kd (so their
memory does not count) and reports whether TensorFlow got loaded anyway. It runs as a script
(``python -I``); of its package it imports the engines module only (numpy and the runtime).
"""

import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lean_kd_runtime.engines import open_engine, runtime_class  # noqa: E402


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes.

    Linux: VmHWM from /proc/self/status. ``ru_maxrss`` is not used there because the kernel
    carries it over from the parent across fork + exec, so a child of a large process would
    report the parent's size. Elsewhere: ru_maxrss (KiB on Linux-likes, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def run_model(engine: str, path: str, threads: int, runs: int, shape: list[int]) -> None:
    import numpy as np

    loaded = open_engine(Path(path), threads=threads, engine=engine)
    loaded.resize(tuple(shape))
    loaded.write(test_signal(np, shape))
    for _ in range(runs):
        loaded.invoke()


def test_signal(np: object, shape: list[int]) -> object:
    """A deterministic float32 input in [-0.5, 0.5] made by plain arithmetic.

    Not ``numpy.random``: its first use maps ~7 MB of the extension's pages, which the
    runtime-only baseline does not, and would be counted as the model's memory.
    """
    size = 1
    for dim in shape:
        size *= dim
    return (0.5 * np.sin(np.arange(size, dtype=np.float32) * 0.05)).reshape(shape)


def main(argv: list[str]) -> None:
    import numpy  # noqa: F401  (the runtime-only baseline imports what a model run imports)

    engine, *model = argv
    runtime_class(engine)
    if model:
        path, threads, runs, shape = model
        run_model(engine, path, int(threads), int(runs), [int(d) for d in shape.split(",")])
    print(
        json.dumps(
            {"peak_rss_bytes": peak_rss_bytes(), "tensorflow_loaded": "tensorflow" in sys.modules}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
