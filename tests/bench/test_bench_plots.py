"""Report figures: each writes a PNG; missing data is a clear error or a warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from figure_checks import overlapping_labels
from lean_kd.bench.plots import latency_cdf, map_vs_size, plt, size_latency_bars
from lean_kd.errors import DataError

PNG = b"\x89PNG\r\n\x1a\n"


def model(path, size, p50, samples):
    entry = {"threads": 1, "p50_ms": p50, "mean_ms": p50, "samples_ms": samples}
    return {"path": path, "file_size_bytes": size, "latency": [entry]}


@pytest.fixture
def reports():
    rng = np.random.default_rng(0)
    lean = model("runs/lean_int8.tflite", 600_000, 4.0, list(4 + rng.random(200)))
    yamnet = model("yamnet.tflite", 4_078_224, 9.0, list(9 + rng.random(200)))
    phone = model("phone.tflite", 700_000, 5.0, None)  # Android: no per-invoke samples
    return [{"models": [lean, yamnet]}, {"models": [model("yamnet.tflite", 1, 1.0, [1.0]), phone]}]


def test_figures_are_written(reports, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        cdf = latency_cdf(reports, tmp_path / "figs" / "cdf.png", names={"yamnet.tflite": "YAMNet"})
    assert "phone.tflite: no per-invoke samples" in caplog.text
    bars = size_latency_bars(reports, tmp_path / "bars.png")
    scatter = map_vs_size(
        [("LEAN int8", 600_000, 0.81), ("YAMNet", 4_078_224, 0.74)], tmp_path / "map.png"
    )
    for path in (cdf, bars, scatter):
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_missing_data(reports, tmp_path):
    with pytest.raises(DataError, match="No latency measured at 4 thread"):
        size_latency_bars(reports, tmp_path / "bars.png", threads=4)
    with pytest.raises(DataError, match="at least one"):
        map_vs_size([], tmp_path / "map.png")


def test_overlap_check_finds_labels_printed_over_each_other(tmp_path):
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.set_xlabel("file size (MiB)")
    for name in ("KD student", "KD student, float32 TFLite"):  # the old scatter's labels
        axes.annotate(name, (0.5, 0.5), textcoords="offset points", xytext=(4, 4))
    figure.savefig(tmp_path / "x.png")
    assert overlapping_labels(figure) == [("KD student", "KD student, float32 TFLite")]
    plt.close(figure)
