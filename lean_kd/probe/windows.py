"""Each clip's window outputs from a frozen backbone, computed once and cached on disk.

A clip is cut into windows of the backbone's input length with ``hop_fraction`` overlap (the
last window zero-padded, :func:`lean_kd.audio.windows.split_windows`), and the backbone gives
every window its ``embeddings`` and ``scores``. :func:`pool_clips` turns a clip's windows into
one feature vector: the mean and the max over windows of each chosen output.

Cache layout (``cache_dir``)::

    cache_dir/<backbone key>/<clip key>.npz    embeddings [n, D], scores [n, K], clip

The backbone key is a hash of the weights' identity, sample rate, window and hop; the clip key
a hash of the example id, path, size and modification time. Splits are not part of either, so
cross-validation folds and seeds over the same files share one cache. Files are written to a
temporary name and renamed: an interrupted run never leaves a truncated file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lean_kd.audio.io import load_audio
from lean_kd.audio.windows import split_windows
from lean_kd.config import PROBE_FEATURES
from lean_kd.data.index import Example
from lean_kd.errors import AudioInputError, ConfigError, DataError
from lean_kd.files import write_atomic
from lean_kd.probe.backbone import OUTPUTS, Backbone

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the stored arrays change meaning
BATCH_WINDOWS = 128  # windows per backbone call (bounds memory on long clips)


@dataclasses.dataclass(frozen=True)
class ClipWindows:
    """One clip's backbone outputs, window by window."""

    embeddings: np.ndarray  # [windows, D] float32
    scores: np.ndarray  # [windows, K] float32


def clip_key(example: Example) -> str:
    """How a clip is named in :func:`clip_window_outputs`' result: its id, else its path."""
    return example.example_id or example.path


def clip_window_outputs(
    examples: Sequence[Example],
    *,
    backbone: Backbone,
    cache_dir: str | Path | None = None,
    hop_fraction: float = 0.5,
    strict: bool = False,
    progress: bool = False,
) -> dict[str, ClipWindows]:
    """``{clip_key(example): ClipWindows}`` for every readable example.

    Cached clips are read from ``cache_dir`` (None: no cache); the others are computed and
    written there. An unreadable audio file raises :class:`AudioInputError` when ``strict``,
    else it is left out of the result with a warning.
    """
    if not 0 < hop_fraction <= 1:
        raise ConfigError(f"hop_fraction must be in (0, 1], got {hop_fraction}")
    hop = max(1, int(round(backbone.window_samples * hop_fraction)))
    folder = None if cache_dir is None else Path(cache_dir) / backbone_key(backbone, hop)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, ClipWindows] = {}
    skipped: list[str] = []
    computed = 0
    for example in tqdm(examples, unit="clip", desc="window outputs", disable=not progress):
        key = clip_key(example)
        path = None if folder is None else folder / f"{_clip_hash(example)}.npz"
        windows = _read_cached(path, key)
        if windows is None:
            windows = _compute(example, backbone, hop, strict=strict)
            if windows is None:
                skipped.append(example.path)
                continue
            computed += 1
            if path is not None:
                _write_cached(path, key, windows)
        found[key] = windows
    if skipped:
        logger.warning(
            "Window outputs: %d unreadable file(s) left out, e.g. %s", len(skipped), skipped[0]
        )
    cached = len(found) - computed
    logger.info("Window outputs: %d clips computed, %d from the cache", computed, cached)
    return found


def pool_clips(windows: Sequence[ClipWindows], *, features: str = "both") -> np.ndarray:
    """Clip features ``[N, F]`` float32: mean then max over windows of each chosen output.

    ``features``: ``"embeddings"``, ``"scores"`` or ``"both"`` (embeddings first).
    """
    names = feature_outputs(features)
    if not windows:
        raise DataError("No clips to pool: every example was left out or none was given")
    reductions = (np.mean, np.max)
    rows = [
        np.concatenate([reduce(getattr(clip, n), axis=0) for n in names for reduce in reductions])
        for clip in windows
    ]
    return np.stack(rows).astype(np.float32)


def feature_outputs(features: str) -> tuple[str, ...]:
    """The backbone outputs a ``features`` value selects; raises ConfigError for others."""
    if features not in PROBE_FEATURES:
        raise ConfigError(f"features must be one of {list(PROBE_FEATURES)}, got {features!r}")
    return OUTPUTS if features == "both" else (features,)


def backbone_key(backbone: Backbone, hop_samples: int) -> str:
    """Cache folder name: changes with the weights, sample rate, window or hop."""
    settings = {
        "version": CACHE_VERSION,
        "backbone": backbone.identity,
        "sample_rate": backbone.sample_rate,
        "window_samples": backbone.window_samples,
        "hop_samples": hop_samples,
    }
    return _sha256(json.dumps(settings, sort_keys=True))[:16]


def _clip_hash(example: Example) -> str:
    """The file as it is now: a re-recorded or replaced file gets a new key."""
    try:
        info = os.stat(example.path)
        stat = (info.st_size, info.st_mtime_ns)
    except OSError:
        stat = (-1, -1)
    return _sha256(json.dumps([clip_key(example), example.path, *stat]))[:32]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _compute(example: Example, backbone: Backbone, hop: int, *, strict: bool) -> ClipWindows | None:
    try:
        waveform = load_audio(example.path, sample_rate=backbone.sample_rate)
    except AudioInputError as exc:
        if strict:
            raise
        logger.debug("Skipping %s", exc)
        return None
    windows = split_windows(waveform, window=backbone.window_samples, hop=hop)  # [n, window]
    starts = range(0, len(windows), BATCH_WINDOWS)
    outputs = [backbone.run(windows[i : i + BATCH_WINDOWS]) for i in starts]
    return ClipWindows(
        *(np.concatenate([o[name] for o in outputs]).astype(np.float32) for name in OUTPUTS)
    )


def _read_cached(path: Path | None, key: str) -> ClipWindows | None:
    """The cached windows, or None when absent, unreadable or of another clip (recomputed)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["clip"]) != key:
                return None
            return ClipWindows(*(data[name] for name in OUTPUTS))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("Cached window outputs %s are unreadable (%s); recomputing", path, exc)
        return None


def _write_cached(path: Path, key: str, windows: ClipWindows) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, clip=np.array(key), **dataclasses.asdict(windows))
    write_atomic(path, buffer.getvalue())


__all__ = ["ClipWindows", "clip_key", "clip_window_outputs", "feature_outputs", "pool_clips"]
