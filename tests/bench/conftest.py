"""A converted waveform model whose MACs per op are known (bench.tflite_testing), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bench_model_tflite(tmp_path_factory) -> Path:
    from bench.tflite_testing import build_bench_model, convert

    path = tmp_path_factory.mktemp("bench_model") / "bench_model.tflite"
    path.write_bytes(convert(build_bench_model()))
    return path
