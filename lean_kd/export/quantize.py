"""Converter settings per quantization mode, and full int8 with the log-mel frontend in float.

Modes (weights / activations):

    float32   float / float
    float16   float16 weights, dequantized at load / float
    dynamic   int8 weights / float, int8 matmuls computed on the fly (no calibration): every
              CONV_2D and FULLY_CONNECTED weight per-channel int8, the frontend, depthwise
              convs and attention products float, LSTMs and DFT as ``lstm`` / ``dft`` say;
              the official YAMNet file's form, which XNNPACK runs as dynamically quantized
              int8 GEMMs (lean_kd.export.hybrid.hybridize_weights)
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
model as the converter would. The same mechanism keeps chosen op types float (``float_ops``)
and the LSTMs (``lstm``, :data:`LSTM_MODES`): by default they are kept float by the converter
and then given int8 weights (:mod:`lean_kd.export.hybrid`), because the integer LSTM
kernel is both slow and lossy on raw waveform patches (the tone test model: top-1 agreement
0.92 and max score difference 0.99 with int8 LSTMs, 1.0 and < 0.02 with float ones).

Integer LSTMs (``lstm="int8"``) need two more things (measured on LEAN trained on the synthetic
data: top-1 agreement with Keras 0.19 -> 0.975, mAP 0.877 -> 0.876 instead of 0.49; see
benchmarks/results/export.md). The quantizer gives every CONCATENATION one scale for its inputs
and output and pushes it back onto the ops that feed it, but the int8 LSTM kernel writes its
output in the quantization of its hidden-state variable and REVERSE_V2 copies bytes without
rescaling: their output tensors end up labelled with a scale their bytes are not in (a BiLSTM's
output read at 8x its value). So CONCATENATION stays float in models with LSTMs
(:data:`LSTM_FLOAT_OPS`; it has no weights) and :func:`repair_scales` relabels such outputs with
the scale their bytes are in. XNNPACK refuses int8 concatenations of inputs with different
scales, which is why relabelling alone is not enough.

Size: per-channel quantization stores a float32 scale and an int64 zero point per output
channel of every weight and bias tensor (LEAN: 0.28 MB); :func:`share_quantization_vectors`
stores identical vectors (the all-zero zero points) once.
"""

from __future__ import annotations

import copy
import io
import logging
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from lean_kd._keras import keras, tf
from lean_kd.audio.features import LogMelSpectrogram
from lean_kd.errors import ConfigError, ExportError
from lean_kd.export.modes import CALIBRATED_MODES, DFT_MODES, LSTM_MODES, QUANT_MODES
from lean_kd.export.ops import FUSED_LSTM
from lean_kd.models.yamnet.layers import WaveformPadding
from lean_kd_runtime.tflite_graph import OP_NAMES, operator_name

logger = logging.getLogger(__name__)

LSTM_FLOAT_OPS = ("CONCATENATION",)  # kept float under int8 in models with LSTMs (see module)
# Kept float with unrolled LSTMs: the debugger quantizes these multi-output / many-input ops
# even when their nodes are denylisted.
UNROLLED_FLOAT_OPS = ("SPLIT", "UNPACK", "PACK")
# Ops whose int8 kernels copy bytes without rescaling: the output is in the input's scale.
BYTE_COPY_OPS = frozenset(
    {"RESHAPE", "REVERSE_V2", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "GATHER", "SLICE"}
)
LSTM_HIDDEN_STATE_INPUT = 18  # UNIDIRECTIONAL_SEQUENCE_LSTM input: the output-state variable
DatasetFn = Callable[[], Iterator[dict]]


def check_mode(
    quant: str,
    model: keras.Model,
    float_ops: tuple[str, ...] = (),
    lstm: str = "auto",
    dft: str = "fft",
) -> None:
    """Raise for an unknown mode, op name, LSTM or DFT mode, or for int16x8 with LSTM layers."""
    if quant not in QUANT_MODES:
        raise ConfigError(
            f"Unknown quantization mode {quant!r}; expected one of {list(QUANT_MODES)}"
        )
    if lstm not in LSTM_MODES:
        raise ConfigError(f"Unknown LSTM mode {lstm!r}; expected one of {list(LSTM_MODES)}")
    if dft not in DFT_MODES:
        raise ConfigError(f"Unknown DFT mode {dft!r}; expected one of {list(DFT_MODES)}")
    unknown = [op for op in float_ops if op not in OP_NAMES.values()]
    if unknown:
        raise ConfigError(
            f"Unknown TFLite op type(s) {unknown} in float_ops; "
            "expected builtin names such as SOFTMAX"
        )
    if quant == "dynamic" and lstm == "int8":
        raise ConfigError("lstm 'int8' needs quant 'int8'; dynamic keeps activations float")
    if FUSED_LSTM in float_ops:
        raise ConfigError(f"Keep LSTMs float with lstm='float', not float_ops=[{FUSED_LSTM!r}]")
    if quant == "int16x8" and lstm_directions(model):
        raise ExportError(f"int16x8 is not supported for {FUSED_LSTM} (tensorflow#59626); use int8")


def configure(converter: tf.lite.TFLiteConverter, quant: str, dataset: DatasetFn | None) -> None:
    """Set ``converter`` up for ``quant``: builtin ops only, never SELECT_TF_OPS.

    ``dataset`` is the representative dataset the calibrated modes need.
    """
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins]
    if quant in ("float32", "dynamic"):  # dynamic: int8 weights set after converting in float
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


def int8_float_ops(
    model: keras.Model, requested: tuple[str, ...] = (), lstm: str = "hybrid"
) -> tuple[str, ...]:
    """Op types the converter keeps float under int8: ``requested``, and with LSTMs
    :data:`LSTM_FLOAT_OPS` plus the LSTMs themselves unless ``lstm`` is ``"int8"`` (hybrid
    LSTMs get int8 weights after conversion: :mod:`lean_kd.export.hybrid`); unrolled
    LSTMs have no fused op (:mod:`lean_kd.export.unrolled_lstm`) and need neither."""
    extra: tuple[str, ...] = ()
    if lstm_directions(model) and lstm == "unrolled":
        extra = UNROLLED_FLOAT_OPS
    elif lstm_directions(model):
        extra = LSTM_FLOAT_OPS if lstm == "int8" else (FUSED_LSTM, *LSTM_FLOAT_OPS)
    return tuple(dict.fromkeys((*requested, *extra)))


def repair_scales(model: bytes) -> tuple[bytes, list[str]]:
    """``model`` with each quantized tensor labelled with the scale its bytes are in.

    Relabels the output of an int8 LSTM with its hidden state's quantization and the output of
    a byte-copy op (:data:`BYTE_COPY_OPS`) with its input's, in execution order so that a
    chain is followed. Returns the model (unchanged bytes when nothing differed) and the
    names of the relabelled tensors.
    """
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    codes = [operator_name(c) for c in unpacked.operatorCodes]
    tensors = unpacked.subgraphs[0].tensors
    relabelled = []
    for op in unpacked.subgraphs[0].operators:
        name = codes[op.opcodeIndex]
        if name == FUSED_LSTM:
            source = op.inputs[LSTM_HIDDEN_STATE_INPUT]
        elif name in BYTE_COPY_OPS:
            source = op.inputs[0]
        else:
            continue
        wanted, target = tensors[source], tensors[op.outputs[0]]
        comparable = _quantized(wanted) and _quantized(target) and wanted.type == target.type
        if comparable and not _same_quantization(wanted.quantization, target.quantization):
            target.quantization = copy.deepcopy(wanted.quantization)
            relabelled.append(_decode(target.name))
    if not relabelled:
        return model, []
    logger.info("Relabelled the quantization of %d tensor(s): %s", len(relabelled), relabelled)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), relabelled


def share_quantization_vectors(model: bytes) -> bytes:
    """``model`` with each distinct quantization vector stored once (same graph, fewer bytes).

    The zero points of per-channel weights and biases are all 0: pointing every tensor at one
    shared vector per length saves ~8 bytes per channel (default LEAN: 23,188 channels,
    4.78 -> 4.61 MB). Flatbuffers allow shared sub-objects; a trailing archive of associated
    files (:mod:`lean_kd.export.metadata`) is kept.
    """
    flatbuffer, archive = _split_archive(model)
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flatbuffer, 0))
    builder = flatbuffers.Builder(len(flatbuffer))
    vectors = _SharedVectors(builder)
    for graph in unpacked.subgraphs:
        for tensor in graph.tensors:
            if tensor.quantization is not None and tensor.quantization.details is None:
                tensor.quantization = _SharedQuantization(tensor.quantization, vectors)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()) + archive


_VECTOR_FIELDS = {  # QuantizationParameters vector field -> (element type, table adder)
    "min": (np.float32, schema.QuantizationParametersAddMin),
    "max": (np.float32, schema.QuantizationParametersAddMax),
    "scale": (np.float32, schema.QuantizationParametersAddScale),
    "zeroPoint": (np.int64, schema.QuantizationParametersAddZeroPoint),
}


class _SharedVectors:
    """Vectors written to ``builder`` once per distinct content."""

    def __init__(self, builder: flatbuffers.Builder) -> None:
        self.builder = builder
        self.offsets: dict[tuple[str, bytes], int] = {}

    def offset(self, values: Any, dtype: type) -> int:
        array = np.ascontiguousarray(values, dtype=dtype)
        key = (array.dtype.str, array.tobytes())
        if key not in self.offsets:
            self.offsets[key] = self.builder.CreateNumpyVector(array)
        return self.offsets[key]


class _SharedQuantization:
    """Packs like ``QuantizationParametersT`` but takes its vectors from :class:`_SharedVectors`."""

    def __init__(self, params: schema.QuantizationParametersT, vectors: _SharedVectors) -> None:
        self.params, self.vectors = params, vectors

    def Pack(self, builder: flatbuffers.Builder) -> int:  # the name flatbuffers calls
        fields = {
            name: (self.vectors.offset(getattr(self.params, name), dtype), add)
            for name, (dtype, add) in _VECTOR_FIELDS.items()
            if getattr(self.params, name) is not None
        }
        schema.QuantizationParametersStart(builder)
        for offset, add in fields.values():
            add(builder, offset)
        schema.QuantizationParametersAddQuantizedDimension(builder, self.params.quantizedDimension)
        return schema.QuantizationParametersEnd(builder)


def _split_archive(model: bytes) -> tuple[bytes, bytes]:
    """``(flatbuffer, trailing zip archive or b"")``: zipfile reports where an appended archive
    starts (its member offsets are shifted by the bytes before it)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            start = min((info.header_offset for info in archive.infolist()), default=len(model))
    except zipfile.BadZipFile:
        return model, b""
    return model[:start], model[start:]


def _quantized(tensor: schema.TensorT) -> bool:
    q = tensor.quantization
    return q is not None and q.scale is not None and len(q.scale) > 0


def _same_quantization(
    a: schema.QuantizationParametersT, b: schema.QuantizationParametersT
) -> bool:
    return np.array_equal(a.scale, b.scale) and np.array_equal(a.zeroPoint, b.zeroPoint)


def _decode(name: bytes | str | None) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def layer_nodes(model: bytes, layer_names: list[str]) -> list[str]:
    """Output tensor names of the ops that belong to the named layers.

    TFLite names an op's output after the TF ops it came from (``model/log_mel/stft/rfft``,
    fused ops as ``a;b``), so an op belongs to a layer when whole path segments spell its name
    (``wave_encoder/patches`` in ``lean/wave_encoder/patches/Reshape``).
    """
    wanted = [f"/{name}/" for name in layer_names]
    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    names = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        for j in range(op.OutputsLength()):
            name = graph.Tensors(op.Outputs(j)).Name().decode()
            parts = [f"/{part}/" for part in name.split(";")]
            if any(w in part for w in wanted for part in parts):
                names.append(name)
    return names


def frontend_layers(model: keras.Model) -> list[str]:
    """Names of the layers that carry the waveform into features, kept float under int8.

    The log-mel layers, and the layers that only pad or reshape a waveform input (YAMNet's
    ``waveform_padding``, LEAN's ``wave_encoder/patches``): quantized, these turned the audio
    into int8 samples (a step of 0.007 for [-1, 1]) before the float log-mel or the hybrid
    LSTMs. Nested models included.
    """
    inputs = {
        id(t) for m in (model, *model.submodules) if isinstance(m, keras.Model) for t in m.inputs
    }
    names = []
    for layer in model.submodules:
        if isinstance(layer, (LogMelSpectrogram, WaveformPadding)):
            names.append(layer.name)
        elif isinstance(layer, keras.layers.Reshape) and _consumes(layer, inputs):
            names.append(layer.name)
    return names


def _consumes(layer: keras.layers.Layer, tensors: set[int]) -> bool:
    """Whether every call of ``layer`` takes one of ``tensors`` (by identity) as its input."""
    nodes = getattr(layer, "_inbound_nodes", [])
    return bool(nodes) and all(
        len(node.keras_inputs) == 1 and id(node.keras_inputs[0]) in tensors for node in nodes
    )


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
