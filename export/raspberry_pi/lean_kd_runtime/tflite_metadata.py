"""Sample rate and label files from a .tflite file's metadata, without the metadata schema module.

A model exported with lean_kd carries TFLite metadata (the ``TFLITE_METADATA`` buffer, schema
``metadata_schema.fbs`` of tflite-support/MediaPipe) with AudioProperties on its input, the
format MediaPipe's AudioClassifier reads. Neither ai-edge-litert nor tflite-runtime ships the
metadata schema module and this runner may only use numpy, so the reader (``_Table`` ...
``audio_metadata``) reads the few fields it needs with :mod:`struct`, following the flatbuffer
wire format (root offset, vtables, vectors, unions); lean_kd's ``lean_kd.bench.metadata`` uses
it too. :func:`embedded_labels` reads the label file that the metadata names out of the zip
archive appended to the model.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

METADATA_NAME = b"TFLITE_METADATA"
AUDIO_PROPERTIES = 4  # member of the ContentProperties union
TENSOR_AXIS_LABELS = 2  # AssociatedFileType of a label file


class _Table:
    """A flatbuffer table: position of its data and of its vtable in ``buf``."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]

    def _offset(self, field: int) -> int:
        size = struct.unpack_from("<H", self.buf, self.vtable)[0]
        slot = 4 + 2 * field
        return struct.unpack_from("<H", self.buf, self.vtable + slot)[0] if slot < size else 0

    def scalar(self, field: int, fmt: str, default: int = 0) -> int:
        off = self._offset(field)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def _target(self, field: int) -> int | None:
        off = self._offset(field)
        if not off:
            return None
        return self.pos + off + struct.unpack_from("<I", self.buf, self.pos + off)[0]

    def table(self, field: int) -> _Table | None:
        target = self._target(field)
        return None if target is None else _Table(self.buf, target)

    def tables(self, field: int) -> list[_Table]:
        start = self._target(field)
        if start is None:
            return []
        count = struct.unpack_from("<I", self.buf, start)[0]
        items = [start + 4 + 4 * i for i in range(count)]
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]) for p in items]

    def raw(self, field: int) -> bytes | None:
        start = self._target(field)
        if start is None:
            return None
        count = struct.unpack_from("<I", self.buf, start)[0]
        return self.buf[start + 4 : start + 4 + count]


def _root(buf: bytes) -> _Table:
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0])


def metadata_buffer(model: bytes) -> bytes | None:
    """The TFLITE_METADATA buffer of a TFLite flatbuffer, or None when it has none."""
    root = _root(model)
    buffers = root.tables(4)  # Model.buffers
    for entry in root.tables(6):  # Model.metadata: (name, buffer index)
        if entry.raw(0) == METADATA_NAME:
            buffer = buffers[entry.scalar(1, "I")]
            offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
            return model[offset : offset + size] if offset > 1 else buffer.raw(0)
    return None


MODEL_INFO_FIELDS = {"name": 0, "description": 1, "version": 2, "author": 4, "license": 5,
                     "min_parser_version": 7}  # ModelMetadata string fields  # fmt: skip


def model_info(meta: bytes) -> dict[str, str]:
    """The text fields of a ModelMetadata buffer ("" where absent)."""
    root = _root(meta)
    return {key: (root.raw(slot) or b"").decode() for key, slot in MODEL_INFO_FIELDS.items()}


def audio_metadata(model: bytes) -> dict:
    """``{"sample_rate_hz", "channels", "label_files"}`` of input 0 / output 0 (None, [] if absent).

    Path: ModelMetadata.subgraph_metadata[0].input_tensor_metadata[0].content
    .content_properties (AudioProperties: sample_rate, channels); label files are the
    TENSOR_AXIS_LABELS associated files of output_tensor_metadata[0].
    """
    found = {"sample_rate_hz": None, "channels": None, "label_files": []}
    meta = metadata_buffer(model)
    subgraphs = _root(meta).tables(3) if meta else []
    if not subgraphs:
        return found
    inputs, outputs = subgraphs[0].tables(2), subgraphs[0].tables(3)
    content = inputs[0].table(3) if inputs else None
    if content is not None and content.scalar(0, "B") == AUDIO_PROPERTIES:
        audio = content.table(1)
        found["sample_rate_hz"] = audio.scalar(0, "I") or None
        found["channels"] = audio.scalar(1, "I") or None
    files = outputs[0].tables(6) if outputs else []
    found["label_files"] = [
        f.raw(0).decode() for f in files if f.scalar(2, "b") == TENSOR_AXIS_LABELS
    ]
    return found


def embedded_labels(model: bytes, label_files: list[str]) -> list[str] | None:
    """Class names from the first label file packed in the model, or None when there is none."""
    if not label_files or not zipfile.is_zipfile(io.BytesIO(model)):
        return None
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        if label_files[0] not in archive.namelist():
            return None
        text = archive.read(label_files[0]).decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def model_audio_facts(path: Path, *, default_rate: int) -> tuple[int, str, list[str] | None]:
    """``(sample rate, "metadata" | "option", embedded labels or None)`` of a model file.

    An unreadable file gives the defaults: loading it afterwards reports what is wrong.
    """
    try:
        model = Path(path).read_bytes()
        found = audio_metadata(model)
        labels = embedded_labels(model, found["label_files"])
    except (
        OSError,
        struct.error,
        IndexError,
        UnicodeDecodeError,
        AttributeError,
        zipfile.BadZipFile,
    ):
        return default_rate, "option", None
    if found["sample_rate_hz"]:
        return found["sample_rate_hz"], "metadata", labels
    return default_rate, "option", labels
