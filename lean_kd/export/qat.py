"""Quantization-aware training: fake-quantize a student's conv/dense trunk with tfmot.

tensorflow-model-optimization annotates Conv2D, DepthwiseConv2D and Dense (and the simple
layers between them) but not LSTM, Bidirectional, MultiHeadAttention, Conv1D,
LayerNormalization or lean_kd's LogMelSpectrogram; annotating the whole model fails. So only
the trunk layers are annotated (through ``clone_model``), ``quantize_apply`` inserts the
fake-quant ops, and the converter quantizes the rest post-training when the fine-tuned model
is exported with ``export_tflite(model, quant="int8", representative=...)``, which keeps the
frontend float as for any int8 export. The fine-tune itself, with the distillation loss kept,
belongs to the Distiller: this module gives it the model to train.
"""

from __future__ import annotations

import logging

import tensorflow_model_optimization as tfmot

from lean_kd._keras import keras
from lean_kd.errors import ModelError

logger = logging.getLogger(__name__)

QAT_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def qat_layer_names(model: keras.Model) -> list[str]:
    """The layers :func:`prepare_qat` annotates, in model order."""
    return [layer.name for layer in model.layers if isinstance(layer, QAT_LAYERS)]


def prepare_qat(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with fake-quantized conv/dense layers, ready to fine-tune.

    Raises ModelError for a nested model (tfmot rejects them: build the student flat) or a
    model with no conv/dense layer. Weights are copied; the original model is not changed.
    """
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ModelError(
            f"Model {model.name!r}: QAT needs a flat model, found nested model(s) {nested}"
        )
    names = qat_layer_names(model)
    if not names:
        raise ModelError(
            f"Model {model.name!r} has no Conv2D, DepthwiseConv2D or Dense layer to train for int8"
        )

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, QAT_LAYERS):
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer.__class__.from_config(layer.get_config())

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    try:
        prepared = tfmot.quantization.keras.quantize_apply(annotated)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"Model {model.name!r}: tfmot cannot apply quantization ({exc})") from None
    logger.info("QAT: %d layers fake-quantized (%s)", len(names), ", ".join(names))
    return prepared
