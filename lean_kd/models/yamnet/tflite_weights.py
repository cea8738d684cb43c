"""Read YAMNet's weights out of the official TFLite file.

The official ``yamnet.tflite`` is hybrid (dynamic-range) quantized: most kernels are int8 with
per-channel (pointwise, dense) or per-tensor (depthwise) scales, a few stay float32, and every
batch norm is folded into its convolution (scaled kernel + bias). The interpreter can return
constant tensors, but not the graph: which operator uses which tensor, DEQUANTIZE links, fused
activations, strides; and the converter merges tensor names (``layer4/...;layer5/...``), so
names cannot be trusted. This module therefore reads the flatbuffer with the schema that
ai-edge-litert ships, walks the operators in execution order, dequantizes
(``scale * (q - zero_point)`` along the quantized axis) and maps them onto YAMNet's Keras layer
names. A folded bias goes into the batch norm's ``beta`` with ``moving_mean = 0`` and
``moving_variance = 1 - epsilon``, which makes the (scale-free) batch norm ``x + beta``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from lean_kd.errors import ModelError
from lean_kd.models.yamnet.network import BATCHNORM_EPSILON, HEAD_NAME, conv_layer_names
from lean_kd_runtime.tflite_graph import op_name, read_tflite_bytes

_KIND_TO_OP = {"conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D"}
_DTYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT32: np.int32,
}
_PARSE_ERRORS = (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError)

Weights = dict[str, list[np.ndarray]]


class _Graph:
    """The main subgraph of a TFLite file: operators in execution order and constant tensors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        data = read_tflite_bytes(path)
        try:
            self.model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
            self.graph = self.model.subgraphs[0]
            self.ops = [(self._op_name(op), op) for op in self.graph.operators]
        except _PARSE_ERRORS as exc:
            raise ModelError(f"{path}: corrupt or truncated TFLite file ({exc})") from None
        self._data = data
        self._producers = {out: op for _, op in self.ops for out in op.outputs}

    def _op_name(self, op: schema.OperatorT) -> str:
        return op_name(self.model, op)

    def constant(self, index: int, *, what: str) -> np.ndarray:
        """Float32 value of constant tensor ``index``, dequantized; follows DEQUANTIZE ops."""
        producer = self._producers.get(index)
        if producer is not None and self._op_name(producer) == "DEQUANTIZE":
            index = producer.inputs[0]
        tensor = self.graph.tensors[index]
        raw = self._raw(tensor, what=what)
        quant = tensor.quantization
        if np.issubdtype(raw.dtype, np.integer) and quant is not None and quant.scale is not None:
            return _dequantize(raw, quant)
        if raw.dtype not in (np.float32, np.float16):
            raise ModelError(
                f"{self.path}: {what} has type {raw.dtype} without quantization parameters"
            )
        return raw.astype(np.float32)

    def _raw(self, tensor: schema.TensorT, *, what: str) -> np.ndarray:
        dtype = _DTYPES.get(tensor.type)
        buffer = self.model.buffers[tensor.buffer]
        if buffer.offset > 1:  # stored after the flatbuffer (models over 2 GB)
            blob = self._data[buffer.offset : buffer.offset + buffer.size]
        else:
            blob = b"" if buffer.data is None else np.asarray(buffer.data, dtype=np.uint8).tobytes()
        shape = [int(d) for d in tensor.shape]
        expected = int(np.prod(shape)) * (np.dtype(dtype).itemsize if dtype else 0)
        if dtype is None or not blob or len(blob) != expected:
            raise ModelError(
                f"{self.path}: {what} is not a readable constant (type {tensor.type}, shape {shape}, "
                f"{len(blob)} bytes, expected {expected})"
            )
        return np.frombuffer(blob, dtype=dtype).reshape(shape)


def _dequantize(raw: np.ndarray, quant: schema.QuantizationParametersT) -> np.ndarray:
    """``scale * (q - zero_point)``, per channel along ``quantizedDimension`` when given."""
    scale = np.asarray(quant.scale, dtype=np.float32)
    zero = np.broadcast_to(
        np.asarray(quant.zeroPoint if quant.zeroPoint is not None else 0, np.float32), scale.shape
    )
    shape = [1] * raw.ndim
    if scale.size > 1:
        shape[quant.quantizedDimension] = scale.size
    return (raw.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)


def read_tflite_weights(path: str | Path) -> Weights:
    """YAMNet's Keras weights (by layer name) from an official-layout TFLite file.

    Raises :class:`ModelError` for a file that is not TFLite, is truncated, or whose operators
    are not YAMNet's (1 CONV_2D + 13 x (DEPTHWISE_CONV_2D, CONV_2D) with fused ReLU, then one
    FULLY_CONNECTED head).
    """
    graph = _Graph(Path(path))
    convs = [
        (i, name, op) for i, (name, op) in enumerate(graph.ops) if name in _KIND_TO_OP.values()
    ]
    _check_conv_ops(graph, [(name, op) for _, name, op in convs])
    weights: Weights = {}
    for (layer, kind, _), (_, _, op) in zip(conv_layer_names(), convs):
        kernel = graph.constant(op.inputs[1], what=f"kernel of {layer}")
        bias = graph.constant(op.inputs[2], what=f"bias of {layer}")
        weights[layer] = [_keras_kernel(kernel, kind)]
        weights[f"{layer}/bn"] = [
            bias,
            np.zeros_like(bias),
            np.full_like(bias, 1.0 - BATCHNORM_EPSILON),
        ]
    last_conv = convs[-1][0]
    heads = [op for name, op in graph.ops[last_conv + 1 :] if name == "FULLY_CONNECTED"]
    if len(heads) != 1 or len(heads[0].inputs) < 3 or heads[0].inputs[2] < 0:
        raise ModelError(
            f"{graph.path}: expected one FULLY_CONNECTED head with a bias after the convolutions, found {len(heads)}"
        )
    kernel = graph.constant(heads[0].inputs[1], what="kernel of the head")
    weights[HEAD_NAME] = [kernel.T, graph.constant(heads[0].inputs[2], what="bias of the head")]
    return weights


def _check_conv_ops(graph: _Graph, convs: list[tuple[str, schema.OperatorT]]) -> None:
    expected = conv_layer_names()
    found = [name for name, _ in convs]
    wanted = [_KIND_TO_OP[kind] for _, kind, _ in expected]
    if found != wanted:
        raise ModelError(
            f"{graph.path}: not a YAMNet TFLite file: expected {len(wanted)} convolutions "
            f"(CONV_2D, then 13 x DEPTHWISE_CONV_2D + CONV_2D), found {len(found)}: {found[:6]}..."
        )
    for (layer, _, stride), (_, op) in zip(expected, convs):
        options = op.builtinOptions
        relu = options.fusedActivationFunction == schema.ActivationFunctionType.RELU
        has_bias = len(op.inputs) >= 3 and op.inputs[2] >= 0
        if not relu or (options.strideH, options.strideW) != (stride, stride) or not has_bias:
            raise ModelError(
                f"{graph.path}: the operator for {layer} does not match YAMNet (expected stride {stride}, "
                f"fused ReLU and a bias; got stride {(options.strideH, options.strideW)}, "
                f"activation {options.fusedActivationFunction}, {len(op.inputs)} inputs)"
            )


def _keras_kernel(kernel: np.ndarray, kind: str) -> np.ndarray:
    """TFLite kernel layout -> Keras: CONV_2D ``[O, H, W, I]`` -> ``[H, W, I, O]``;
    DEPTHWISE_CONV_2D ``[1, H, W, C]`` -> ``[H, W, C, 1]``."""
    if kind == "depthwise":
        return kernel[0][..., np.newaxis]
    return kernel.transpose(1, 2, 3, 0)
