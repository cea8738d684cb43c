"""TFLite Model Metadata for audio classifiers, written and read without tflite-support.

MediaPipe's AudioClassifier loads a model with no glue code when the model carries:

- a ``TFLITE_METADATA`` entry in the model's metadata list pointing to a buffer that holds a
  ``ModelMetadata`` flatbuffer (identifier ``M001``, schema ``metadata_schema.fbs``, vendored
  as :mod:`lean_kd.export._metadata_schema`);
- on its single input, ``AudioProperties`` (sample rate, channels), which needs metadata
  parser 1.3.0;
- on its single output, a label file of type ``TENSOR_AXIS_LABELS``;
- the label file itself, packed as tflite-support's MetadataPopulator does: the model
  flatbuffer followed by a zip archive of the associated files (a flatbuffer reader ignores
  the trailing bytes, a zip reader finds the archive from the end).

The model's other metadata entries (``min_runtime_version``, ``CONVERSION_METADATA``) are kept.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from lean_kd.bench.graph import read_tflite_bytes
from lean_kd.errors import ExportError, ModelError
from lean_kd.export import _metadata_schema as meta

METADATA_NAME = "TFLITE_METADATA"
MODEL_IDENTIFIER = b"TFL3"
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.3.0"  # AudioProperties was added in metadata schema 1.3.0
LABEL_FILE = "labels.txt"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The human-readable part of the metadata."""

    name: str = "lean_kd audio classifier"
    description: str = "Classifies a waveform window into sound classes (scores in [0, 1])."
    version: str = "1"
    author: str = "lean_kd"
    license: str = "Apache-2.0"


def add_metadata(
    model: bytes,
    *,
    labels: list[str],
    sample_rate: int,
    channels: int = 1,
    info: ModelInfo = ModelInfo(),
) -> bytes:
    """``model`` with audio-classifier metadata and ``labels.txt`` packed in.

    Raises ExportError when the model does not have one input and one ``[1, len(labels)]``
    output, or a label is empty or spans lines.
    """
    _check_labels(labels)
    if sample_rate <= 0 or channels <= 0:
        raise ExportError(
            f"Expected sample_rate and channels > 0, got {sample_rate} and {channels}"
        )
    unpacked = _unpack_model(model)
    _check_io(unpacked, num_labels=len(labels))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(_metadata_buffer(sample_rate, channels, info), dtype=np.uint8)
    entries = [m for m in (unpacked.metadata or []) if _name(m.name) != METADATA_NAME]
    unpacked.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(unpacked.buffers) - 1
    unpacked.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(unpacked.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    packed = io.BytesIO(bytes(builder.Output()))
    with zipfile.ZipFile(
        packed, "a"
    ) as archive:  # appended after the flatbuffer, as MetadataPopulator
        archive.writestr(LABEL_FILE, "".join(f"{label}\n" for label in labels))
    return packed.getvalue()


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported model: labels, sample rate, channels and the model info.

    Returns ``{"name", "description", "version", "author", "license", "min_parser_version",
    "sample_rate", "channels", "labels"}``; raises ModelError for a file that is missing, not
    TFLite, has no TFLITE_METADATA or lacks the packed label file.
    """
    path = Path(path)
    data = read_tflite_bytes(path)
    raw = _metadata_bytes(data)
    if raw is None:
        raise ModelError(f"{path}: has no {METADATA_NAME} metadata; export it with lean-kd export")
    if not meta.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0):
        raise ModelError(
            f"{path}: the {METADATA_NAME} buffer is not a metadata flatbuffer (no 'M001')"
        )
    model_meta = meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAs(raw, 0))
    found = {
        key: _name(getattr(model_meta, key))
        for key in ("name", "description", "version", "author", "license")
    }
    found["min_parser_version"] = _name(model_meta.minParserVersion)
    found.update(_audio_facts(model_meta, data, path))
    return found


def _metadata_buffer(sample_rate: int, channels: int, info: ModelInfo) -> bytes:
    audio = meta.ContentT(
        contentPropertiesType=meta.ContentProperties.AudioProperties,
        contentProperties=meta.AudioPropertiesT(sampleRate=sample_rate, channels=channels),
    )
    scores = meta.ContentT(
        contentPropertiesType=meta.ContentProperties.FeatureProperties,
        contentProperties=meta.FeaturePropertiesT(),
    )
    label_file = meta.AssociatedFileT(
        name=LABEL_FILE,
        description="Class names, one per line, in score order.",
        type=meta.AssociatedFileType.TENSOR_AXIS_LABELS,
    )
    subgraph = meta.SubGraphMetadataT(
        inputTensorMetadata=[
            meta.TensorMetadataT(
                name="audio", description="Mono waveform in [-1, 1].", content=audio
            )
        ],
        outputTensorMetadata=[
            meta.TensorMetadataT(
                name="scores",
                description="Class scores.",
                content=scores,
                stats=meta.StatsT(max=[1.0], min=[0.0]),
                associatedFiles=[label_file],
            )
        ],
    )
    root = meta.ModelMetadataT(
        name=info.name,
        description=info.description,
        version=info.version,
        author=info.author,
        license=info.license,
        subgraphMetadata=[subgraph],
        minParserVersion=MIN_PARSER_VERSION,
    )
    builder = flatbuffers.Builder(1024)
    builder.Finish(root.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _audio_facts(model_meta: meta.ModelMetadataT, data: bytes, path: Path) -> dict[str, Any]:
    """Sample rate and channels of input 0, and the labels of output 0's label file."""
    subgraph = (model_meta.subgraphMetadata or [None])[0]
    inputs = (subgraph.inputTensorMetadata if subgraph else None) or []
    outputs = (subgraph.outputTensorMetadata if subgraph else None) or []
    content = inputs[0].content if inputs else None
    if content is None or content.contentPropertiesType != meta.ContentProperties.AudioProperties:
        raise ModelError(f"{path}: the metadata has no AudioProperties on the input tensor")
    files = (
        [
            _name(f.name)
            for f in (outputs[0].associatedFiles or [])
            if f.type == meta.AssociatedFileType.TENSOR_AXIS_LABELS
        ]
        if outputs
        else []
    )
    if not files:
        raise ModelError(
            f"{path}: the metadata names no TENSOR_AXIS_LABELS file on the output tensor"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            text = archive.read(files[0]).decode("utf-8")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(
            f"{path}: label file {files[0]!r} is not packed in the model ({exc})"
        ) from None
    return {
        "sample_rate": int(content.contentProperties.sampleRate),
        "channels": int(content.contentProperties.channels),
        "labels": text.splitlines(),
    }


def _metadata_bytes(model: bytes) -> bytes | None:
    root = schema.Model.GetRootAs(model, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if _name(entry.Name()) == METADATA_NAME:
            buffer = root.Buffers(entry.Buffer())
            if buffer.Offset() > 1:  # data stored after the flatbuffer (models > 2 GB)
                return model[buffer.Offset() : buffer.Offset() + buffer.Size()]
            return buffer.DataAsNumpy().tobytes()
    return None


def _unpack_model(model: bytes) -> schema.ModelT:
    if len(model) < 8 or not schema.Model.ModelBufferHasIdentifier(model, 0):
        raise ExportError("Cannot add metadata: not a TFLite flatbuffer (no 'TFL3' identifier)")
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))


def _check_io(model: schema.ModelT, *, num_labels: int) -> None:
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ExportError(
            f"Expected a model with 1 input and 1 output, "
            f"got {len(graph.inputs)} and {len(graph.outputs)}"
        )
    shape = [int(d) for d in graph.tensors[graph.outputs[0]].shape]
    if shape != [1, num_labels]:
        raise ExportError(
            f"Expected the output shape [1, {num_labels}] ({num_labels} labels), got {shape}"
        )


def _check_labels(labels: list[str]) -> None:
    if not labels:
        raise ExportError("The label list is empty")
    bad = [
        repr(label)
        for label in labels
        if not isinstance(label, str) or not label.strip() or "\n" in label
    ]
    if bad:
        raise ExportError(f"Labels must be non-empty single-line strings, got {', '.join(bad[:5])}")


def _name(value: bytes | str | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value
