"""Converted models for the bench tests, built once per session.

``bench_model_tflite``: a small float waveform model whose MACs per op are known
(bench.tflite_testing). ``lean_int8_tflite``: the registry's ``lean_tiny`` exported as full int8
with metadata by ``lean_kd.export`` (what ``lean-kd bench`` is for; ~20 s to convert).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bench_model_tflite(tmp_path_factory) -> Path:
    from bench.tflite_testing import build_bench_model, convert

    path = tmp_path_factory.mktemp("bench_model") / "bench_model.tflite"
    path.write_bytes(convert(build_bench_model()))
    return path


@pytest.fixture(scope="session")
def lean_int8_tflite(tmp_path_factory) -> Path:
    from export_helpers import LABELS, SAMPLE_RATE, tone_windows
    from lean_kd._keras import keras
    from lean_kd.export.tflite import export_tflite
    from lean_kd.models import registry

    keras.utils.set_random_seed(0)
    model = registry.build("lean_tiny", len(LABELS))  # untrained: timing needs no training
    windows, _ = tone_windows(8)
    path = tmp_path_factory.mktemp("lean") / "lean_tiny_int8.tflite"
    export_tflite(
        model,
        quant="int8",
        out=path,
        labels=LABELS,
        sample_rate=SAMPLE_RATE,
        representative=list(windows),
        num_calibration=len(windows),
    )
    return path
