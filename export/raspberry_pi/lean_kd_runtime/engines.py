"""The two ways LiteRT runs a model on the CPU: the classic Interpreter and the CompiledModel.

Both hand the graph to XNNPACK; they differ in what XNNPACK may share. XNNPACK packs every
constant weight for the op that reads it, and only its weight cache lets ops that read one
tensor share one packed copy. The classic ``Interpreter`` (what tflite-runtime, MediaPipe
Tasks and most apps run) has no way to turn that cache on from Python; LiteRT's
``CompiledModel`` does (``CpuOptions.xnnpack_weight_cache_path``, in memory with
:data:`IN_MEMORY_WEIGHT_CACHE`). It matters for an unrolled LSTM, whose time steps all read
one recurrent kernel: LEAN unrolled holds ~19 MB of packed copies in the Interpreter and one
copy with the cache (benchmarks/results/latency_profile.md).

The CompiledModel refuses variable tensors, i.e. the fused LSTM op's state: such a model runs
on the Interpreter only (export it with ``--lstm unrolled`` for the CompiledModel).

Both engines are wrapped in one small interface (:class:`Engine`) so that timing, the memory
probe and the classifier treat them alike. The memory probe imports this module from its
script, so it imports nothing of the package but its errors.
"""

from __future__ import annotations

import abc
import importlib.metadata
from pathlib import Path

import numpy as np

from .errors import ConfigError, ModelError

ENGINES = ("interpreter", "compiled")
# The path the XNNPACK delegate reads as "keep the weight cache in memory" (no file).
IN_MEMORY_WEIGHT_CACHE = ":memory"


def import_engine(engine: str) -> tuple[type, str]:
    """The class that loads models for ``engine`` and the runtime's name with its version.

    Raises ConfigError for an unknown engine, ModelError when no installed runtime provides it.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "compiled":
        try:
            from ai_edge_litert.compiled_model import CompiledModel
        except ImportError:
            raise ModelError(
                "the compiled engine needs ai-edge-litert >= 2.0 (LiteRT's CompiledModel); "
                "pip install ai-edge-litert, or use the interpreter engine"
            ) from None
        return CompiledModel, _versioned("ai_edge_litert") + " CompiledModel, XNNPACK weight cache"
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, _versioned("ai_edge_litert")
    except ImportError:  # older boards: the tflite-runtime wheel
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError(
                "no TFLite runtime installed: pip install ai-edge-litert "
                "(or tflite-runtime); see requirements.txt"
            ) from None
        return Interpreter, _versioned("tflite_runtime")


def _versioned(package: str) -> str:
    try:
        return f"{package} {importlib.metadata.version(package.replace('_', '-'))}"
    except importlib.metadata.PackageNotFoundError:
        return package


class Engine(abc.ABC):
    """One loaded model: its single input, its outputs in order, write / invoke / read."""

    input: dict  # name, shape, shape_signature, dtype
    outputs: list[dict]  # name, shape, dtype; read(i) returns output i

    @abc.abstractmethod
    def resize(self, shape: tuple[int, ...]) -> None:
        """Give the input this shape and allocate (also when it already has it)."""

    @abc.abstractmethod
    def write(self, array: np.ndarray) -> None: ...

    @abc.abstractmethod
    def invoke(self) -> None: ...

    @abc.abstractmethod
    def read(self, position: int) -> np.ndarray: ...

    def reset(self) -> None:
        """Start the next invoke from a zero state (fused LSTM ops keep theirs otherwise)."""


class InterpreterEngine(Engine):
    def __init__(self, path: Path, *, threads: int) -> None:
        interpreter_class, _ = import_engine("interpreter")
        try:
            self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: the TFLite runtime cannot load it ({exc})") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one waveform input, got {len(inputs)} inputs")
        self.input = inputs[0]
        self.outputs = self.interpreter.get_output_details()

    def resize(self, shape: tuple[int, ...]) -> None:
        if tuple(self.input["shape"]) != tuple(shape):
            self.interpreter.resize_tensor_input(self.input["index"], list(shape), strict=False)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()

    def write(self, array: np.ndarray) -> None:
        self.interpreter.set_tensor(self.input["index"], array)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def read(self, position: int) -> np.ndarray:
        return self.interpreter.get_tensor(self.outputs[position]["index"])

    def reset(self) -> None:
        self.interpreter.reset_all_variables()


class CompiledEngine(Engine):
    """The first signature of a LiteRT CompiledModel, XNNPACK's weight cache in memory."""

    def __init__(self, path: Path, *, threads: int) -> None:
        compiled_class, _ = import_engine("compiled")
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options

        cpu = CpuOptions(num_threads=threads, xnnpack_weight_cache_path=IN_MEMORY_WEIGHT_CACHE)
        try:
            self.model = compiled_class.from_file(str(path), options=Options(cpu_options=cpu))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"{path}: LiteRT's CompiledModel cannot load it ({str(exc).splitlines()[0]}); it refuses "
                "variable tensors, which fused LSTM ops hold: export with --lstm unrolled, or "
                "use the interpreter engine"
            ) from None
        self.signature = next(iter(self.model.get_signature_list()))
        inputs = list(self.model.get_input_tensor_details(self.signature).values())
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one waveform input, got {len(inputs)} inputs")
        self.input = {**inputs[0], "dtype": np.dtype(inputs[0]["dtype"])}
        self.outputs = self._output_details()

    def _output_details(self) -> list[dict]:
        details = self.model.get_output_tensor_details(self.signature).values()
        return [{**d, "dtype": np.dtype(d["dtype"])} for d in details]

    def resize(self, shape: tuple[int, ...]) -> None:
        if tuple(self.input["shape"]) != tuple(shape):
            self.model.resize_input_tensor(0, list(shape), strict=False)
            self.input = {**self.input, "shape": list(shape)}
            self.outputs = self._output_details()
        self.input_buffers = self.model.create_input_buffers(0)
        self.output_buffers = self.model.create_output_buffers(0)

    def write(self, array: np.ndarray) -> None:
        self.input_buffers[0].write(np.ascontiguousarray(array, dtype=self.input["dtype"]))

    def invoke(self) -> None:
        self.model.run_by_index(0, self.input_buffers, self.output_buffers)

    def read(self, position: int) -> np.ndarray:
        details = self.outputs[position]
        shape = [int(d) for d in details["shape"]]
        values = self.output_buffers[position].read(int(np.prod(shape)), details["dtype"])
        return values.reshape(shape)


def open_engine(path: Path, *, threads: int, engine: str) -> Engine:
    """``path`` loaded on ``engine`` with ``threads`` threads (not yet allocated: ``resize``).

    ModelError when the file is missing or the engine cannot load it.
    """
    if not Path(path).is_file():
        raise ModelError(f"{path}: model file not found")
    import_engine(engine)  # an unknown engine or a missing runtime fails before the file
    if engine == "compiled":
        return CompiledEngine(path, threads=threads)
    return InterpreterEngine(path, threads=threads)
