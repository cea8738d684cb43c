"""Fixed-length crops for training and overlapping windows for clip-level evaluation.

The seeds cut clips longer than N seconds and zero-pad shorter ones; LEAN scores a clip as the
mean of the scores of its 1 s windows with 50 % overlap. The windowing is the device runner's
(``lean_kd_runtime.audio``), so both evaluate exactly the same windows.
"""

from __future__ import annotations

import numpy as np

from lean_kd.errors import ConfigError
from lean_kd_runtime.audio import num_windows, split_windows  # shared with the device runner


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


__all__ = ["fix_length", "num_windows", "split_windows"]
