"""Cut a .tflite graph into runnable pieces: one op (with its weight DEQUANTIZEs) or a run of ops.

The runtime's own per-op profiler is not reachable from Python (ai-edge-litert's Interpreter
has no profiling API), so :mod:`lean_kd.bench.profile` times pieces of the graph as models of
their own. A piece keeps the ops, the constant tensors they read and the LSTM state variables
they own; every other tensor it reads becomes an input, every tensor it writes that the rest
of the graph (or the model's output) reads becomes an output.

A DEQUANTIZE whose input is a constant (the official YAMNet's int8 weights; float16 weights)
belongs to the op that reads its output: XNNPACK folds it into that op's packed weights, so
timing it alone, or the op without it, would time a different kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from lean_kd_runtime.tflite_graph import op_name


@dataclasses.dataclass(frozen=True)
class Unit:
    """Ops timed together: ``ops`` (indices in execution order) and the main op's type."""

    ops: tuple[int, ...]
    name: str


def load(data: bytes) -> schema.ModelT:
    """The mutable object tree of a TFLite flatbuffer."""
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))


def is_constant(model: schema.ModelT, tensor_index: int) -> bool:
    """Whether the tensor's value is stored in the file (a weight, bias or shape)."""
    buffer = model.buffers[model.subgraphs[0].tensors[tensor_index].buffer]
    return buffer.data is not None and len(buffer.data) > 0


def units(model: schema.ModelT) -> list[Unit]:
    """The graph's ops grouped into timing units, in execution order (see module docstring)."""
    ops = model.subgraphs[0].operators
    weight_dequantize = {
        index
        for index, op in enumerate(ops)
        if op_name(model, op) == "DEQUANTIZE" and is_constant(model, op.inputs[0])
    }
    producer = {t: index for index, op in enumerate(ops) for t in op.outputs}
    result = []
    for index, op in enumerate(ops):
        if index in weight_dequantize:
            continue
        feeding = sorted(
            producer[t] for t in op.inputs if t >= 0 and producer.get(t) in weight_dequantize
        )
        result.append(Unit(ops=(*feeding, index), name=op_name(model, op)))
    consumed = {i for unit in result for i in unit.ops}
    result += [  # a weight DEQUANTIZE nothing reads (e.g. a model output): on its own
        Unit(ops=(i,), name="DEQUANTIZE") for i in sorted(weight_dequantize - consumed)
    ]
    return result


def extract(model: schema.ModelT, op_indices: Sequence[int]) -> tuple[bytes, list[int]]:
    """A model of the ops ``op_indices`` alone; returns it and, in its input order, the
    original indices of the tensors that became its inputs."""
    graph = model.subgraphs[0]
    chosen = sorted(set(op_indices))
    ops = [graph.operators[i] for i in chosen]
    produced = {t for op in ops for t in op.outputs if t >= 0}
    used = sorted({t for op in ops for t in _tensors(op) if t >= 0})
    inputs = [
        t
        for t in used
        if t not in produced and not is_constant(model, t) and not graph.tensors[t].isVariable
    ]
    read_later = {
        t
        for i, op in enumerate(graph.operators)
        if i not in chosen
        for t in op.inputs
        if t in produced
    }
    outputs = [t for t in used if t in produced and (t in read_later or t in graph.outputs)]
    outputs = outputs or [t for t in ops[-1].outputs if t >= 0]
    return _pack(model, ops, used, inputs, outputs), inputs


def _tensors(op: schema.OperatorT) -> list[int]:
    return [*op.inputs, *op.outputs, *(op.intermediates if op.intermediates is not None else [])]


def _pack(
    model: schema.ModelT,
    ops: list[schema.OperatorT],
    used: list[int],
    inputs: list[int],
    outputs: list[int],
) -> bytes:
    graph = model.subgraphs[0]
    new_index = {old: new for new, old in enumerate(used)}
    buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
    tensors = []
    for old in used:
        tensor = _copy_tensor(graph, old)
        source = model.buffers[tensor.buffer]
        if tensor.buffer and source.data is not None and len(source.data):
            buffers.append(source)
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    sub = schema.SubGraphT()
    sub.tensors = tensors
    sub.inputs = [new_index[t] for t in inputs]
    sub.outputs = [new_index[t] for t in outputs]
    sub.operators = [_remap(op, new_index) for op in ops]
    piece = schema.ModelT()
    piece.version, piece.operatorCodes = model.version, model.operatorCodes
    piece.subgraphs, piece.buffers = [sub], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(piece.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _copy_tensor(graph: schema.SubGraphT, index: int) -> schema.TensorT:
    tensor = schema.TensorT()
    vars(tensor).update(vars(graph.tensors[index]))
    return tensor


def _remap(op: schema.OperatorT, new_index: dict[int, int]) -> schema.OperatorT:
    copy = schema.OperatorT()
    vars(copy).update(vars(op))
    copy.inputs = [new_index[t] if t >= 0 else t for t in op.inputs]
    copy.outputs = [new_index[t] if t >= 0 else t for t in op.outputs]
    if op.intermediates is not None:
        copy.intermediates = [new_index[t] for t in op.intermediates]
    return copy
