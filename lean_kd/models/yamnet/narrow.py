"""Pretrained weights for a narrower YAMNet: the official backbone's strongest channels.

No AudioSet weights exist for YAMNet at a width multiplier below 1 (``lean_tiny`` uses 0.5).
Random init leaves such a model nothing to start from on a few clips per class (ESC-50 dev:
lean_tiny distilled from random init scored 0.01 accuracy). Instead each convolution keeps the
output channels whose filters are strongest, measured as the L1 norm of the filter divided by
the batch norm's standard deviation (the size of the channel's normalised pre-activation per
unit of input), and the next layer reads only those channels: depthwise convolutions keep the
channels they are fed, pointwise and full convolutions drop the input rows of removed channels.
This is magnitude-based structured pruning used as an initialisation; the network is then
trained (distilled) at its new width. The 521-class head, when the weights have it, keeps
the rows of the last layer's kept channels, so a narrow YAMNet still scores AudioSet classes.
"""

from __future__ import annotations

import numpy as np

from lean_kd.errors import ModelError
from lean_kd.models.yamnet.network import BATCHNORM_EPSILON, HEAD_NAME, conv_layer_names
from lean_kd.models.yamnet.tflite_weights import Weights


def narrow_weights(weights: Weights, widths: dict[str, int]) -> Weights:
    """``weights`` of the full backbone cut to ``widths`` (each convolution layer's output
    channels in the narrow model), keeping the strongest channels of every layer.

    Raises ModelError when a width is above the file's or a layer is missing.
    """
    narrowed: Weights = {}
    kept: np.ndarray | None = None  # the previous layer's kept output channels
    for layer, kind, _ in conv_layer_names():
        if layer not in weights or f"{layer}/bn" not in weights:
            raise ModelError(f"Pretrained weights have no {layer} (and its batch norm) to narrow")
        kernel = weights[layer][0]
        beta, mean, variance = weights[f"{layer}/bn"]
        if kept is not None:  # the input channels the previous layer kept
            kernel = kernel[:, :, kept, :]
        if kind == "depthwise":  # one filter per input channel: its channels follow the input
            channels = kept if kept is not None else np.arange(kernel.shape[2])
            if kept is not None:
                beta, mean, variance = beta[kept], mean[kept], variance[kept]
        else:
            width = widths[layer]
            if width > kernel.shape[-1]:
                raise ModelError(
                    f"{layer}: the narrow model wants {width} channels, the weights have "
                    f"{kernel.shape[-1]}"
                )
            strength = np.abs(kernel).sum(axis=(0, 1, 2)) / np.sqrt(variance + BATCHNORM_EPSILON)
            channels = np.sort(np.argsort(-strength, kind="stable")[:width])
            kernel = kernel[..., channels]
            beta, mean, variance = beta[channels], mean[channels], variance[channels]
        narrowed[layer] = [kernel]
        narrowed[f"{layer}/bn"] = [beta, mean, variance]
        kept = channels
    if HEAD_NAME in weights:  # the head reads the last layer's kept channels
        kernel, *bias = weights[HEAD_NAME]
        narrowed[HEAD_NAME] = [kernel[kept], *bias]
    return narrowed
