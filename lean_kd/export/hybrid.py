"""Hybrid ops: int8 weights, float activations quantized on the fly (dynamic-range kernels).

Full int8 runs each UNIDIRECTIONAL_SEQUENCE_LSTM with the integer kernel, which XNNPACK does
not take over and which is slow (LEAN's two BiLSTM(128)s alone: 5.4x the official YAMNet's
latency at one thread, benchmarks/results/summary_xeon_amx.md) and lossy on raw-waveform
patches. The dynamic-range kernel keeps the weights in int8 (same file size) but computes
with float activations, quantizing each input row on the fly: 0.89x YAMNet for the same LSTMs.

The converter cannot mix calibrated int8 ops with dynamic-range ones, so the LSTMs are first
kept float (denylisted in :func:`lean_kd.export.quantize.int8_with_float_parts`) and
:func:`hybridize_lstms` then rewrites their weight tensors the way dynamic-range quantization
does: symmetric per-tensor int8 (scale = max |w| / 127, zero point 0), biases, states and
layer-norm coefficients float, ``asymmetric_quantize_inputs`` on.

:func:`hybridize_weights` does the same for float FULLY_CONNECTED and CONV_2D ops (the
unrolled LSTMs of :mod:`lean_kd.export.unrolled_lstm`, the int8 DFT, the whole trunk of a
``dynamic`` export), per output channel as the converter's dynamic-range mode stores them;
XNNPACK runs such an op as a dynamically quantized int8 GEMM (each input row quantized on
the fly), the form of the official YAMNet file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from lean_kd.errors import ExportError
from lean_kd.export.ops import FUSED_LSTM
from lean_kd_runtime.tflite_graph import operator_name

logger = logging.getLogger(__name__)

# UNIDIRECTIONAL_SEQUENCE_LSTM inputs that hold weights (tensorflow/lite/kernels/lstm_shared.h):
# input-to-gate 1-4, recurrent-to-gate 5-8, peephole 9-11, projection 16.
LSTM_WEIGHT_INPUTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16)
INT8_MAX = 127


def symmetric_int8(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """``weights`` as int8 with one scale, as TFLite's dynamic-range quantizer does."""
    peak = float(np.max(np.abs(weights))) if weights.size else 0.0
    scale = peak / INT8_MAX if peak > 0 else 1.0
    quantized = np.clip(np.round(weights / scale), -INT8_MAX, INT8_MAX).astype(np.int8)
    return quantized, scale


def hybridize_lstms(model: bytes) -> tuple[bytes, int]:
    """``model`` with every float LSTM's weights in int8; returns it and the number of LSTMs.

    LSTMs whose input is not float (already integer) are left alone. Raises ExportError when a
    weight buffer is shared with a tensor that is not an LSTM weight (rewriting it would change
    that tensor too).
    """
    unpacked, lstms = _ops_where(
        model,
        lambda name, op, tensors: (
            name == FUSED_LSTM and tensors[op.inputs[0]].type == schema.TensorType.FLOAT32
        ),
    )
    graph = unpacked.subgraphs[0]
    if not lstms:
        return model, 0
    weights = {
        op.inputs[i]
        for op in lstms
        for i in LSTM_WEIGHT_INPUTS
        if i < len(op.inputs) and op.inputs[i] >= 0
    }
    _check_buffers_private(graph, weights)
    scales: dict[int, float] = {}  # buffer -> scale: tensors may share a deduplicated buffer
    for index in sorted(weights):
        _quantize_weight(graph.tensors[index], unpacked.buffers, scales)
    for op in lstms:
        op.builtinOptions.asymmetricQuantizeInputs = True
    logger.info("Hybrid LSTMs: %d op(s), %d weight tensors in int8", len(lstms), len(weights))
    return _pack(unpacked, len(model)), len(lstms)


def _ops_where(
    model: bytes, keep: Callable[[str, schema.OperatorT, list[schema.TensorT]], bool]
) -> tuple[schema.ModelT, list[schema.OperatorT]]:
    """The unpacked model and its main subgraph's ops for which ``keep(op type, op, tensors)``."""
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    graph = unpacked.subgraphs[0]
    codes = [operator_name(c) for c in unpacked.operatorCodes]
    kept = [op for op in graph.operators if keep(codes[op.opcodeIndex], op, graph.tensors)]
    return unpacked, kept


def _pack(unpacked: schema.ModelT, size_hint: int) -> bytes:
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _check_buffers_private(graph: schema.SubGraphT, weights: set[int]) -> None:
    owners: dict[int, set[int]] = {}
    for index, tensor in enumerate(graph.tensors):
        owners.setdefault(tensor.buffer, set()).add(index)
    for index in weights:
        others = owners[graph.tensors[index].buffer] - weights
        if others:
            names = [_name(graph.tensors[i]) for i in sorted(others)]
            raise ExportError(
                f"LSTM weight {_name(graph.tensors[index])} shares its buffer with {names}; "
                "cannot store it in int8 alone"
            )


def _quantize_weight(
    tensor: schema.TensorT, buffers: list[schema.BufferT], scales: dict[int, float]
) -> None:
    if tensor.type != schema.TensorType.FLOAT32:
        return
    if tensor.buffer not in scales:
        buffer = buffers[tensor.buffer]
        if buffer.data is None or len(buffer.data) == 0:
            raise ExportError(f"LSTM weight {_name(tensor)} is not a constant; cannot quantize it")
        quantized, scales[tensor.buffer] = symmetric_int8(np.frombuffer(bytes(buffer.data), "<f4"))
        buffer.data = np.frombuffer(quantized.tobytes(), dtype=np.uint8)
    scale = scales[tensor.buffer]
    tensor.type = schema.TensorType.INT8
    params = schema.QuantizationParametersT()
    params.scale, params.zeroPoint, params.quantizedDimension = [scale], [0], 0
    tensor.quantization = params


def _name(tensor: schema.TensorT) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D")  # ops XNNPACK runs with int8 weights, float data
# Smaller weights stay float, as in TFLite's dynamic-range quantizer: such ops (YAMNet's first
# convs, 1 and 16 input channels) have too few products per input value for quantizing the
# input on the fly to pay (the first conv: 3 GMAC/s with int8 weights).
MIN_INT8_WEIGHTS = 1024


def hybridize_weights(
    model: bytes, *, outputs: set[str] | None = None, keep_float: set[str] = frozenset()
) -> tuple[bytes, int]:
    """``model`` with the constant float weights of its FULLY_CONNECTED and CONV_2D ops stored
    as per-channel symmetric int8; returns it and the op count.

    ``outputs``: only the ops that write one of these tensor names (all when None);
    ``keep_float``: ops writing one of these stay float, as do weights of fewer than
    :data:`MIN_INT8_WEIGHTS` values. DEPTHWISE_CONV_2D is left float:
    XNNPACK has no kernel for it with int8 weights and float data (it would fall back to the
    builtin kernel), and its weights are small."""
    unpacked, chosen = _ops_where(
        model,
        lambda name, op, tensors: (
            name in WEIGHT_OPS
            and (outputs is None or _name(tensors[op.outputs[0]]) in outputs)
            and _name(tensors[op.outputs[0]]) not in keep_float
            and tensors[op.inputs[1]].type == schema.TensorType.FLOAT32
        ),
    )
    graph = unpacked.subgraphs[0]
    chosen = [
        op
        for op in chosen
        if _is_constant(graph.tensors[op.inputs[1]], unpacked.buffers)
        and np.prod(graph.tensors[op.inputs[1]].shape) >= MIN_INT8_WEIGHTS
    ]
    if not chosen:
        return model, 0
    weights = {op.inputs[1] for op in chosen}
    _check_buffers_private(graph, weights)
    done: dict[int, schema.QuantizationParametersT] = {}  # buffer -> its int8 quantization
    for index in sorted(weights):
        _quantize_rows(graph.tensors[index], unpacked.buffers, done)
    for op in chosen:
        if isinstance(op.builtinOptions, schema.FullyConnectedOptionsT):
            op.builtinOptions.asymmetricQuantizeInputs = True
    logger.info("Hybrid FULLY_CONNECTED / CONV_2D: %d op(s) with int8 weights", len(chosen))
    return _pack(unpacked, len(model)), len(chosen)


def _is_constant(tensor: schema.TensorT, buffers: list[schema.BufferT]) -> bool:
    data = buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _quantize_rows(
    tensor: schema.TensorT,
    buffers: list[schema.BufferT],
    done: dict[int, schema.QuantizationParametersT],
) -> None:
    """A constant float weight (output channels first: ``[out, in]`` or ``[out, h, w, in]``)
    -> int8 with one scale per output channel."""
    if tensor.buffer not in done:
        buffer = buffers[tensor.buffer]
        rows = np.frombuffer(bytes(buffer.data), "<f4").reshape(tensor.shape[0], -1)
        pairs = [symmetric_int8(row) for row in rows]
        buffer.data = np.frombuffer(np.stack([q for q, _ in pairs]).tobytes(), dtype=np.uint8)
        params = schema.QuantizationParametersT()
        params.scale = [scale for _, scale in pairs]
        params.zeroPoint, params.quantizedDimension = [0] * len(pairs), 0
        done[tensor.buffer] = params
    tensor.type = schema.TensorType.INT8
    tensor.quantization = done[tensor.buffer]
