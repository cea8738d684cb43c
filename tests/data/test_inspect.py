"""inspect_dataset / format_report: counts, header statistics, and every unreadable file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from lean_kd.audio.io import write_wav
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.data.inspect import format_report, inspect_dataset

BAD_REASONS = {
    "missing.wav": "file not found",
    "empty.wav": "file is empty (0 bytes)",
    "text.wav": "not a readable audio file",
    "truncated.wav": "not a readable audio file",
    "header_only.wav": "the clip has zero samples",
}


@pytest.fixture
def broken_index(tmp_path: Path) -> DatasetIndex:
    """Three good files (8 kHz 0.5 s, 8 kHz 1 s, 16 kHz stereo 0.25 s) and five bad ones."""
    write_wav(tmp_path / "good_a.wav", np.zeros(4000, np.float32), sample_rate=8000)
    write_wav(tmp_path / "good_b.wav", np.zeros(8000, np.float32), sample_rate=8000)
    soundfile.write(str(tmp_path / "good_c.wav"), np.zeros((4000, 2), np.float32), 16000)
    wav_bytes = (tmp_path / "good_a.wav").read_bytes()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    (tmp_path / "truncated.wav").write_bytes(wav_bytes[:20])  # cut inside the fmt chunk
    (tmp_path / "header_only.wav").write_bytes(wav_bytes[:44])  # valid header, no samples
    names = ["good_a.wav", "missing.wav", "good_b.wav", *list(BAD_REASONS)[1:], "good_c.wav"]
    examples = tuple(
        Example(
            path=str(tmp_path / name),
            labels=(i % 2,),
            split="test" if name == "good_b.wav" else "train",
            example_id=name,
        )
        for i, name in enumerate(names)
    )
    return DatasetIndex(name="broken", class_names=("even", "odd"), examples=examples)


def test_inspect_reports_each_bad_file_and_counts_good_ones(broken_index: DatasetIndex) -> None:
    report = inspect_dataset(broken_index, progress=False)
    reasons = {Path(u.path).name: u.reason for u in report.unreadable}
    assert set(reasons) == set(BAD_REASONS)
    for name, expected in BAD_REASONS.items():
        assert reasons[name].startswith(expected), (name, reasons[name])
    assert (report.num_examples, report.num_files, report.num_readable) == (8, 8, 3)
    assert report.split_counts == {"train": 7, "test": 1}
    assert report.class_counts == {"train": {"even": 3, "odd": 4}, "test": {"even": 1, "odd": 0}}
    assert report.sample_rates_hz == {8000: 2, 16000: 1}
    assert report.channels == {1: 2, 2: 1}
    assert report.durations is not None
    assert report.durations.total_seconds == pytest.approx(1.75)
    assert report.durations.min_seconds == pytest.approx(0.25)
    assert report.durations.mean_seconds == pytest.approx(1.75 / 3)
    assert report.durations.max_seconds == pytest.approx(1.0)


def test_format_report_names_every_bad_file(broken_index: DatasetIndex) -> None:
    text = format_report(inspect_dataset(broken_index, progress=False))
    assert "Dataset broken: 8 examples, 8 files, 2 classes (single-label)" in text
    assert "Splits: train 7, test 1" in text
    assert "Sample rates: 8000 Hz x 2, 16000 Hz x 1" in text
    assert "total 1.8 s, min 0.25 s, mean 0.58 s, max 1.00 s" in text
    assert "Unreadable files: 5" in text
    for name, reason in BAD_REASONS.items():
        assert f"{name}: {reason}" in text


def test_inspect_without_probe_checks_existence_only(broken_index: DatasetIndex) -> None:
    report = inspect_dataset(broken_index, sample_rate_probe=False, progress=False)
    assert {Path(u.path).name for u in report.unreadable} == {"missing.wav", "empty.wav"}
    assert report.durations is None and report.sample_rates_hz == {}
    assert "Headers not read; 6 of 8 files exist" in format_report(report)


def test_inspect_real_esc50_sample(esc50_sample_root: Path) -> None:
    from lean_kd.data.adapters import load_index

    report = inspect_dataset(load_index("esc50", esc50_sample_root), progress=False)
    assert report.unreadable == () and report.sample_rates_hz == {44100: 14}
    assert report.durations is not None and report.durations.total_seconds == pytest.approx(70.0)
    text = format_report(report)
    assert "Folds: 2: 11, 3: 1, 5: 2" in text
    assert "(43 classes without examples not shown)" in text
