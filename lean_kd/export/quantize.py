"""Converter settings per quantization mode, and full int8 with the log-mel frontend in float.

Modes (weights / activations):

    float32   float / float
    float16   float16 weights, dequantized at load / float
    dynamic   int8 weights / float, int8 matmuls computed on the fly (no calibration)
    int8      int8 / int8 (calibrated); input and output stay float32: MediaPipe rejects
              int8 outputs and the device code feeds a float waveform
    int16x8   int8 / int16 (calibrated); RFFT2D and COMPLEX_ABS have no 16x8 kernels and stay
              float. Fused LSTMs have none either (tensorflow#59626): refused before converting.

Why the frontend stays float under int8: full int8 quantizes the mel energies with one
calibrated scale before the LOG, so every band below one quantization step collapses to the
same value at any input level (log-mel mean error ~2 in natural-log units; a small log-mel
CNN's top-1 agreement with its Keras model drops from 1.0 to 0.35:
benchmarks/results/export_frontend.md). The ops of every LogMelSpectrogram layer are
denylisted with TFLite's QuantizationDebugger, which quantizes the rest of the calibrated
model as the converter would. The same mechanism keeps chosen op types float
(``float_ops``): an int8 LSTM over raw waveform patches can lose much more than the rest of
the model (the tone test model: top-1 agreement 0.93 on normal and 0.33 on quiet input with
int8 LSTMs, 1.0 with ``float_ops=("UNIDIRECTIONAL_SEQUENCE_LSTM",)``), at the cost of the
LSTM weights' float size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from ai_edge_litert import schema_py_generated as schema

from lean_kd._keras import keras, tf
from lean_kd.audio.features import LogMelSpectrogram
from lean_kd.errors import ConfigError, ExportError
from lean_kd.export.ops import FUSED_LSTM, OP_NAMES

logger = logging.getLogger(__name__)

QUANT_MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
CALIBRATED_MODES = ("int8", "int16x8")
DatasetFn = Callable[[], Iterator[dict]]


def check_mode(quant: str, model: keras.Model, float_ops: tuple[str, ...] = ()) -> None:
    """Raise for an unknown mode or op name, or for int16x8 on a model with LSTM layers."""
    if quant not in QUANT_MODES:
        raise ConfigError(
            f"Unknown quantization mode {quant!r}; expected one of {list(QUANT_MODES)}"
        )
    unknown = [op for op in float_ops if op not in OP_NAMES.values()]
    if unknown:
        raise ConfigError(
            f"Unknown TFLite op type(s) {unknown} in float_ops; "
            f"expected builtin names such as {FUSED_LSTM}"
        )
    if quant == "int16x8" and lstm_directions(model):
        raise ExportError(f"int16x8 is not supported for {FUSED_LSTM} (tensorflow#59626); use int8")


def configure(converter: tf.lite.TFLiteConverter, quant: str, dataset: DatasetFn | None) -> None:
    """Set ``converter`` up for ``quant``: builtin ops only, never SELECT_TF_OPS.

    ``dataset`` is the representative dataset the calibrated modes need.
    """
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins]
    if quant == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quant in CALIBRATED_MODES:
        converter.representative_dataset = dataset
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
        converter.target_spec.supported_ops = (
            [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if quant == "int8"
            else [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                builtins,
            ]
        )


def int8_with_float_parts(
    converter: tf.lite.TFLiteConverter,
    dataset: DatasetFn,
    *,
    layers: list[str],
    ops: tuple[str, ...] = (),
) -> bytes:
    """Full int8 except the ops of the named layers and the named op types, which stay float.

    ``converter`` must be configured for int8. The debugger calibrates once; the layers'
    node names are read from the calibrated model, then their ops are denylisted. ``ops`` are
    TFLite builtin names such as ``UNIDIRECTIONAL_SEQUENCE_LSTM``.
    """
    debug = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset)
    nodes = layer_nodes(debug.calibrated_model, layers)
    if layers and not nodes:
        raise ExportError(f"No ops of the layer(s) {layers} found in the calibrated model")
    logger.debug("Keeping in float: %d ops of %s, op types %s", len(nodes), layers, list(ops))
    debug.options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=nodes or None, denylisted_ops=list(ops) or None
    )
    return debug.get_nondebug_quantized_model()


def layer_nodes(model: bytes, layer_names: list[str]) -> list[str]:
    """Output tensor names of the ops that belong to the named layers.

    TFLite names an op's output after the TF ops it came from (``model/log_mel/stft/rfft``,
    fused ops as ``a;b``), so an op belongs to a layer when a path segment equals its name.
    """
    wanted = set(layer_names)
    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    names = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        for j in range(op.OutputsLength()):
            name = graph.Tensors(op.Outputs(j)).Name().decode()
            segments = {s for part in name.split(";") for s in part.split("/")}
            if segments & wanted:
                names.append(name)
    return names


def frontend_layers(model: keras.Model) -> list[str]:
    """Names of the LogMelSpectrogram layers in ``model`` (nested models included)."""
    return [m.name for m in model.submodules if isinstance(m, LogMelSpectrogram)]


def lstm_directions(model: keras.Model) -> int:
    """LSTM layers in ``model``, a Bidirectional LSTM counting two (one fused op each)."""
    modules = model.submodules
    wrapped = {
        id(layer)
        for m in modules
        if isinstance(m, keras.layers.Bidirectional)
        for layer in (m.forward_layer, m.backward_layer, m.layer)
    }
    count = sum(
        2
        for m in modules
        if isinstance(m, keras.layers.Bidirectional) and isinstance(m.layer, keras.layers.LSTM)
    )
    return count + sum(
        1 for m in modules if isinstance(m, keras.layers.LSTM) and id(m) not in wrapped
    )
