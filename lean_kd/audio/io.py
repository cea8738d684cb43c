"""Decode audio files into mono float32 waveforms at a target sample rate.

Decoding uses soundfile (WAV, FLAC, OGG...) and resampling soxr, as librosa does; both run in
C without TensorFlow, so this module serves tf.data (through ``tf.numpy_function``), the
device-side runners' reference and plain scripts alike. The checks and scaling that the
TensorFlow-free device runner needs too live in ``lean_kd_runtime.audio`` and are re-exported here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile
import soxr

from lean_kd.errors import AudioInputError
from lean_kd.files import atomic_path
from lean_kd_runtime.audio import peak_safe, to_mono, valid_audio  # shared with the device runner

logger = logging.getLogger(__name__)


def resample(waveform: np.ndarray, *, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono waveform with soxr (high quality); no-op when the rates match."""
    if orig_rate <= 0 or target_rate <= 0:
        raise AudioInputError(
            f"Sample rates must be > 0, got orig_rate={orig_rate}, target_rate={target_rate}"
        )
    if orig_rate == target_rate:
        return waveform
    return soxr.resample(waveform, orig_rate, target_rate, quality="HQ").astype(np.float32)


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
    with atomic_path(path, error=AudioInputError) as tmp:
        soundfile.write(
            str(tmp), np.clip(waveform, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV"
        )


__all__ = [
    "check_file",
    "load_audio",
    "peak_safe",
    "read_audio_info",
    "resample",
    "to_mono",
    "valid_audio",
    "write_wav",
]
