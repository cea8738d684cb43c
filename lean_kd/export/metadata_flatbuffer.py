"""The TFLite metadata flatbuffer an audio classifier needs, written with ``flatbuffers.Builder``.

Only the tables lean_kd writes are here: ModelMetadata -> SubGraphMetadata -> TensorMetadata
(input: Content with AudioProperties; output: Content with FeatureProperties, Stats and the
label file as an AssociatedFile). Field slots and enum values are facts of the published
``metadata_schema.fbs`` (tflite-support / MediaPipe, identifier ``M001``); the MediaPipe
AudioClassifier compatibility test (tests/export/test_mediapipe.py) and the device runner's
reader (:mod:`lean_kd_runtime.tflite_metadata`) are the judges of the bytes.
"""

from __future__ import annotations

import dataclasses

import flatbuffers

METADATA_IDENTIFIER = b"M001"
FEATURE_PROPERTIES, AUDIO_PROPERTIES = 1, 4  # ContentProperties union members
TENSOR_AXIS_LABELS = 2  # AssociatedFileType

# (table, field) -> vtable slot, and the field count of each table (its vtable size)
_FIELDS = {
    "ModelMetadata": ("name", "description", "version", "subgraph_metadata", "author",
                      "license", "associated_files", "min_parser_version"),
    "SubGraphMetadata": ("name", "description", "input_tensor_metadata",
                         "output_tensor_metadata", "associated_files", "input_process_units",
                         "output_process_units", "input_tensor_groups", "output_tensor_groups",
                         "custom_metadata"),
    "TensorMetadata": ("name", "description", "dimension_names", "content", "process_units",
                       "stats", "associated_files"),
    "Content": ("content_properties_type", "content_properties", "range"),
    "AudioProperties": ("sample_rate", "channels"),
    "FeatureProperties": (),
    "Stats": ("max", "min"),
    "AssociatedFile": ("name", "description", "type", "locale", "version"),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    description: str
    sample_rate: int = 0  # > 0: an audio input (AudioProperties); 0: a feature output
    channels: int = 0
    score_range: tuple[float, float] | None = None  # Stats (min, max)
    label_file: tuple[str, str] | None = None  # (file name, description): TENSOR_AXIS_LABELS


def model_metadata(
    *, info: dict[str, str], inputs: list[TensorInfo], outputs: list[TensorInfo]
) -> bytes:
    """A ``ModelMetadata`` flatbuffer (identifier M001) with one subgraph.

    ``info``: name, description, version, author, license, min_parser_version.
    """
    b = flatbuffers.Builder(1024)
    tensors = {
        "input_tensor_metadata": _vector(b, [_tensor(b, t) for t in inputs]),
        "output_tensor_metadata": _vector(b, [_tensor(b, t) for t in outputs]),
    }
    subgraph = _table(b, "SubGraphMetadata", offsets=tensors)
    strings = {key: b.CreateString(value) for key, value in info.items()}
    root = _table(
        b, "ModelMetadata", offsets={**strings, "subgraph_metadata": _vector(b, [subgraph])}
    )
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _tensor(b: flatbuffers.Builder, tensor: TensorInfo) -> int:
    offsets = {
        "name": b.CreateString(tensor.name),
        "description": b.CreateString(tensor.description),
    }
    if tensor.sample_rate:
        properties = _table(
            b, "AudioProperties",
            scalars={"sample_rate": ("Uint32", tensor.sample_rate), "channels": ("Uint32", tensor.channels)},
        )  # fmt: skip
        kind = AUDIO_PROPERTIES
    else:
        properties, kind = _table(b, "FeatureProperties"), FEATURE_PROPERTIES
    offsets["content"] = _table(
        b, "Content", offsets={"content_properties": properties},
        scalars={"content_properties_type": ("Uint8", kind)},
    )  # fmt: skip
    if tensor.score_range is not None:
        low, high = tensor.score_range
        offsets["stats"] = _table(
            b, "Stats", offsets={"max": _floats(b, [high]), "min": _floats(b, [low])}
        )
    if tensor.label_file is not None:
        name, description = (b.CreateString(text) for text in tensor.label_file)
        labels = _table(
            b, "AssociatedFile", offsets={"name": name, "description": description},
            scalars={"type": ("Int8", TENSOR_AXIS_LABELS)},
        )  # fmt: skip
        offsets["associated_files"] = _vector(b, [labels])
    return _table(b, "TensorMetadata", offsets=offsets)


def _table(
    b: flatbuffers.Builder,
    kind: str,
    *,
    offsets: dict[str, int] | None = None,
    scalars: dict[str, tuple[str, int]] | None = None,
) -> int:
    """Finish a table of ``kind`` whose children (``offsets``) are already in the builder."""
    fields = _FIELDS[kind]
    b.StartObject(len(fields))
    for name, offset in (offsets or {}).items():
        b.PrependUOffsetTRelativeSlot(fields.index(name), offset, 0)
    for name, (scalar, value) in (scalars or {}).items():
        getattr(b, f"Prepend{scalar}Slot")(fields.index(name), value, 0)
    return b.EndObject()


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values: list[float]) -> int:
    b.StartVector(4, len(values), 4)
    for value in reversed(values):
        b.PrependFloat32(value)
    return b.EndVector()
