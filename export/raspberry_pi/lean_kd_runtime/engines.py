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
import platform
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelError

ENGINES = ("interpreter", "compiled")
# The path the XNNPACK delegate reads as "keep the weight cache in memory" (no file).
IN_MEMORY_WEIGHT_CACHE = ":memory"
# ARMv8.1 atomics (LSE), /proc/cpuinfo's "atomics": ai-edge-litert's aarch64 libLiteRt.so (the
# CompiledModel) is built with them and kills the process (SIGILL) on a CPU without them, e.g.
# a Raspberry Pi 4's Cortex-A72 (seen under qemu -cpu cortex-a72; cortex-a76, a Pi 5, runs).
ARM_ATOMICS_FLAG = "atomics"
# Ops whose state is a variable tensor, which the CompiledModel refuses
STATEFUL_OPS = frozenset({"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM"})


def check_engine(engine: str) -> str:
    """``engine`` when it is one of :data:`ENGINES`; ConfigError otherwise."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on ARM), or None
    where it cannot be read."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    return {
        flag
        for line in cpuinfo.splitlines()
        if line.lower().startswith(("flags", "features"))
        for flag in line.split(":", 1)[-1].split()
    }


def runtime_class(engine: str) -> tuple[type, str]:
    """The class that loads models for ``engine`` and the package it comes from.

    Raises ConfigError for an unknown engine, ModelError when no installed runtime provides it
    or this CPU cannot run it.
    """
    if check_engine(engine) == "compiled":
        flags = cpu_flags()
        is_arm64 = platform.machine().lower() in ("aarch64", "arm64")
        if is_arm64 and flags is not None and ARM_ATOMICS_FLAG not in flags:
            raise ModelError(
                "the compiled engine needs a CPU with ARMv8.1 atomics ('atomics' in "
                "/proc/cpuinfo; a Raspberry Pi 5 has them, a Pi 4 does not): ai-edge-litert's "
                "CompiledModel would stop the process; use the interpreter engine"
            )
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.cpu_options import CpuOptions  # noqa: F401 (grouped options)

            from .tflite_graph import read_graph_io  # noqa: F401 (the schema module it needs)
        except ImportError:
            raise ModelError(
                "the compiled engine needs ai-edge-litert >= 2.3 (LiteRT's CompiledModel with "
                "CPU options); pip install -U ai-edge-litert, or use the interpreter engine"
            ) from None
        return CompiledModel, "ai_edge_litert"
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:  # older boards: the tflite-runtime wheel
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError(
                "no TFLite runtime installed: pip install ai-edge-litert "
                "(or tflite-runtime); see requirements.txt"
            ) from None
        return Interpreter, "tflite_runtime"


def runtime_name(engine: str = "interpreter") -> str:
    """``"ai_edge_litert 2.3.0"`` or ``"tflite_runtime 2.14.0"``, followed by ``" CompiledModel,
    XNNPACK weight cache"`` on the compiled engine; ModelError without a runtime for it."""
    _, package = runtime_class(engine)
    try:
        name = f"{package} {importlib.metadata.version(package.replace('_', '-'))}"
    except importlib.metadata.PackageNotFoundError:
        name = package
    return name + (" CompiledModel, XNNPACK weight cache" if engine == "compiled" else "")


class Engine(abc.ABC):
    """One loaded model: its single input, its outputs in the graph's order, write / invoke /
    read. Both engines list outputs alike, so an output position means the same on each."""

    input: dict  # name, shape, shape_signature, dtype
    outputs: list[dict]  # name, shape, dtype; read(i) returns output i

    @abc.abstractmethod
    def resize(self, shape: tuple[int, ...]) -> None:
        """Give the input this shape and allocate (also when it already has it)."""

    @abc.abstractmethod
    def write(self, array: Any) -> None: ...

    @abc.abstractmethod
    def invoke(self) -> None: ...

    @abc.abstractmethod
    def read(self, position: int) -> Any: ...

    def reset(self) -> None:
        """Start the next invoke from a zero state (fused LSTM ops keep theirs otherwise)."""


class InterpreterEngine(Engine):
    def __init__(self, path: Path, interpreter_class: type, *, threads: int) -> None:
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

    def write(self, array: Any) -> None:
        self.interpreter.set_tensor(self.input["index"], array)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def read(self, position: int) -> Any:
        return self.interpreter.get_tensor(self.outputs[position]["index"])

    def reset(self) -> None:
        self.interpreter.reset_all_variables()


class CompiledEngine(Engine):
    """The first signature of a LiteRT CompiledModel, XNNPACK's weight cache in memory.

    Its buffers follow the signature's output order, which the converter may sort by name; the
    outputs are listed in the graph's order (as the Interpreter lists them) and mapped to their
    buffers. The input's shape signature comes from the file (-1: a dynamic dimension).
    """

    def __init__(self, path: Path, compiled_class: type, *, threads: int) -> None:
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options

        from .tflite_graph import read_graph_io

        graph = read_graph_io(path)  # a corrupt file: ModelError naming it
        cpu = CpuOptions(num_threads=threads, xnnpack_weight_cache_path=IN_MEMORY_WEIGHT_CACHE)
        try:
            self.model = compiled_class.from_file(str(path), options=Options(cpu_options=cpu))
        except (ValueError, RuntimeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            stateful = sorted(graph.op_names & STATEFUL_OPS)
            hint = (
                f"; it refuses the variable tensors of {', '.join(stateful)}: export with "
                "--lstm unrolled, or use the interpreter engine"
                if stateful
                else ""
            )
            raise ModelError(
                f"{path}: LiteRT's CompiledModel cannot load it ({reason}){hint}"
            ) from None
        self.signature = next(iter(self.model.get_signature_list()))
        inputs = list(self.model.get_input_tensor_details(self.signature).values())
        if len(inputs) != 1 or len(graph.input_signatures) != 1:
            raise ModelError(f"{path}: expected one waveform input, got {len(inputs)} inputs")
        self.input = {**inputs[0], "shape_signature": list(graph.input_signatures[0])}
        self.graph_outputs = graph.output_tensors
        self._list_outputs()

    def _list_outputs(self) -> None:
        """``outputs`` in the graph's order; ``buffer_of[i]``: the buffer position of output i."""
        details = list(self.model.get_output_tensor_details(self.signature).values())
        by_tensor = {int(d["index"]): position for position, d in enumerate(details)}
        order = [by_tensor[t] for t in self.graph_outputs if t in by_tensor]
        if len(order) != len(details):  # outputs the signature names differently: its order
            order = list(range(len(details)))
        self.outputs = [details[position] for position in order]
        self.buffer_of = order

    def resize(self, shape: tuple[int, ...]) -> None:
        if tuple(self.input["shape"]) != tuple(shape):
            self.model.resize_input_tensor(0, list(shape), strict=False)
            self.input = {**self.input, "shape": list(shape)}
            self._list_outputs()
        self.input_buffers = self.model.create_input_buffers(0)
        self.output_buffers = self.model.create_output_buffers(0)

    def write(self, array: Any) -> None:
        if str(array.dtype) != str(self.input["dtype"]):  # as the Interpreter: no silent cast
            raise ModelError(
                f"input {self.input['name']!r} takes {self.input['dtype']}, got {array.dtype}"
            )
        self.input_buffers[0].write(array)

    def invoke(self) -> None:
        self.model.run_by_index(0, self.input_buffers, self.output_buffers)

    def read(self, position: int) -> Any:
        import numpy as np

        details = self.outputs[position]
        shape = [int(d) for d in details["shape"]]
        buffer = self.output_buffers[self.buffer_of[position]]
        return buffer.read(int(np.prod(shape)), details["dtype"]).reshape(shape)


def open_engine(path: Path, *, threads: int, engine: str) -> Engine:
    """``path`` loaded on ``engine`` with ``threads`` threads (not yet allocated: ``resize``).

    ConfigError for an unknown engine; ModelError when the file is missing, no runtime provides
    the engine or it cannot load the file.
    """
    runtime, _ = runtime_class(engine)
    if not Path(path).is_file():
        raise ModelError(f"{path}: model file not found")
    if engine == "compiled":
        return CompiledEngine(path, runtime, threads=threads)
    return InterpreterEngine(path, runtime, threads=threads)
