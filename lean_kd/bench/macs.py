"""Multiply-accumulates per inference, counted from a TFLite file's operators and shapes.

The file's own count: what the converter made of the model (the log-mel DFT as RFFT2D or a
matrix product, fused LSTMs). :mod:`lean_kd.models.macs` counts the Keras layers instead, before
any export, for the model catalogue; the two agree where the graph is the same layer for layer.

Conventions (those of common MAC counters such as thop and keras-flops): a MAC is one
multiply-add of a matrix product or convolution; element-wise ops, activations, pooling,
reductions and data movement count as 0 (they are listed in :data:`ZERO_COST_OPS`). Ops that
are neither counted nor known to be free are reported in ``uncounted`` rather than guessed.

Per op (shapes from the flatbuffer; NHWC; batch included)::

    CONV_2D                 prod(output) * Kh * Kw * Cin/groups   (filter [Cout, Kh, Kw, Cin/g])
    DEPTHWISE_CONV_2D       prod(output) * Kh * Kw                (filter [1, Kh, Kw, Cout])
    TRANSPOSE_CONV          prod(input) * Kh * Kw * Cout          (filter [Cout, Kh, Kw, Cin])
    FULLY_CONNECTED         prod(output) * in_features            (weights [units, in])
    BATCH_MATMUL            prod(output) * K                      (K: x's last dim, or the one
                                                                   before with adj_x)
    UNIDIRECTIONAL_SEQUENCE_LSTM
                            steps * batch * (elements of the input, recurrent, peephole and
                            projection weights): 4 * units * (in + units) without peepholes
    RFFT2D (approximate)    rows * N * (log2 N + 1): a radix-2 real FFT of length N done as a
                            complex FFT of N/2 points plus the split step, counted in real
                            multiplications; only the last axis (fft_length [1, N] as
                            tf.signal.stft produces)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from lean_kd_runtime.tflite_graph import Op

ZERO_COST_OPS = frozenset(
    """ABS ADD ADD_N ARG_MAX ARG_MIN AVERAGE_POOL_2D BROADCAST_ARGS BROADCAST_TO CAST CEIL
    COMPLEX_ABS CONCATENATION COS CUMSUM DEQUANTIZE DIV ELU EQUAL EXP EXPAND_DIMS FILL FLOOR
    FLOOR_DIV FLOOR_MOD GATHER GATHER_ND GELU GREATER GREATER_EQUAL HARD_SWISH IDENTITY L2_NORMALIZATION
    LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM
    MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 POW PRELU QUANTIZE
    RANGE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR REVERSE_V2 RSQRT SELECT SELECT_V2 SHAPE SIGN SIN SLICE SOFTMAX
    SPACE_TO_DEPTH DEPTH_TO_SPACE SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE
    STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE UNPACK ZEROS_LIKE""".split()
)

_LSTM_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16)  # input, recurrent, peephole, projection


@dataclasses.dataclass(frozen=True)
class MacCount:
    """Total MACs, MACs per op type, and op types that were not counted."""

    total: int
    by_op: dict[str, int]
    uncounted: tuple[str, ...]


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


def _conv_2d(op: Op) -> int:
    return _prod(op.outputs[0]) * _prod(op.inputs[1][1:])


def _depthwise_conv_2d(op: Op) -> int:
    return _prod(op.outputs[0]) * _prod(op.inputs[1][1:3])


def _transpose_conv(op: Op) -> int:
    weights, data = op.inputs[1], op.inputs[2]
    return _prod(data) * _prod(weights[:3])


def _fully_connected(op: Op) -> int:
    return _prod(op.outputs[0]) * op.inputs[1][-1]


def _batch_matmul(op: Op) -> int:
    x = op.inputs[0]
    adj_x = bool(getattr(op.options, "adjX", False))
    return _prod(op.outputs[0]) * (x[-2] if adj_x else x[-1])


def _lstm(op: Op) -> int:
    steps_times_batch = _prod(op.inputs[0][:-1])
    weights = sum(_prod(op.inputs[i]) for i in _LSTM_WEIGHTS if i < len(op.inputs) and op.inputs[i])
    return steps_times_batch * weights


def _rfft2d(op: Op) -> int:
    out = op.outputs[0]  # [..., rows, N / 2 + 1] complex
    n = 2 * (out[-1] - 1)
    if n <= 1:
        return 0
    return _prod(out[:-1]) * int(round(n * (math.log2(n) + 1)))


COUNTERS: dict[str, Callable[[Op], int]] = {
    "CONV_2D": _conv_2d,
    "DEPTHWISE_CONV_2D": _depthwise_conv_2d,
    "TRANSPOSE_CONV": _transpose_conv,
    "FULLY_CONNECTED": _fully_connected,
    "BATCH_MATMUL": _batch_matmul,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm,
    "RFFT2D": _rfft2d,
}


def tflite_macs(ops: Sequence[Op]) -> MacCount:
    """MACs of one invoke of the ops (the main subgraph, as :func:`read_graph` returns it)."""
    by_op: dict[str, int] = {}
    uncounted: set[str] = set()
    for op in ops:
        counter = COUNTERS.get(op.name)
        if counter is not None:
            by_op[op.name] = by_op.get(op.name, 0) + counter(op)
        elif op.name not in ZERO_COST_OPS:
            uncounted.add(op.name)
    return MacCount(total=sum(by_op.values()), by_op=by_op, uncounted=tuple(sorted(uncounted)))
