"""The operators of a .tflite file with their tensor shapes, read without running the model.

MAC counting needs each op's type, input/output shapes and a few options (BATCH_MATMUL's
adjoint flags); the flatbuffer holds all of them. It is read with the schema module that
ai-edge-litert ships (``ai_edge_litert.schema_py_generated``; ``tensorflow.lite.python``'s copy
is not importable under TF 2.21 and would pull in TensorFlow).
"""

from __future__ import annotations

import dataclasses
import mmap
import struct
from pathlib import Path
from typing import Any

from ai_edge_litert import schema_py_generated as schema

from .errors import ModelError

OP_NAMES = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_PARSE_ERRORS = (
    struct.error,
    IndexError,
    ValueError,
    TypeError,
    UnicodeDecodeError,
    AttributeError,
)

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Op:
    """One operator: builtin name, tensor shapes (None for an omitted optional input), options."""

    name: str
    inputs: tuple[Shape | None, ...]
    outputs: tuple[Shape, ...]
    options: Any = None  # the op's builtin options object (e.g. BatchMatMulOptionsT) or None


@dataclasses.dataclass(frozen=True)
class Graph:
    """The main subgraph's operators in execution order, and how many subgraphs the file has."""

    ops: tuple[Op, ...]
    subgraph_count: int


def read_graph(path: str | Path) -> Graph:
    """Parse ``path``; raise ModelError for a missing, empty or non-TFLite file."""
    data = read_tflite_bytes(path)
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
        graph = model.subgraphs[0]
        tensors = graph.tensors
        ops = tuple(
            Op(
                name=op_name(model, op),
                inputs=tuple(_shape(tensors[i]) if i >= 0 else None for i in op.inputs),
                outputs=tuple(_shape(tensors[i]) for i in op.outputs),
                options=op.builtinOptions,
            )
            for op in graph.operators
        )
    except _PARSE_ERRORS as exc:
        raise ModelError(f"{path}: corrupt or truncated TFLite file ({exc})") from None
    return Graph(ops=ops, subgraph_count=len(model.subgraphs))


@dataclasses.dataclass(frozen=True)
class GraphIO:
    """The main subgraph's inputs (shape signatures: -1 for a dynamic dimension) and output
    tensor indices, in the graph's order (the Interpreter's ``get_output_details`` order)."""

    input_signatures: tuple[Shape, ...]
    output_tensors: tuple[int, ...]
    op_names: frozenset[str]


def read_graph_io(path: str | Path) -> GraphIO:
    """:class:`GraphIO` of ``path``, read through a memory map: only the pages it needs, so a
    process whose memory is being measured does not hold a copy of the file."""
    try:
        with (
            open(path, "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            model = schema.Model.GetRootAs(data, 0)
            graph = model.Subgraphs(0)
            signatures = []
            for k in range(graph.InputsLength()):
                tensor = graph.Tensors(graph.Inputs(k))
                if tensor.ShapeSignatureLength():
                    dims = [tensor.ShapeSignature(j) for j in range(tensor.ShapeSignatureLength())]
                else:
                    dims = [tensor.Shape(j) for j in range(tensor.ShapeLength())]
                signatures.append(tuple(int(d) for d in dims))
            outputs = tuple(int(graph.Outputs(k)) for k in range(graph.OutputsLength()))
            names = frozenset(
                operator_name(model.OperatorCodes(k)) for k in range(model.OperatorCodesLength())
            )
    except (OSError, *_PARSE_ERRORS) as exc:
        raise ModelError(f"{path}: corrupt or truncated TFLite file ({exc})") from None
    return GraphIO(tuple(signatures), outputs, names)


def read_tflite_bytes(path: str | Path) -> bytes:
    """The file's bytes after checking it exists and carries the TFLite identifier."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    data = path.read_bytes()
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ModelError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    return data


def operator_name(code: Any) -> str:
    """The builtin op name of an operator code (object API ``OperatorCodeT`` or the flatbuffer's
    ``OperatorCode``); ``CUSTOM`` for a custom op. Files keep old op numbers in the deprecated
    8-bit field and new ones in the 32-bit field, so the larger of the two counts."""
    if hasattr(code, "BuiltinCode"):
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    else:
        number = max(code.builtinCode, code.deprecatedBuiltinCode)
    return OP_NAMES.get(number, "CUSTOM")


def op_name(model: schema.ModelT, op: schema.OperatorT) -> str:
    """The builtin op name of ``op`` in the unpacked ``model``."""
    return operator_name(model.operatorCodes[op.opcodeIndex])


def _shape(tensor: schema.TensorT) -> Shape:
    return tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
