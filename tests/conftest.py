"""Shared test configuration: where ../shared is, and fixtures that skip when it is absent.

Nothing here downloads: the official YAMNet weights and the real datasets come from
``../shared`` beside the checkout (or LEAN_KD_SHARED), and tests that need them skip with a
reason when they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lean_kd._environment import prepare_tensorflow_environment

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LEAN_KD_SHARED", REPO.parent / "shared"))
SHARED_YAMNET = SHARED / "pretrained" / "yamnet" / "yamnet.tflite"
SHARED_CLASS_MAP = SHARED / "pretrained" / "yamnet" / "yamnet_class_map.csv"
SHARED_FSDD = SHARED / "datasets" / "fsdd"
SHARED_ESC50 = SHARED / "datasets" / "esc50-sample"

prepare_tensorflow_environment()  # before any test module imports TensorFlow
if SHARED_YAMNET.is_file():
    os.environ.setdefault("LEAN_KD_YAMNET", str(SHARED_YAMNET))


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (../shared is not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def yamnet_tflite() -> Path:
    return _require(SHARED_YAMNET, "official yamnet.tflite")


@pytest.fixture(scope="session")
def yamnet_class_map() -> Path:
    return _require(SHARED_CLASS_MAP, "yamnet_class_map.csv")


@pytest.fixture(scope="session")
def fsdd_root() -> Path:
    return _require(SHARED_FSDD, "Free Spoken Digit Dataset")


@pytest.fixture(scope="session")
def esc50_sample_root() -> Path:
    return _require(SHARED_ESC50, "ESC-50 sample")
