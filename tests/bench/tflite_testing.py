"""Test helpers: convert tiny Keras models to TFLite, and attach audio metadata to a TFLite file.

Imported by tests/bench and tests/export (``from bench.tflite_testing import ...``; tests/ is on
sys.path through the root conftest). The metadata writer is deliberately minimal: it writes
the fields the readers use (AudioProperties on input 0, a TENSOR_AXIS_LABELS file on output 0)
following tflite-support's metadata_schema.fbs, and packs the label file in a zip appended to
the model as the metadata populator does. It was checked once against MediaPipe's generated
``metadata_schema_py_generated`` reader.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from lean_kd._keras import keras, tf

AUDIO_PROPERTIES = 4
TENSOR_AXIS_LABELS = 2


def convert(model: keras.Model) -> bytes:
    """Float32 TFLite flatbuffer of a Keras model (builtin ops only)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _table(builder: flatbuffers.Builder, slots: int, fields: dict[int, tuple[str, object]]) -> int:
    builder.StartObject(slots)
    for slot, (kind, value) in sorted(fields.items(), reverse=True):
        getattr(builder, f"Prepend{kind}Slot")(slot, value, 0)
    return builder.EndObject()


def _vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def metadata_flatbuffer(
    *, sample_rate_hz: int, channels: int = 1, label_file: str | None = None
) -> bytes:
    """A ModelMetadata flatbuffer ("M001") with AudioProperties and an optional label file."""
    b = flatbuffers.Builder(256)
    audio = _table(b, 2, {0: ("Uint32", sample_rate_hz), 1: ("Uint32", channels)})
    content = _table(b, 3, {0: ("Uint8", AUDIO_PROPERTIES), 1: ("UOffsetTRelative", audio)})
    input_meta = _table(
        b,
        7,
        {0: ("UOffsetTRelative", b.CreateString("waveform")), 3: ("UOffsetTRelative", content)},
    )
    output_fields = {0: ("UOffsetTRelative", b.CreateString("scores"))}
    if label_file is not None:
        name = b.CreateString(label_file)
        associated = _table(b, 5, {0: ("UOffsetTRelative", name), 2: ("Int8", TENSOR_AXIS_LABELS)})
        output_fields[6] = ("UOffsetTRelative", _vector(b, [associated]))
    output_meta = _table(b, 7, output_fields)
    subgraph = _table(
        b,
        10,
        {
            2: ("UOffsetTRelative", _vector(b, [input_meta])),
            3: ("UOffsetTRelative", _vector(b, [output_meta])),
        },
    )
    root = _table(
        b,
        8,
        {
            0: ("UOffsetTRelative", b.CreateString("test model")),
            3: ("UOffsetTRelative", _vector(b, [subgraph])),
            7: ("UOffsetTRelative", b.CreateString("1.3.0")),
        },
    )
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def attach_metadata(model: bytes, *, sample_rate_hz: int, labels: list[str] | None = None) -> bytes:
    """``model`` with a TFLITE_METADATA buffer and, with ``labels``, a zipped labels.txt appended."""
    label_file = "labels.txt" if labels is not None else None
    meta = metadata_flatbuffer(sample_rate_hz=sample_rate_hz, label_file=label_file)
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(meta, dtype=np.uint8)
    unpacked.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(unpacked.buffers) - 1
    unpacked.metadata = (unpacked.metadata or []) + [entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    packed = bytes(builder.Output())
    if labels is None:
        return packed
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("labels.txt", "\n".join(labels) + "\n")
    return packed + archive.getvalue()


def with_input(model: bytes, *, shape: list[int] | None = None, dtype: int | None = None) -> bytes:
    """``model`` with its input tensor's declared shape or type changed (to test input checks).

    The result loads in the interpreter (its input details are read before any kernel is
    prepared), which is all a check of the input signature needs.
    """
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    graph = unpacked.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    if shape is not None:
        tensor.shape = np.array(shape, dtype=np.int32)
        tensor.shapeSignature = np.array(shape, dtype=np.int32)
    if dtype is not None:
        tensor.type = dtype
    builder = flatbuffers.Builder(1024)
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# MACs of each op of bench_model_tflite, worked out by hand from the layer shapes below.
EXPECTED_MACS = {
    "FULLY_CONNECTED": 40 * 8 * 400,  # [1, 40, 400] @ [400, 8]
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 40 * 4 * 4 * (8 + 4),  # 40 steps, 4 gates, 4 units, 8 inputs
    "CONV_2D": 98 * 158 * 4 * 3 * 3 * 1,  # [1, 100, 160, 1] -> [1, 98, 158, 4], 3x3 kernel
    "DEPTHWISE_CONV_2D": 96 * 156 * 4 * 3 * 3,  # -> [1, 96, 156, 4], 3x3 kernel
    "BATCH_MATMUL": 20 * 20 * 800,  # [1, 20, 800] @ [1, 800, 20]
    "RFFT2D": 31 * 512 * (9 + 1),  # 31 frames, N = 512: N (log2 N + 1)
}


def build_bench_model():
    """Waveform [1, 16000] -> Dense+LSTM, Conv2D+DepthwiseConv2D, a Gram matrix, an rfft."""
    wave = keras.Input(shape=(16000,), batch_size=1, name="waveform")
    seq = keras.layers.Dense(8)(keras.layers.Reshape((40, 400))(wave))  # [1, 40, 8]
    seq = keras.layers.LSTM(4)(seq)  # [1, 4]
    img = keras.layers.Reshape((100, 160, 1))(wave)
    img = keras.layers.DepthwiseConv2D(3)(keras.layers.Conv2D(4, 3)(img))  # [1, 96, 156, 4]
    rows = keras.layers.Reshape((20, 800))(wave)
    gram = keras.layers.Lambda(lambda r: tf.linalg.matmul(r, r, transpose_b=True))(
        rows
    )  # [1, 20, 20]
    frames = keras.layers.Lambda(lambda w: tf.reshape(w[:, : 31 * 512], [1, 31, 512]))(wave)
    spectrum = keras.layers.Lambda(lambda f: tf.abs(tf.signal.rfft(f)))(frames)  # [1, 31, 257]
    pooled = keras.layers.GlobalAveragePooling2D()(img)
    return keras.Model(wave, [seq, pooled, gram, spectrum])
