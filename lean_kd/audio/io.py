"""Decode audio files into mono float32 waveforms at a target sample rate.

Decoding uses soundfile (WAV, FLAC, OGG...) and resampling soxr, as librosa does; both run in
C without TensorFlow, so this module serves tf.data (through ``tf.numpy_function``), the
device-side runners' reference and plain scripts alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile
import soxr

from lean_kd.errors import AudioInputError

logger = logging.getLogger(__name__)


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


def resample(waveform: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono waveform with soxr (high quality); no-op when the rates match."""
    if orig_rate <= 0 or target_rate <= 0:
        raise AudioInputError(
            f"Sample rates must be > 0, got orig_rate={orig_rate}, target_rate={target_rate}"
        )
    if orig_rate == target_rate:
        return waveform
    return soxr.resample(waveform, orig_rate, target_rate, quality="HQ").astype(np.float32)


def peak_safe(waveform: np.ndarray) -> np.ndarray:
    """Scale down (never up) so that every sample lies in [-1, 1].

    Resampling can overshoot a full-scale signal slightly; scaling keeps the waveform shape
    where clipping would add distortion.
    """
    peak = float(np.max(np.abs(waveform))) if waveform.size else 0.0
    if peak > 1.0:
        waveform = waveform / peak
    return waveform.astype(np.float32, copy=False)


def read_audio_info(path: str | Path) -> soundfile._SoundFileInfo:
    """Header information of an audio file, with lean_kd errors for bad files."""
    path = Path(path)
    check_file(path)
    try:
        return soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, TypeError) as exc:
        raise AudioInputError(f"{path}: not a readable audio file ({exc})") from None


def load_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate`` Hz, samples in [-1, 1].

    Raises :class:`AudioInputError` for a missing, empty, truncated or non-audio file, a file
    with sample rate 0, zero samples, or NaN/Inf samples.
    """
    path = Path(path)
    check_file(path)
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as exc:
        raise AudioInputError(f"{path}: not a readable audio file ({exc})") from None
    if file_rate <= 0:
        raise AudioInputError(f"{path}: sample rate is {file_rate}, expected > 0")
    valid_audio(data, source=str(path))
    mono = to_mono(data)
    # [samples] float32 at the file's rate -> [samples'] at the target rate
    return peak_safe(resample(mono, orig_rate=int(file_rate), target_rate=sample_rate))


def check_file(path: str | Path) -> None:
    """Raise AudioInputError unless ``path`` is an existing, non-empty file."""
    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"{path}: file not found")
    if not path.is_file():
        raise AudioInputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: file is empty (0 bytes)")


def write_wav(path: str | Path, waveform: np.ndarray, *, sample_rate: int) -> None:
    """Write a mono float waveform as 16-bit PCM WAV, atomically (temp file, then rename)."""
    path = Path(path)
    valid_audio(np.asarray(waveform, dtype=np.float32), source=str(path))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        soundfile.write(str(tmp), np.clip(waveform, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
