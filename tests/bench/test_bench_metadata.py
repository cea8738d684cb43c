"""Sample rate and label files from TFLite metadata, read without the metadata schema module."""

from __future__ import annotations

import pytest

from bench.tflite_testing import attach_metadata
from lean_kd.bench.metadata import read_audio_metadata
from lean_kd.errors import ModelError


def test_reads_audio_properties_and_label_file(bench_model_tflite, tmp_path):
    path = tmp_path / "with_metadata.tflite"
    path.write_bytes(
        attach_metadata(bench_model_tflite.read_bytes(), sample_rate_hz=22050, labels=["a", "b"])
    )
    assert read_audio_metadata(path) == {
        "sample_rate_hz": 22050,
        "channels": 1,
        "label_files": ["labels.txt"],
    }


def test_model_without_metadata(yamnet_tflite):
    assert read_audio_metadata(yamnet_tflite) == {
        "sample_rate_hz": None,
        "channels": None,
        "label_files": [],
    }


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelError, match="unreadable TFLite metadata"):
        read_audio_metadata(path)
