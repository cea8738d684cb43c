"""Quantization-aware training with the distillation loss kept, then a full int8 export.

The student is fine-tuned with fake-quantized weights and activations by the same
:class:`~lean_kd.distill.distiller.Distiller` that distilled it, with the recipe's loss: the
student keeps learning from the teacher (online, or from the teacher cache) while it learns to
live with int8 rounding, instead of fitting only the hard labels of a usually small dataset.

What is fake-quantized (tfmot 0.8.1, default 8-bit scheme): the conv/dense trunk, i.e. the
Conv2D, DepthwiseConv2D and Dense layers and the simple layers between them
(:func:`qat_layer_names`). tfmot cannot annotate LSTM, Bidirectional, MultiHeadAttention,
Conv1D, LayerNormalization or lean_kd's LogMelSpectrogram (maintainers: no plans for LSTM),
and annotating the whole model fails; so those layers stay as they are, and the converter
quantizes them post-training: the QAT model is exported with ``export_tflite(model,
quant="int8", representative=...)``. The converter sees the FakeQuant ops, takes their
trained ranges for the trunk and calibrates every other tensor on the representative
waveforms, so the calibration data is still required. The log-mel frontend stays float, as
for any int8 export (:mod:`lean_kd.export.quantize`). On LEAN this fake-quantizes YAMNet's
convolutions and the dense layers; the BiLSTMs and the cross-attention are quantized by the
converter. Nested models are rejected by tfmot: build students flat (the zoo's are).

A fine-tune leaves a run folder as :func:`lean_kd.training.trainer.fit` does (``best.keras``: the QAT
student with the best validation ``monitor``, measured with fake quantization; ``final.keras``;
``history.csv``); :func:`load_qat_model` reads them back onto the float student's QAT graph
(the ``.keras`` files cannot be loaded on their own, see there).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow_model_optimization as tfmot

from lean_kd._keras import keras, tf
from lean_kd.config import TrainingSection
from lean_kd.data.pipeline import AudioPipeline, CropTable
from lean_kd.distill.distiller import Distiller
from lean_kd.distill.losses import Loss
from lean_kd.errors import ConfigError, ModelError
from lean_kd.training.trainer import fit

logger = logging.getLogger(__name__)

L = keras.layers
WEIGHT_LAYERS = (L.Conv2D, L.DepthwiseConv2D, L.Dense)  # fake-quantized weights
CONV_LAYERS = (L.Conv2D, L.DepthwiseConv2D)
# Layers between weight layers that tfmot's default 8-bit scheme supports; they join the trunk
# only when every input comes from the trunk (a Reshape of the waveform would make tfmot
# fake-quantize the model input, which the log-mel frontend and the LSTMs also read).
BETWEEN_LAYERS = (
    L.ReLU,
    L.Add,
    L.AveragePooling2D,
    L.GlobalAveragePooling2D,
    L.MaxPooling2D,
    L.Flatten,
    L.Reshape,
    L.Dropout,
)
QUANTIZED_ACTIVATIONS = ("relu", "relu6", "linear")  # Activation layers tfmot can fake-quantize
RANGE_KEYS = ("output", "post_activation")  # tfmot's activation range variables: <key>_min/max
RANGE_BATCHES = 8  # batches that set the activation ranges before the fine-tune
DEFAULT_LEARNING_RATE_FACTOR = 0.1  # QAT fine-tunes at a tenth of the recipe's learning rate


def qat_layer_names(model: keras.Model) -> list[str]:
    """The layers :func:`prepare_qat` fake-quantizes, in model order: every Conv2D,
    DepthwiseConv2D and Dense layer, a BatchNormalization right after a convolution (tfmot
    folds the pair), and the :data:`BETWEEN_LAYERS` and ReLU-like Activation layers fed only
    by such layers."""
    trunk: dict[str, bool] = {}

    def in_trunk(layer: keras.layers.Layer) -> bool:
        if layer.name not in trunk:
            parents = _inbound_layers(layer)
            if isinstance(layer, WEIGHT_LAYERS):
                trunk[layer.name] = True
            elif isinstance(layer, L.BatchNormalization):
                trunk[layer.name] = len(parents) == 1 and isinstance(parents[0], CONV_LAYERS)
            else:
                between = isinstance(layer, BETWEEN_LAYERS) or (
                    isinstance(layer, L.Activation)
                    and getattr(layer.activation, "__name__", "") in QUANTIZED_ACTIVATIONS
                )
                trunk[layer.name] = between and bool(parents) and all(map(in_trunk, parents))
        return trunk[layer.name]

    return [layer.name for layer in model.layers if in_trunk(layer)]


def _inbound_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return [
        parent for node in layer.inbound_nodes for parent in tf.nest.flatten(node.inbound_layers)
    ]


def prepare_qat(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with a fake-quantized conv/dense trunk, ready to fine-tune.

    Raises ModelError for a nested model (tfmot rejects them: build the student flat) or a
    model with no conv/dense layer. Weights are copied; the original model is not changed.
    """
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ModelError(
            f"Model {model.name!r}: QAT needs a flat model, found nested model(s) {nested}"
        )
    if not any(isinstance(layer, WEIGHT_LAYERS) for layer in model.layers):
        raise ModelError(
            f"Model {model.name!r} has no Conv2D, DepthwiseConv2D or Dense layer to train for int8"
        )

    names = set(qat_layer_names(model))

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in names:
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer.__class__.from_config(layer.get_config())

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    try:
        prepared = tfmot.quantization.keras.quantize_apply(annotated)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"Model {model.name!r}: tfmot cannot apply quantization ({exc})") from None
    logger.info("QAT: %d trunk layers fake-quantized", len(names))
    return prepared


def set_activation_ranges(
    qat_model: keras.Model, model: keras.Model, batches: Iterable[tf.Tensor]
) -> int:
    """Start each fake-quantized activation range at the float ``model``'s range on ``batches``.

    tfmot starts every activation range at [-6, 6] and moves it by an exponential moving
    average with decay 0.999, i.e. over thousands of steps; a fine-tune of a few hundred
    steps would keep ranges far too wide (coarse int8 steps) or clip. The range of a layer's
    output in the float model (widened to contain 0, as tfmot does) is the range its
    fake-quantized copy would converge to. ``batches`` are waveforms ``[B, samples]``.
    Returns the number of ranges set.
    """
    ranges = {}  # float layer name -> (min variable, max variable)
    for layer in qat_model.layers:
        variables = {v.name.split("/")[-1].split(":")[0]: v for v in layer.non_trainable_variables}
        for key in RANGE_KEYS:
            if f"{key}_min" in variables and hasattr(layer, "layer"):
                ranges[layer.layer.name] = (variables[f"{key}_min"], variables[f"{key}_max"])
    if not ranges:
        return 0
    probe = keras.Model(model.input, [model.get_layer(name).output for name in ranges])
    low = np.zeros(len(ranges), np.float32)
    high = np.zeros(len(ranges), np.float32)
    for batch in batches:
        outputs = probe(batch, training=False)
        low = np.minimum(low, [float(tf.reduce_min(o)) for o in outputs])
        high = np.maximum(high, [float(tf.reduce_max(o)) for o in outputs])
    for (min_var, max_var), lo, hi in zip(ranges.values(), low, high):
        min_var.assign(np.full(min_var.shape, lo, np.float32))
        max_var.assign(np.full(max_var.shape, hi, np.float32))
    logger.debug("QAT: %d activation ranges set from the float model", len(ranges))
    return len(ranges)


def load_qat_model(path: str | Path, student: keras.Model) -> keras.Model:
    """The QAT checkpoint ``path`` that :func:`qat_finetune` wrote for the float ``student``.

    tfmot's wrappers cannot be deserialised from ``.keras`` files (the wrapped layer is built
    twice and the variable counts differ: tensorflow/model-optimization#1123), so the QAT
    graph is rebuilt from ``student`` with :func:`prepare_qat` and the weights are loaded.
    """
    model = prepare_qat(student)
    load_qat_weights(model, path)
    return model


def load_qat_weights(model: keras.Model, path: str | Path) -> None:
    """Load a QAT checkpoint's weights into ``model``; ModelError when they do not fit."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"QAT checkpoint {path} does not exist")
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"QAT checkpoint {path} does not fit model {model.name!r} ({first_line}); "
            "expected a checkpoint of this student's QAT fine-tune"
        ) from None


def qat_training(
    training: TrainingSection, *, epochs: int, learning_rate: float | None = None
) -> TrainingSection:
    """The recipe's training settings for a QAT fine-tune: ``epochs``, no warm-up, and
    ``learning_rate`` (default: a tenth of the recipe's; the student is already trained)."""
    rate = training.learning_rate * DEFAULT_LEARNING_RATE_FACTOR
    return dataclasses.replace(
        training,
        epochs=epochs,
        learning_rate=rate if learning_rate is None else learning_rate,
        warmup_epochs=0.0,
    )


def qat_finetune(
    student: keras.Model,
    loss: Loss,
    pipeline: AudioPipeline,
    training: TrainingSection,
    run_dir: str | Path,
    *,
    teacher: keras.Model | None = None,
    crops: CropTable | None = None,
    val_crops: CropTable | None = None,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int | str = "auto",
) -> keras.Model:
    """Fine-tune a fake-quantized copy of ``student`` with ``loss``; the best QAT model.

    The teacher term of ``loss`` comes from ``teacher`` (run online) or from ``crops`` /
    ``val_crops`` (the teacher cache's :meth:`~lean_kd.distill.teacher_cache.TeacherCache.
    crop_table` of the train / val splits). ``training`` sets epochs and learning rate (see
    :func:`qat_training`). Checkpoints go to ``run_dir`` (see the module docstring). Export
    the result with ``export_tflite(model, quant="int8", representative=...)``. The QAT copy
    is made in ``strategy``'s scope (default: the current one), where ``teacher`` was loaded.
    """
    if loss.needs_teacher and teacher is None and crops is None:
        raise ConfigError(
            "The distillation loss needs a teacher during QAT: pass a teacher model or the "
            "teacher cache's crops"
        )
    with (strategy or tf.distribute.get_strategy()).scope():
        prepared = prepare_qat(student)
        calibration = pipeline.dataset("train", training=False).take(RANGE_BATCHES)
        set_activation_ranges(prepared, student, (inputs["waveform"] for inputs, _ in calibration))
        distiller = Distiller(prepared, loss, teacher)
    result = fit(
        distiller,
        pipeline,
        training,
        Path(run_dir),
        multi_label=pipeline.index.multi_label,
        crops=crops,
        val_crops=val_crops,
        verbose=verbose,
    )
    logger.info("QAT fine-tune: %d epochs, best checkpoint %s", result.epochs_run, result.best_path)
    load_qat_weights(prepared, result.best_path)
    return prepared
