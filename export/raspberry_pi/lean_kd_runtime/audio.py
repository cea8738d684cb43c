"""Read WAV (or FLAC/OGG) clips as mono float32 at the model's rate, and cut evaluation windows.

``valid_audio``, ``to_mono``, ``peak_safe``, ``num_windows`` and ``split_windows`` are also
lean_kd's own (lean_kd/audio/io.py and windows.py import them from here), so a clip is checked,
scaled and windowed exactly as ``lean-kd evaluate`` does it (1 s windows, 50 % overlap, last
window zero-padded). Resampling uses soxr with
lean_kd's settings when it is installed, else linear interpolation with a warning.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import soundfile

from .errors import AudioInputError, ConfigError

try:
    import soxr
except ImportError:  # optional: pip install soxr (requirements-extra.txt)
    soxr = None

logger = logging.getLogger(__name__)
_WARNED_RATES: set[tuple[int, int]] = set()


def valid_audio(waveform: np.ndarray, *, source: str = "waveform") -> np.ndarray:
    """Check that ``waveform`` is a non-empty, finite, real 1-D or 2-D float array.

    Returns the array unchanged; raises :class:`AudioInputError` naming ``source`` otherwise.
    """
    if not isinstance(waveform, np.ndarray):
        raise AudioInputError(f"{source}: expected a numpy array, got {type(waveform).__name__}")
    if not np.issubdtype(waveform.dtype, np.floating):
        raise AudioInputError(f"{source}: expected floating-point samples, got {waveform.dtype}")
    if waveform.ndim not in (1, 2):
        raise AudioInputError(f"{source}: expected 1-D or 2-D samples, got shape {waveform.shape}")
    if waveform.size == 0:
        raise AudioInputError(f"{source}: the clip has zero samples")
    if not np.all(np.isfinite(waveform)):
        bad = int(np.size(waveform) - np.count_nonzero(np.isfinite(waveform)))
        raise AudioInputError(f"{source}: {bad} sample(s) are NaN or Inf")
    return waveform


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """Average channels: ``[samples, channels]`` -> ``[samples]``."""
    if waveform.ndim == 1:
        return waveform
    return waveform.mean(axis=1)


def peak_safe(waveform: np.ndarray) -> np.ndarray:
    """Scale down (never up) so that every sample lies in [-1, 1].

    Resampling can overshoot a full-scale signal slightly; scaling keeps the waveform shape
    where clipping would add distortion.
    """
    peak = float(np.max(np.abs(waveform))) if waveform.size else 0.0
    if peak > 1.0:
        waveform = waveform / peak
    return waveform.astype(np.float32, copy=False)


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


def resample(waveform: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """soxr "HQ" (lean_kd's resampler) when installed, else linear interpolation."""
    if orig_rate == target_rate:
        return waveform
    if soxr is not None:
        return soxr.resample(waveform, orig_rate, target_rate, quality="HQ").astype(np.float32)
    count = int(round(waveform.shape[0] * target_rate / orig_rate))
    positions = np.arange(count) * (orig_rate / target_rate)  # in input samples
    return np.interp(positions, np.arange(waveform.shape[0]), waveform).astype(np.float32)


def read_clip(path: str | Path, *, sample_rate: int, strict: bool = False) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sample_rate`` Hz, in [-1, 1].

    A file at another rate is resampled with a warning (once per rate pair), or refused with
    AudioInputError when ``strict``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioInputError(f"{path}: file not found")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as exc:
        raise AudioInputError(f"{path}: not a readable audio file ({exc})") from None
    valid_audio(data, source=str(path))
    mono = to_mono(data)
    if file_rate != sample_rate:
        if strict:
            raise AudioInputError(
                f"{path}: sample rate {file_rate} Hz, the model expects {sample_rate} Hz "
                "(--strict refuses to resample; convert the file or drop --strict)"
            )
        _warn_resampling(path, file_rate, sample_rate)
        mono = resample(mono, orig_rate=int(file_rate), target_rate=sample_rate)
    return peak_safe(mono)


def _warn_resampling(path: Path, file_rate: int, sample_rate: int) -> None:
    if (file_rate, sample_rate) in _WARNED_RATES:
        return
    _WARNED_RATES.add((file_rate, sample_rate))
    how = (
        "with soxr"
        if soxr is not None
        else (
            "by linear interpolation (no anti-aliasing: lower quality than lean_kd's soxr; "
            "pip install soxr for identical results)"
        )
    )
    logger.warning(
        "%s: sample rate %d Hz, resampling to %d Hz %s", path, file_rate, sample_rate, how
    )


def window_sizes(*, window_samples: int, hop_seconds: float, sample_rate: int) -> tuple[int, int]:
    """``(window, hop)`` in samples; the hop is ``hop_seconds`` (lean_kd: 0.5 s) at the model's rate."""
    hop = int(round(sample_rate * hop_seconds))
    if not 0 < hop <= window_samples:
        raise ConfigError(
            f"hop of {hop_seconds} s = {hop} samples must be in (0, {window_samples}] (the window)"
        )
    return window_samples, hop
