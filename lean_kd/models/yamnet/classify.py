"""Clip-level AudioSet classification of audio files with the pretrained YAMNet.

A clip's score is the mean of its patch scores (0.96 s patches, 0.48 s hop), as the official
YAMNet examples aggregate; clips of any rate are resampled to 16 kHz and short clips padded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lean_kd.audio.io import load_audio
from lean_kd.errors import ConfigError
from lean_kd.models.yamnet.class_map import ClassMap, load_class_map
from lean_kd.models.yamnet.layers import num_patches
from lean_kd.models.yamnet.network import YAMNetConfig
from lean_kd.models.yamnet.weights import pretrained_yamnet


@dataclasses.dataclass(frozen=True)
class ClipPrediction:
    """The best classes of one file, best first, as (class index, display name, score)."""

    path: Path
    duration_seconds: float
    num_patches: int
    top: list[tuple[int, str, float]]


def classify_files(
    paths: list[Path],
    *,
    top_k: int = 5,
    weights: str | Path | None = None,
    class_map: ClassMap | None = None,
) -> list[ClipPrediction]:
    """Top-``top_k`` AudioSet classes of each file (all files are read before the model is built)."""
    class_map = class_map or load_class_map()
    if not 1 <= top_k <= len(class_map):
        raise ConfigError(f"top_k must be in [1, {len(class_map)}], got {top_k}")
    config = YAMNetConfig(input_samples=None)
    rate = config.frontend.sample_rate
    waveforms = [load_audio(path, sample_rate=rate) for path in paths]

    model = pretrained_yamnet(config, weights=weights)
    predictions = []
    for path, waveform in zip(paths, waveforms):
        scores = model(waveform[np.newaxis], training=False)["scores"].numpy()[0]  # [classes]
        predictions.append(
            ClipPrediction(
                path=Path(path),
                duration_seconds=len(waveform) / rate,
                num_patches=num_patches(len(waveform), config.frontend),
                top=class_map.top_k(scores, top_k),
            )
        )
    return predictions
