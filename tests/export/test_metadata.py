"""TFLite metadata: written without tflite-support, read back by us and by the bench reader."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import export_helpers as h
from lean_kd.bench.metadata import read_audio_metadata
from lean_kd.errors import ExportError, ModelError
from lean_kd.export.metadata import METADATA_NAME, ModelInfo, add_metadata, read_metadata
from lean_kd.export.verify import tflite_scores
from lean_kd_runtime import tflite_metadata as reader


@pytest.fixture(scope="module")
def plain_bytes() -> bytes:
    return h.converted("plain", "float32")


@pytest.fixture(scope="module")
def with_metadata(plain_bytes, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("meta") / "model.tflite"
    info = ModelInfo(
        name="tones", description="three tones", version="7", author="tests", license="MIT"
    )
    path.write_bytes(add_metadata(plain_bytes, labels=h.LABELS, sample_rate=16000, info=info))
    return path


def _metadata_entries(data: bytes) -> list[str]:
    root = schema.Model.GetRootAs(data, 0)
    return [root.Metadata(i).Name().decode() for i in range(root.MetadataLength())]


def test_read_metadata_round_trip(with_metadata):
    assert read_metadata(with_metadata) == {
        "name": "tones",
        "description": "three tones",
        "version": "7",
        "author": "tests",
        "license": "MIT",
        "min_parser_version": "1.3.0",
        "sample_rate": 16000,
        "channels": 1,
        "labels": h.LABELS,
    }


def test_metadata_layout_is_what_mediapipe_reads(with_metadata):
    """Field by field, with the flatbuffer reader of the device runner (slots of the schema)."""
    raw = reader.metadata_buffer(with_metadata.read_bytes())
    assert raw[4:8] == b"M001"
    (subgraph,) = reader._root(raw).tables(3)  # ModelMetadata.subgraph_metadata
    (audio,), (scores,) = subgraph.tables(2), subgraph.tables(3)
    assert audio.raw(0) == b"audio" and scores.raw(0) == b"scores"
    content = audio.table(3)
    assert content.scalar(0, "B") == reader.AUDIO_PROPERTIES
    assert (content.table(1).scalar(0, "I"), content.table(1).scalar(1, "I")) == (16000, 1)
    assert scores.table(3).scalar(0, "B") == 1  # FeatureProperties
    (label_file,) = scores.tables(6)
    assert (label_file.raw(0), label_file.scalar(2, "b")) == (
        b"labels.txt",
        reader.TENSOR_AXIS_LABELS,
    )
    with zipfile.ZipFile(io.BytesIO(with_metadata.read_bytes())) as archive:
        assert archive.namelist() == ["labels.txt"]
        assert archive.read("labels.txt") == b"low\nmid\nhigh\n"


def test_existing_metadata_entries_are_kept(plain_bytes, with_metadata):
    before = _metadata_entries(plain_bytes)
    assert "min_runtime_version" in before
    assert _metadata_entries(with_metadata.read_bytes()) == before + [METADATA_NAME]


def test_adding_metadata_twice_replaces_it(with_metadata, tmp_path):
    again = add_metadata(with_metadata.read_bytes(), labels=["x", "y", "z"], sample_rate=16000)
    assert _metadata_entries(again).count(METADATA_NAME) == 1
    path = tmp_path / "again.tflite"
    path.write_bytes(again)
    assert read_metadata(path)["labels"] == ["x", "y", "z"]


def test_model_with_metadata_runs_like_without(plain_bytes, with_metadata):
    windows = h.tone_windows(3, seed=9)[0]
    np.testing.assert_array_equal(
        tflite_scores(with_metadata, windows), tflite_scores(plain_bytes, windows)
    )


def test_bench_reader_reads_our_metadata(with_metadata):
    assert read_audio_metadata(with_metadata) == {
        "sample_rate_hz": 16000,
        "channels": 1,
        "label_files": ["labels.txt"],
    }


@pytest.mark.parametrize(
    "labels, sample_rate, message",
    [
        (["a", "b"], 16000, r"Expected the output shape \[1, 2\] \(2 labels\), got \[1, 3\]"),
        ([], 16000, "The label list is empty"),
        (["a", "b\nc", "d"], 16000, r"single-line strings, got 'b\\nc'"),
        (["a", " ", "d"], 16000, r"non-empty single-line strings, got ' '"),
        (["a", "b", "c"], 0, "Expected sample_rate and channels > 0, got 0 and 1"),
    ],
)
def test_add_metadata_rejects_bad_input(plain_bytes, labels, sample_rate, message):
    with pytest.raises(ExportError, match=message):
        add_metadata(plain_bytes, labels=labels, sample_rate=sample_rate)


def test_add_metadata_rejects_non_tflite():
    with pytest.raises(ExportError, match="not a TFLite flatbuffer"):
        add_metadata(b"PK\x03\x04 not a model", labels=h.LABELS, sample_rate=16000)


def test_read_metadata_errors_name_the_file(plain_bytes, with_metadata, tmp_path):
    missing = tmp_path / "missing.tflite"
    with pytest.raises(ModelError, match=f"{missing}: model file not found"):
        read_metadata(missing)
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        read_metadata(garbage)
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(plain_bytes)
    with pytest.raises(ModelError, match=f"{bare}: has no TFLITE_METADATA"):
        read_metadata(bare)
    data = with_metadata.read_bytes()
    unzipped = tmp_path / "unzipped.tflite"
    unzipped.write_bytes(data[: data.rindex(b"PK\x03\x04")])
    with pytest.raises(ModelError, match="label file 'labels.txt' is not packed in the model"):
        read_metadata(unzipped)
