"""Fixed-length crops for training and overlapping windows for clip-level evaluation.

The seeds cut clips longer than N seconds and zero-pad shorter ones; LEAN scores a clip as the
mean of the scores of its 1 s windows with 50 % overlap.
"""

from __future__ import annotations

import math

import numpy as np

from lean_kd.errors import ConfigError


def fix_length(
    waveform: np.ndarray,
    *,
    length: int,
    mode: str = "center",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Crop or zero-pad a 1-D waveform to exactly ``length`` samples.

    ``mode="center"`` takes the middle (evaluation), ``"random"`` a random offset (training,
    needs ``rng``), ``"start"`` the beginning. Shorter clips are zero-padded at the end.
    """
    if length <= 0:
        raise ConfigError(f"length must be > 0 samples, got {length}")
    n = waveform.shape[0]
    if n < length:
        return np.pad(waveform, (0, length - n)).astype(waveform.dtype, copy=False)
    if mode == "start":
        offset = 0
    elif mode == "center":
        offset = (n - length) // 2
    elif mode == "random":
        if rng is None:
            raise ConfigError("fix_length(mode='random') needs an rng")
        offset = int(rng.integers(0, n - length + 1))
    else:
        raise ConfigError(f"Unknown crop mode {mode!r}; expected 'center', 'random' or 'start'")
    return waveform[offset : offset + length]


def num_windows(num_samples: int, *, window: int, hop: int) -> int:
    """Windows needed to cover ``num_samples``: the last one is zero-padded, never dropped."""
    if window <= 0 or hop <= 0:
        raise ConfigError(f"window and hop must be > 0 samples, got {window} and {hop}")
    if num_samples <= window:
        return 1
    return 1 + int(math.ceil((num_samples - window) / hop))


def split_windows(waveform: np.ndarray, *, window: int, hop: int) -> np.ndarray:
    """Split a 1-D clip into overlapping windows: ``[samples]`` -> ``[n, window]``.

    A clip shorter than one window gives one zero-padded window; the tail of a longer clip is
    covered by a final zero-padded window, so no audio is lost.
    """
    count = num_windows(waveform.shape[0], window=window, hop=hop)
    total = window + (count - 1) * hop
    padded = np.pad(waveform, (0, max(0, total - waveform.shape[0])))
    starts = np.arange(count) * hop
    index = starts[:, None] + np.arange(window)[None, :]  # [n, window]
    return padded[index].astype(np.float32, copy=False)
