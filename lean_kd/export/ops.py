"""The operators of a converted model and the graph checks every export must pass.

Read from the flatbuffer with the schema module ai-edge-litert ships, without TensorFlow: the
op types of the main subgraph in execution order, the number of subgraphs (MediaPipe accepts
exactly one) and which op types still compute in float after quantization.
"""

from __future__ import annotations

import collections
import dataclasses
import re

from ai_edge_litert import schema_py_generated as schema

from lean_kd.errors import ExportError
from lean_kd_runtime.tflite_graph import operator_name

_FLOAT_TYPES = (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16, schema.TensorType.COMPLEX64)
FUSED_LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"

# Converter messages that name ops the TFLite builtin op set lacks (TF 2.21 wording):
#   'tf.MatrixDeterminant' op is neither a custom op nor a flex op
#   TF Select ops: MatrixDeterminant, Erfinv
#   Custom ops: MyOp
#   Quantization to 16x8-bit not yet supported for op: 'RFFT2D'.
_OP_PATTERNS = (
    re.compile(r"'(tf\.\w+)' op is neither a custom op nor a flex op"),
    re.compile(r"'(tf\.\w+)' op is not supported"),
    re.compile(r"not yet supported for op: '(\w+)'"),
)
_OP_LIST_PATTERN = re.compile(r"^\s*(?:TF Select ops|Custom ops): (.+)$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class OpSummary:
    """Op types of a TFLite model's main subgraph and facts the exporter checks."""

    ops: tuple[str, ...]  # main subgraph, execution order
    subgraph_count: int
    float_ops: tuple[str, ...]  # op types with a float output (DEQUANTIZE excluded), sorted

    @property
    def counts(self) -> dict[str, int]:
        """Number of ops of each type, most frequent first."""
        return dict(collections.Counter(self.ops).most_common())

    def format(self) -> str:
        """One line: ``FULLY_CONNECTED x3, CONV_2D x1, ...`` and the subgraph count."""
        listed = ", ".join(f"{name} x{count}" for name, count in self.counts.items())
        return f"{len(self.ops)} ops in {self.subgraph_count} subgraph(s): {listed}"


def summarize_ops(model: bytes) -> OpSummary:
    """Parse a TFLite flatbuffer (``TFL3``); raise ExportError when it is not one."""
    if len(model) < 8 or not schema.Model.ModelBufferHasIdentifier(model, 0):
        raise ExportError("The converter output is not a TFLite flatbuffer (no 'TFL3' identifier)")
    root = schema.Model.GetRootAs(model, 0)
    codes = [root.OperatorCodes(i) for i in range(root.OperatorCodesLength())]
    names = [operator_name(c) for c in codes]
    graph = root.Subgraphs(0)
    ops, float_ops = [], set()
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = names[op.OpcodeIndex()]
        ops.append(name)
        outputs = [op.Outputs(j) for j in range(op.OutputsLength())]
        if name != "DEQUANTIZE" and any(
            graph.Tensors(t).Type() in _FLOAT_TYPES for t in outputs if t >= 0
        ):
            float_ops.add(name)
    return OpSummary(
        ops=tuple(ops), subgraph_count=root.SubgraphsLength(), float_ops=tuple(sorted(float_ops))
    )


def unsupported_ops(message: str) -> list[str]:
    """Op names a converter error message reports as not convertible to builtin ops."""
    found = [m.group(1) for pattern in _OP_PATTERNS for m in pattern.finditer(message)]
    for line in _OP_LIST_PATTERN.finditer(message):
        found += [f"tf.{name.strip()}" for name in line.group(1).split(",") if name.strip()]
    return sorted(set(found))


def check_graph(summary: OpSummary, *, lstm_directions: int) -> None:
    """Raise ExportError unless the graph is one subgraph without loops and every LSTM fused.

    ``lstm_directions``: LSTM layers of the Keras model, a Bidirectional counting two; each
    must become one UNIDIRECTIONAL_SEQUENCE_LSTM op.
    """
    fused = summary.ops.count(FUSED_LSTM)
    loops = summary.ops.count("WHILE")
    if loops or summary.subgraph_count != 1:
        raise ExportError(
            f"The converted graph has {loops} WHILE op(s) and {summary.subgraph_count} subgraphs; "
            "expected one subgraph without loops (MediaPipe accepts only one). A recurrent layer "
            "did not fuse: use LSTM with its default settings (activation tanh, "
            "recurrent_activation "
            "sigmoid, recurrent_dropout 0, unroll False); GRU and SimpleRNN do not fuse"
        )
    if fused < lstm_directions:
        raise ExportError(
            f"Expected {lstm_directions} {FUSED_LSTM} op(s) for the model's LSTM layers, "
            f"found {fused}; "
            "an LSTM was unrolled or lowered (use unroll=False and the default activations)"
        )
