"""``stream``: classify a WAV file or the microphone through a ring buffer, window by window.

A reader hands over audio in pieces: one full window first, then one hop at a time (0.5 s).
Each piece goes into a ring buffer that keeps the last window of samples; after every piece
the window is classified and one line is printed with the window's start time and the top
classes. A WAV file is padded exactly like ``eval``'s windows (the last window zero-padded),
so the same file gives the same windows in both modes. The microphone needs the optional
``sounddevice`` package (PortAudio).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from lean_kd_runtime.audio import num_windows, read_clip
from lean_kd_runtime.errors import ConfigError, DeviceError

Reader = Callable[[int], "np.ndarray | None"]


class RingBuffer:
    """The last ``capacity`` samples pushed, oldest first (zeros until filled)."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.float32)
        self._end = 0  # next write position

    def push(self, samples: np.ndarray) -> None:
        samples = samples[-self._data.size :]
        first = min(samples.size, self._data.size - self._end)
        self._data[self._end : self._end + first] = samples[:first]
        self._data[: samples.size - first] = samples[first:]
        self._end = (self._end + samples.size) % self._data.size

    def window(self) -> np.ndarray:
        return np.roll(self._data, -self._end)


def wav_reader(path: Path, *, sample_rate: int, window: int, hop: int, strict: bool) -> Reader:
    """Successive pieces of a clip, zero-padded to the windows ``eval`` would cut."""
    wave = read_clip(path, sample_rate=sample_rate, strict=strict)
    total = window + (num_windows(wave.size, window=window, hop=hop) - 1) * hop
    wave = np.pad(wave, (0, total - wave.size))
    position = 0

    def read(count: int) -> np.ndarray | None:
        nonlocal position
        if position + count > wave.size:
            return None
        position += count
        return wave[position - count : position]

    return read


@contextlib.contextmanager
def microphone_reader(*, sample_rate: int, device: str | None) -> Iterator[Reader]:
    """Blocking reads from the default (or named) input device, mono float32 at ``sample_rate``."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
        raise DeviceError(
            f"microphone input needs the sounddevice package and PortAudio ({exc}); "
            "pip install sounddevice, sudo apt install libportaudio2"
        ) from None
    try:
        stream = sounddevice.InputStream(
            samplerate=sample_rate, channels=1, dtype="float32", device=device
        )
        stream.start()
    except (sounddevice.PortAudioError, ValueError) as exc:
        raise DeviceError(
            f"no usable microphone ({exc}); list devices with: python -m sounddevice"
        ) from None
    try:
        yield lambda count: stream.read(count)[0][:, 0]
    finally:
        stream.stop()
        stream.close()


def stream_lines(
    classifier,
    read: Reader,
    *,
    window: int,
    hop: int,
    sample_rate: int,
    labels: list[str],
    top_k: int,
    max_windows: int | None = None,
) -> Iterator[str]:
    """One line per window: ``"  0.50 s  dog 0.912 | cat 0.051"``; stops when ``read`` returns None."""
    if top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {top_k}")
    ring = RingBuffer(window)
    piece, index = read(window), 0
    while piece is not None and (max_windows is None or index < max_windows):
        ring.push(piece)
        scores = classifier(ring.window())
        best = np.argsort(scores)[::-1][:top_k]
        tops = " | ".join(f"{labels[i]} {scores[i]:.3f}" for i in best)
        yield f"{index * hop / sample_rate:6.2f} s  {tops}"
        piece, index = read(hop), index + 1
