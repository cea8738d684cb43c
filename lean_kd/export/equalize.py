"""Per-channel range equalization before int8: one activation scale must fit every channel.

Full int8 gives each activation tensor one scale. When a few channels span a hundred times
the range of the rest, the rest are rounded to a handful of levels. The pretrained YAMNet
does this in its last blocks: on ESC-50 clips the channel maxima of ``layer14/depthwise_conv``
range up to 557x their median (blocks 1-11: 2-3x), the int8 feature map's error reaches 29 %
of its norm, and a student built on the frozen branch lost 40 points of accuracy in int8.

The fix is a change of weights that leaves the float function as it is (Nagel et al. 2019,
"Data-Free Quantization Through Weight Equalization and Bias Correction"): where a
BatchNormalization feeds a ReLU whose output goes, through per-channel linear layers
(average pooling, a reshape that keeps the channel axis), into a depthwise convolution, a
convolution or a dense layer, channel ``i`` of the normalisation (gamma and beta) is divided by
``s_i`` and the consumer's weights that read channel ``i`` are multiplied by ``s_i``. ReLU and
pooling are positively homogeneous, so every output is unchanged.

``s_i = sqrt(a_i / w_i)`` (up to one factor per chain), with ``a_i`` the channel's maximum over
the calibration windows and ``w_i`` the largest consumer weight that reads it: the disparity
is split between activations and weights (SmoothQuant's migration strength 0.5, Xiao et al.
2023). Moving all of it onto the weights, free for a depthwise consumer whose int8 weights
have a scale per channel, did worse on the frozen YAMNet branch (test-window agreement with
the float model 0.32 vs 0.41): a channel that is small on the calibration windows and then
amplified gets clipped on clips where it is not.

Channels that stay at 0 on the calibration windows keep their weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from lean_kd._keras import keras

L = keras.layers
# Per-channel linear (or positively homogeneous) layers a scaled channel may pass through
PASS_THROUGH = (
    L.AveragePooling1D,
    L.AveragePooling2D,
    L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D,
    L.MaxPooling1D,
    L.MaxPooling2D,
    L.Reshape,
    L.Dropout,
)
CONSUMERS = (L.DepthwiseConv2D, L.Conv2D, L.Dense)  # read channel i through kernel[..., i, :]
BATCH = 32


@dataclasses.dataclass(frozen=True)
class Chain:
    """[producer ->] BatchNormalization -> ReLU -> (pass-through layers) -> consumer.

    ``producer``: the convolution or dense layer before a normalisation without ``scale``
    (YAMNet's), whose outputs are scaled instead of the missing gamma."""

    norm: keras.layers.BatchNormalization
    relu: keras.layers.Layer
    consumer: keras.layers.Layer
    producer: keras.layers.Layer | None = None


def equalize_channel_ranges(model: keras.Model, windows: Sequence[np.ndarray]) -> int:
    """Rescale ``model``'s weights in place (see the module); the number of chains rescaled.

    ``windows``: calibration inputs, each ``[1, samples]`` (as the int8 export takes them).
    """
    chains = find_chains(model)
    if not chains:
        return 0
    maxima = _channel_maxima(model, chains, windows)
    for chain, channel_max in zip(chains, maxima):
        _rescale(chain, channel_scales(chain.consumer, channel_max))
    return len(chains)


def find_chains(model: keras.Model) -> list[Chain]:
    """Every BatchNormalization -> ReLU -> ... -> consumer path that can be rescaled exactly."""
    chains = []
    for layer in model.layers:
        if not _homogeneous_relu(layer):
            continue
        norm = _only_inbound(layer)
        if not (_channels_last_norm(norm) and len(_consumers(norm)) == 1):
            continue
        producer = None if norm.scale else _only_inbound(norm)
        if producer is not None and not _scalable_producer(producer):
            continue
        consumer = _consumer_through_pass_through(layer)
        if consumer is not None:
            chains.append(Chain(norm, layer, consumer, producer))
    return chains


def channel_scales(consumer: keras.layers.Layer, channel_max: np.ndarray) -> np.ndarray:
    """``s_i`` for each input channel of ``consumer`` (geometric mean 1 over live channels)."""
    kernel = np.abs(consumer.get_weights()[0])
    weight_max = np.moveaxis(kernel, -2, 0).reshape(kernel.shape[-2], -1).max(axis=1)
    live = (channel_max > 0) & (weight_max > 0)
    scales = np.ones_like(channel_max, dtype=np.float64)
    if not live.any():
        return scales
    scales[live] = np.sqrt(channel_max[live] / weight_max[live])
    scales[live] /= np.exp(np.log(scales[live]).mean())
    return scales


def _rescale(chain: Chain, scales: np.ndarray) -> None:
    """Output channel i of the normalisation divided by ``scales[i]``, its readers multiplied.

    With gamma: gamma and beta divided. Without (``y = (x - mean) / sqrt(var + eps) + beta``):
    the producer's output ``x``, the moving mean and beta divided, the variance kept: exact,
    where changing the variance would not be (eps)."""
    # the first two weights: gamma and beta, or (no gamma) beta and the moving mean
    norm_weights = chain.norm.get_weights()
    norm_weights[0] = norm_weights[0] / scales
    norm_weights[1] = norm_weights[1] / scales
    chain.norm.set_weights([w.astype(np.float32) for w in norm_weights])
    if chain.producer is not None:
        _scale_outputs(chain.producer, 1 / scales)
    consumer_weights = chain.consumer.get_weights()
    kernel = np.moveaxis(consumer_weights[0], -2, 0)  # [in_channels, ...]
    kernel = kernel * scales.reshape(-1, *([1] * (kernel.ndim - 1)))
    consumer_weights[0] = np.moveaxis(kernel, 0, -2).astype(np.float32)
    chain.consumer.set_weights(consumer_weights)


def _scale_outputs(layer: keras.layers.Layer, factors: np.ndarray) -> None:
    """Output channel i of a convolution or dense layer (kernel and bias) times ``factors[i]``."""
    weights = layer.get_weights()
    kernel = weights[0]
    if isinstance(layer, L.DepthwiseConv2D):  # output channel c = input c // dm, multiplier c % dm
        flat = kernel.reshape(*kernel.shape[:-2], -1) * factors
        weights[0] = flat.reshape(kernel.shape)
    else:
        weights[0] = kernel * factors
    if len(weights) > 1:
        weights[1] = weights[1] * factors
    layer.set_weights([w.astype(np.float32) for w in weights])


def _scalable_producer(layer: keras.layers.Layer) -> bool:
    """A convolution or dense layer without activation whose only reader is the normalisation."""
    if not isinstance(layer, CONSUMERS) or len(_consumers(layer)) != 1:
        return False
    return layer.get_config().get("activation") == "linear" and _reads_channels_last(layer)


def _channel_maxima(
    model: keras.Model, chains: list[Chain], windows: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Each chain's ReLU output, maximum over the windows and positions, per channel."""
    probe = keras.Model(model.inputs, [chain.relu.output for chain in chains])
    batch = np.concatenate([np.asarray(w, np.float32) for w in windows], axis=0)
    maxima = [np.zeros(chain.relu.output.shape[-1]) for chain in chains]
    for start in range(0, len(batch), BATCH):
        outputs = probe(batch[start : start + BATCH], training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for i, output in enumerate(outputs):
            values = output.numpy().reshape(-1, output.shape[-1])
            maxima[i] = np.maximum(maxima[i], values.max(axis=0))
    return maxima


def _homogeneous_relu(layer: keras.layers.Layer) -> bool:
    """A ReLU with ``relu(c x) = c relu(x)`` for ``c > 0``: no cap, slope or threshold."""
    if isinstance(layer, L.ReLU):
        config = layer.get_config()
        return (
            config.get("max_value") is None
            and not config.get("negative_slope")
            and not config.get("threshold")
        )
    return isinstance(layer, L.Activation) and layer.get_config()["activation"] == "relu"


def _channels_last_norm(layer: keras.layers.Layer | None) -> bool:
    if not isinstance(layer, L.BatchNormalization) or not layer.center:
        return False
    rank = len(layer.input_shape)
    return list(layer.axis) in ([-1], [rank - 1])


def _consumer_through_pass_through(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The one weighted reader of ``layer``'s channels past per-channel layers, or None."""
    while True:
        consumers = _consumers(layer)
        if len(consumers) != 1:
            return None
        (layer,) = consumers
        if isinstance(layer, CONSUMERS):
            return layer if _reads_channels_last(layer) else None
        if not isinstance(layer, PASS_THROUGH) or not _keeps_channels(layer):
            return None


def _reads_channels_last(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, L.Dense):
        return True
    config = layer.get_config()
    return config.get("data_format", "channels_last") == "channels_last" and (
        config.get("groups", 1) == 1
    )


def _keeps_channels(layer: keras.layers.Layer) -> bool:
    """The channel axis stays last with the same size (a reshape may merge other axes)."""
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        return False
    return layer.input_shape[-1] == layer.output_shape[-1]


def _only_inbound(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        return None
    inbound = nodes[0].inbound_layers
    return inbound if isinstance(inbound, keras.layers.Layer) else None


def _consumers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return [node.outbound_layer for node in layer._outbound_nodes]
