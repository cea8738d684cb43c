"""Where a .tflite model's time goes: which ops XNNPACK runs, which builtin kernels, how long.

ai-edge-litert's Python Interpreter exposes no profiler, so the profile is built from what it
does expose:

- **Kernel per op**: an interpreter made with ``experimental_disable_delegate_node_fusion``
  gives every op that XNNPACK accepts a delegate node of its own; an op whose outputs a
  delegate node writes runs on XNNPACK, any other on the builtin kernel.
- **Time per op**: each op (with the weight DEQUANTIZEs XNNPACK folds into it:
  :mod:`lean_kd.bench.submodel`) is cut out as a model of its own, fed the tensors it reads in
  a real run of the whole model, and timed like the whole model (median of ``runs`` invokes).
- **Time per partition**: each run of consecutive ops on the same kernel is timed the same way,
  so that what XNNPACK fuses within a partition is counted as it runs.

The pieces add up to more than the whole (each invoke has its own fixed cost, about a
microsecond); compare shares, not sums. Threads are the interpreter's ``num_threads``. At one
thread the times are the calling thread's CPU time (the invoke runs on it): on a machine
shared with other jobs, wall time would also count the time they hold the core, and more so
for long invokes than for short ones. At several threads they are wall times.
"""

from __future__ import annotations

import collections
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from lean_kd.bench import submodel
from lean_kd.bench.macs import tflite_macs
from lean_kd.errors import ConfigError, ModelError
from lean_kd_runtime.tflite_graph import Op, read_graph, read_tflite_bytes
from lean_kd_runtime.timing import waveform_shape

XNNPACK, BUILTIN = "xnnpack", "builtin"


@dataclasses.dataclass(frozen=True)
class PieceTiming:
    """One timed piece: an op (``name``) or a partition (``name`` lists its op types)."""

    ops: tuple[int, ...]
    name: str
    kernel: str  # XNNPACK or BUILTIN
    ms: float  # median invoke time
    macs: int  # multiply-accumulates of the piece (0 when none are counted)


@dataclasses.dataclass(frozen=True)
class Profile:
    """A model's profile at one thread count (see the module docstring)."""

    path: str
    threads: int
    whole_ms: float
    ops: tuple[PieceTiming, ...]
    partitions: tuple[PieceTiming, ...]
    delegate_partitions: int  # XNNPACK partitions of the interpreter as normally built

    def by_type(self) -> list[tuple[str, str, int, float, int]]:
        """``(op type, kernel, count, ms, MACs)`` summed per type and kernel, slowest first."""
        sums: dict[tuple[str, str], list] = collections.defaultdict(lambda: [0, 0.0, 0])
        for piece in self.ops:
            row = sums[(piece.name, piece.kernel)]
            row[0], row[1], row[2] = row[0] + 1, row[1] + piece.ms, row[2] + piece.macs
        rows = [(name, kernel, *values) for (name, kernel), values in sums.items()]
        return sorted(rows, key=lambda row: -row[3])


def profile_model(
    path: str | Path, *, threads: int = 1, runs: int = 100, warmup_runs: int = 10, seed: int = 0
) -> Profile:
    """Profile ``path`` (a waveform model) at ``threads`` threads; ModelError for a bad file."""
    if threads < 1 or runs < 1 or warmup_runs < 0:
        raise ConfigError(
            f"Expected threads >= 1, runs >= 1, warmup_runs >= 0; got {threads}, {runs}, "
            f"{warmup_runs}"
        )
    data = read_tflite_bytes(path)
    model = submodel.load(data)
    graph_ops = read_graph(path).ops
    values = _tensor_values(data, path=Path(path), seed=seed)
    on_xnnpack = _delegated_ops(data, values, threads=threads, op_count=len(graph_ops))
    timer = _PieceTimer(model, values, threads=threads, runs=runs, warmup_runs=warmup_runs)
    ops = tuple(
        timer.time(unit.ops, unit.name, _kernel(unit.ops, on_xnnpack), graph_ops)
        for unit in submodel.units(model)
    )
    partitions = tuple(
        timer.time(tuple(i for p in run for i in p.ops), _types(run), run[0].kernel, graph_ops)
        for run in _runs(ops)
    )
    whole = _median_ms(
        _interpreter(data, threads, values, list(values.inputs)), runs, warmup_runs, threads
    )
    return Profile(
        path=str(path),
        threads=threads,
        whole_ms=whole,
        ops=ops,
        partitions=partitions,
        delegate_partitions=len(_delegate_outputs(data, values, threads=threads, fuse=True)),
    )


@dataclasses.dataclass
class _Values:
    """Every tensor of one real run (builtin kernels, all tensors kept) and the input indices."""

    tensors: dict[int, np.ndarray]
    inputs: tuple[int, ...]


def _tensor_values(data: bytes, *, path: Path, seed: int) -> _Values:
    interpreter = Interpreter(
        model_content=data,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one waveform input, got {len(inputs)}")
    shape = waveform_shape(inputs[0], path=path, sample_rate_hz=16000)
    interpreter.resize_tensor_input(inputs[0]["index"], list(shape), strict=False)
    interpreter.allocate_tensors()
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)
    interpreter.set_tensor(inputs[0]["index"], wave)
    interpreter.invoke()
    tensors = {}
    for detail in interpreter.get_tensor_details():
        try:
            tensors[detail["index"]] = np.array(interpreter.get_tensor(detail["index"]))
        except ValueError:  # tensors without data (optional inputs, unused)
            continue
    return _Values(tensors=tensors, inputs=(inputs[0]["index"],))


def _interpreter(
    data: bytes, threads: int, values: _Values, inputs: list[int], **options: bool
) -> Interpreter:
    """An allocated XNNPACK interpreter of ``data`` whose inputs hold the recorded values of
    the original tensors ``inputs`` (same order as the model's inputs)."""
    interpreter = Interpreter(model_content=data, num_threads=threads, **options)
    details = interpreter.get_input_details()
    for detail, original in zip(details, inputs):
        value = values.tensors[original]
        if tuple(detail["shape"]) != value.shape:
            interpreter.resize_tensor_input(detail["index"], list(value.shape), strict=True)
    interpreter.allocate_tensors()
    for detail, original in zip(details, inputs):
        interpreter.set_tensor(detail["index"], values.tensors[original])
    return interpreter


def _delegate_outputs(data: bytes, values: _Values, *, threads: int, fuse: bool) -> tuple:
    options = {"experimental_disable_delegate_node_fusion": not fuse}
    interpreter = _interpreter(data, threads, values, list(values.inputs), **options)
    wrapper = interpreter._interpreter  # noqa: SLF001 - the node list is only reachable here
    nodes = range(wrapper.NumNodes())
    return tuple(wrapper.NodeOutputs(k) for k in nodes if wrapper.NodeName(k) == "DELEGATE")


def _delegated_ops(data: bytes, values: _Values, *, threads: int, op_count: int) -> set[int]:
    """Indices of the ops XNNPACK takes (one delegate node per op, see module docstring)."""
    nodes = _delegate_outputs(data, values, threads=threads, fuse=False)
    written = {int(t) for outputs in nodes for t in outputs}
    model = submodel.load(data)
    ops = model.subgraphs[0].operators[:op_count]
    return {i for i, op in enumerate(ops) if any(t in written for t in op.outputs if t >= 0)}


def _kernel(ops: tuple[int, ...], on_xnnpack: set[int]) -> str:
    """XNNPACK when the unit's main (last) op is delegated."""
    return XNNPACK if ops[-1] in on_xnnpack else BUILTIN


def _runs(pieces: tuple[PieceTiming, ...]) -> list[list[PieceTiming]]:
    """Consecutive pieces on the same kernel, in execution order."""
    runs: list[list[PieceTiming]] = []
    for piece in pieces:
        if runs and runs[-1][0].kernel == piece.kernel:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    return runs


def _types(run: list[PieceTiming]) -> str:
    counts = collections.Counter(piece.name for piece in run)
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.most_common())


class _PieceTimer:
    """Times pieces of one model, cut with :func:`lean_kd.bench.submodel.extract`."""

    def __init__(
        self, model: object, values: _Values, *, threads: int, runs: int, warmup_runs: int
    ) -> None:
        self.model, self.values = model, values
        self.threads, self.runs, self.warmup_runs = threads, runs, warmup_runs

    def time(
        self, ops: tuple[int, ...], name: str, kernel: str, graph_ops: tuple[Op, ...]
    ) -> PieceTiming:
        data, inputs = submodel.extract(self.model, ops)
        interpreter = _interpreter(data, self.threads, self.values, inputs)
        ms = _median_ms(interpreter, self.runs, self.warmup_runs, self.threads)
        macs = tflite_macs([graph_ops[i] for i in ops if i < len(graph_ops)]).total
        return PieceTiming(ops=tuple(ops), name=name, kernel=kernel, ms=ms, macs=macs)


def _median_ms(interpreter: Interpreter, runs: int, warmup_runs: int, threads: int) -> float:
    """Median invoke time: CPU time of this thread at one thread, else wall time."""
    clock = time.thread_time_ns if threads == 1 else time.perf_counter_ns
    for _ in range(warmup_runs):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = clock()
        interpreter.invoke()
        times.append(clock() - start)
    return statistics.median(times) / 1e6
