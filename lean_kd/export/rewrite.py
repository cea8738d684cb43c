"""The graph the exporter converts: a copy of the Keras model with export-only layer forms.

Two rewrites, each computing the same function with the same weights (float rounding aside)
in ops that XNNPACK runs (benchmarks/results/latency_profile.md):

- LSTMs as a batched input projection and an unrolled recurrence
  (:mod:`lean_kd.export.unrolled_lstm`);
- the log-mel frontend's DFT as matrix products instead of RFFT2D + COMPLEX_ABS: two float
  FFT stages (:func:`lean_kd.audio.features.log_mel_fft`) or one DFT matrix that the exporter
  gives int8 weights (:func:`lean_kd.audio.features.log_mel_matmul`).

The model itself is left untouched: training and the Keras evaluation never see these forms.
"""

from __future__ import annotations

import contextlib
from typing import Any

from lean_kd._keras import keras
from lean_kd.audio.features import LogMelSpectrogram
from lean_kd.export.unrolled_lstm import UnrolledLSTM, unrolled_layer


def export_copy(
    model: keras.Model, *, unroll_lstms: bool = False, transform: str | None = None
) -> keras.Model:
    """``model`` rebuilt with the chosen rewrites and its weights copied over: unrolled LSTMs,
    and ``transform`` (:data:`lean_kd.audio.features.TRANSFORMS`; None: each layer's own) in
    every log-mel layer. Without rewrites: a copy whose weights can change on their own."""

    def copy_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        unrolled = unrolled_layer(layer) if unroll_lstms else None
        if unrolled is not None:
            return unrolled
        config = layer.get_config()
        if isinstance(layer, LogMelSpectrogram) and transform is not None:
            config["transform"] = transform
        return layer.__class__.from_config(config)

    with _quantization_scope(model):
        copy = keras.models.clone_model(model, clone_function=copy_layer)
    copy.set_weights(model.get_weights())
    return copy


def _quantization_scope(model: keras.Model) -> Any:
    """tfmot's custom-object scope for a QAT model (its wrappers rebuild from config in it)."""
    modules = (type(m).__module__ for m in model.submodules)
    if not any(name.startswith("tensorflow_model_optimization") for name in modules):
        return contextlib.nullcontext()
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras.quantize_scope()


def unrolled_layers(model: keras.Model) -> list[str]:
    """Names of the model's :class:`UnrolledLSTM` layers."""
    return [m.name for m in model.submodules if isinstance(m, UnrolledLSTM)]


def transform_scopes(model: keras.Model, transform: str) -> list[str]:
    """``<layer>/<transform>`` of each log-mel layer computing its spectrum by ``transform``
    ("dft" or "fft"): the scope of those ops in the converted graph."""
    return [
        f"{m.name}/{transform}"
        for m in model.submodules
        if isinstance(m, LogMelSpectrogram) and m.transform == transform
    ]
