"""Peak memory of a fresh Python process running a TFLite model; prints one JSON line.

``python -I memory_probe.py`` measures the peak resident memory of a process that imported
numpy and the TFLite runtime only; ``python -I memory_probe.py MODEL THREADS RUNS SHAPE`` also
loads MODEL, allocates it and invokes it RUNS times. It never imports TensorFlow or lean_kd
(so their memory does not count) and reports whether TensorFlow got loaded anyway. It runs
as a script (``python -I``), not as part of the package, so it imports nothing from it.
"""

import json
import resource
import sys


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


def import_runtime() -> type:
    """The Interpreter class of ai-edge-litert, or of tflite-runtime where that is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


def run_model(path: str, threads: int, runs: int, shape: list[int]) -> None:
    import numpy as np

    Interpreter = import_runtime()
    interpreter = Interpreter(model_path=path, num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, shape, strict=False)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, test_signal(np, shape))
    for _ in range(runs):
        interpreter.invoke()


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

    import_runtime()
    if argv:
        path, threads, runs, shape = argv
        run_model(path, int(threads), int(runs), [int(d) for d in shape.split(",")])
    print(
        json.dumps(
            {"peak_rss_bytes": peak_rss_bytes(), "tensorflow_loaded": "tensorflow" in sys.modules}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
