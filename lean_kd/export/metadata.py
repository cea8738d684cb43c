"""TFLite Model Metadata for audio classifiers, written and read without tflite-support.

MediaPipe's AudioClassifier loads a model with no glue code when the model carries:

- a ``TFLITE_METADATA`` entry in the model's metadata list pointing to a buffer that holds a
  ``ModelMetadata`` flatbuffer (identifier ``M001``, schema ``metadata_schema.fbs``, written by
  :mod:`lean_kd.export.metadata_flatbuffer` and read by :mod:`lean_kd_runtime.tflite_metadata`);
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

from lean_kd.errors import ExportError, ModelError
from lean_kd.export.metadata_flatbuffer import METADATA_IDENTIFIER, TensorInfo, model_metadata
from lean_kd_runtime.tflite_graph import read_tflite_bytes
from lean_kd_runtime.tflite_metadata import (
    audio_metadata,
    embedded_labels,
    metadata_buffer,
    model_info,
)

METADATA_NAME = "TFLITE_METADATA"
MODEL_IDENTIFIER = b"TFL3"
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
    raw = metadata_buffer(data)
    if raw is None:
        raise ModelError(f"{path}: has no {METADATA_NAME} metadata; export it with lean-kd export")
    if raw[4:8] != METADATA_IDENTIFIER:
        raise ModelError(
            f"{path}: the {METADATA_NAME} buffer is not a metadata flatbuffer (no 'M001')"
        )
    return {**model_info(raw), **_audio_facts(data, path)}


def _metadata_buffer(sample_rate: int, channels: int, info: ModelInfo) -> bytes:
    audio = TensorInfo(
        "audio", "Mono waveform in [-1, 1].", sample_rate=sample_rate, channels=channels
    )
    scores = TensorInfo(
        "scores", "Class scores.", score_range=(0.0, 1.0),
        label_file=(LABEL_FILE, "Class names, one per line, in score order."),
    )  # fmt: skip
    texts = {**dataclasses.asdict(info), "min_parser_version": MIN_PARSER_VERSION}
    return model_metadata(info=texts, inputs=[audio], outputs=[scores])


def _audio_facts(data: bytes, path: Path) -> dict[str, Any]:
    """Sample rate and channels of input 0, and the labels of output 0's label file."""
    found = audio_metadata(data)
    if not found["sample_rate_hz"]:
        raise ModelError(f"{path}: the metadata has no AudioProperties on the input tensor")
    if not found["label_files"]:
        raise ModelError(
            f"{path}: the metadata names no TENSOR_AXIS_LABELS file on the output tensor"
        )
    labels = embedded_labels(data, found["label_files"])
    if labels is None:
        raise ModelError(
            f"{path}: label file {found['label_files'][0]!r} is not packed in the model"
        )
    return {"sample_rate": found["sample_rate_hz"], "channels": found["channels"], "labels": labels}


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
