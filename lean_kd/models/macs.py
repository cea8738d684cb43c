"""Multiply-accumulate count of a Keras model, per example, by walking its layers.

Counted: convolutions (Conv1D/2D/3D, depthwise, separable, transposed), Dense, MultiHeadAttention
(projections and both attention products), recurrent layers (LSTM, GRU, SimpleRNN, also inside
Bidirectional) and the log-mel frontend's mel projection (the FFT is not counted). Normalisation,
activation, pooling and element-wise layers count 0 (batch norm folds into the convolution at
export). Nested models are counted through their own layers.

Shapes come from one forward pass of a batch of 1 through a probe model that outputs every
layer's inputs and outputs, so layers that fold time into the batch dimension (e.g. YAMNet's
patches) are counted once per patch. Another module adds a counter for its own layer with
``@register_counter(MyLayer)``; a layer with weights and no counter logs a warning and counts 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.audio.features import LogMelSpectrogram

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]
Counter = Callable[[keras.layers.Layer, Sequence[Shape], Sequence[Shape]], int]
_COUNTERS: dict[type, Counter] = {}
L = keras.layers


def register_counter(*layer_types: type) -> Callable[[Counter], Counter]:
    """Decorator: ``counter(layer, input_shapes, output_shapes) -> MACs`` for ``layer_types``.

    Shapes include the batch dimension, which is 1. The most specific registered class in a
    layer's MRO wins, so a subclass can override its base's counter.
    """

    def decorate(counter: Counter) -> Counter:
        for layer_type in layer_types:
            _COUNTERS[layer_type] = counter
        return counter

    return decorate


def count_macs(model: keras.Model) -> int:
    """MACs of one forward pass of one example through ``model``."""
    return sum(layer_macs(model).values())


def layer_macs(model: keras.Model, input_shapes: Sequence[Shape] | None = None) -> dict[str, int]:
    """MACs per layer (nested layers as ``"outer/inner"``) for one example."""
    if input_shapes is None:
        input_shapes = [(1, *tensor.shape[1:]) for tensor in model.inputs]
    nodes = _model_nodes(model)
    shapes = _probe_shapes(model, input_shapes, nodes)
    result: dict[str, int] = {}
    for (layer, _), (ins, outs) in zip(nodes, shapes, strict=True):
        if isinstance(layer, keras.Model):
            for name, macs in layer_macs(layer, ins).items():
                _add(result, f"{layer.name}/{name}", macs)
        else:
            _add(result, layer.name, _layer_count(layer, ins, outs))
    return result


def _add(result: dict[str, int], name: str, macs: int) -> None:
    result[name] = result.get(name, 0) + int(macs)


def _model_nodes(model: keras.Model) -> list[tuple[keras.layers.Layer, object]]:
    """(layer, node) for every call of a layer inside ``model`` (input layers excluded)."""
    # tf_keras keeps the keys of the nodes that belong to a functional model in _network_nodes;
    # a layer shared with another model also has nodes that are not part of this one.
    member = getattr(model, "_network_nodes", None)
    nodes = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for index, node in enumerate(layer.inbound_nodes):
            if member is None or f"{layer.name}_ib-{index}" in member:
                nodes.append((layer, node))
    return nodes


def _probe_shapes(
    model: keras.Model, input_shapes: Sequence[Shape], nodes: list
) -> list[tuple[list, list]]:
    """Concrete input and output shapes of every node, from one pass of zeros."""
    groups = [
        (tf.nest.flatten(node.keras_inputs), tf.nest.flatten(node.outputs)) for _, node in nodes
    ]
    tensors = [t for ins, outs in groups for t in ins + outs]
    probe = keras.Model(model.inputs, tensors)
    zeros = [
        np.zeros(shape, tensor.dtype.as_numpy_dtype)
        for shape, tensor in zip(input_shapes, model.inputs, strict=True)
    ]
    values = probe(zeros if len(zeros) > 1 else zeros[0], training=False)
    shapes = iter([tuple(v.shape) for v in tf.nest.flatten(values)])
    return [([next(shapes) for _ in ins], [next(shapes) for _ in outs]) for ins, outs in groups]


def _layer_count(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    for cls in type(layer).__mro__:
        if cls in _COUNTERS:
            return _COUNTERS[cls](layer, ins, outs)
    if layer.weights:
        logger.warning(
            "No MAC counter for layer %s (%s); counted as 0", layer.name, type(layer).__name__
        )
    return 0


@register_counter(L.BatchNormalization, L.LayerNormalization, L.Normalization, L.Embedding)
def zero_macs(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return 0


@register_counter(L.Conv1D, L.Conv2D, L.Conv3D)
def _conv(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    in_channels = ins[0][-1] if layer.data_format == "channels_last" else ins[0][1]
    return math.prod(outs[0]) * math.prod(layer.kernel_size) * in_channels // layer.groups


@register_counter(L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
def _conv_transpose(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return math.prod(ins[0]) * math.prod(layer.kernel_size) * layer.filters


@register_counter(L.DepthwiseConv1D, L.DepthwiseConv2D)
def _depthwise(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return math.prod(outs[0]) * math.prod(layer.kernel_size)  # one k-tap filter per output value


@register_counter(L.SeparableConv1D, L.SeparableConv2D)
def _separable(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    in_channels = ins[0][-1] if layer.data_format == "channels_last" else ins[0][1]
    positions = math.prod(outs[0]) // layer.filters
    depthwise = positions * in_channels * layer.depth_multiplier * math.prod(layer.kernel_size)
    return depthwise + math.prod(outs[0]) * in_channels * layer.depth_multiplier


@register_counter(L.Dense)
def _dense(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return math.prod(outs[0]) * ins[0][-1]


@register_counter(L.MultiHeadAttention)
def _attention(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    config = layer.get_config()
    heads, key_dim = config["num_heads"], config["key_dim"]
    value_dim = config["value_dim"] or key_dim
    query, value = ins[0], ins[1]
    key = ins[2] if len(ins) > 2 and len(ins[2]) == len(value) else value
    tq, tk = math.prod(query[1:-1]), math.prod(key[1:-1])
    projections = heads * (
        tq * query[-1] * key_dim + tk * key[-1] * key_dim + tk * value[-1] * value_dim
    )
    attention = (
        heads * tq * tk * (key_dim + value_dim)
    )  # scores q.k, then the weighted sum of values
    output = math.prod(outs[0]) * heads * value_dim
    return projections + attention + output


_GATES = {L.LSTM: 4, L.GRU: 3, L.SimpleRNN: 1}


@register_counter(*_GATES)
def _recurrent(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    gates = next(g for cls, g in _GATES.items() if isinstance(layer, cls))
    _, steps, features = ins[0]
    return steps * gates * layer.units * (features + layer.units)


@register_counter(L.Bidirectional)
def _bidirectional(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    return sum(
        _layer_count(direction, ins[:1], outs)
        for direction in (layer.forward_layer, layer.backward_layer)
    )


@register_counter(LogMelSpectrogram)
def _log_mel(layer: keras.layers.Layer, ins: Sequence[Shape], outs: Sequence[Shape]) -> int:
    frames, mel_bins = outs[0][-2:]
    return math.prod(outs[0][:-2]) * frames * (layer.config.fft_size // 2 + 1) * mel_bins
