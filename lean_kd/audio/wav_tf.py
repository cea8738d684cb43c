"""Decode 16-bit PCM WAV files inside the TensorFlow graph, with a fallback for anything else.

tf.data then reads, decodes, downmixes, resamples and peak-limits the common file type with
no Python call per file, in parallel. Only canonical files take the graph route: a 44-byte
header (``RIFF``/``WAVE``, a 16-byte ``fmt `` chunk with PCM, 16 bits, consistent block
size and byte rate, then ``data`` running exactly to the end of the file) at a sample rate the
graph can resample. Everything else (other formats and bit depths, extra chunks, truncated or
empty files, other rates) goes to the caller's fallback, the soundfile + soxr path of
:func:`lean_kd.audio.io.load_audio`, which also reports broken files. Values match that path
exactly at the target rate and to better than -60 dB otherwise (``resample_tf``).

The headers are checked once, in Python, when the pipeline is built (:func:`scan_wavs`, 44
bytes per file): checking them in the graph cost ~40 small ops per file, a quarter of the
per-file decoding time. The graph keeps one check, the file's length, so a file rewritten since
the scan takes the fallback instead of being misread.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable, Sequence

import numpy as np

from lean_kd._keras import tf
from lean_kd.audio.resample_tf import design, supported

_HEADER_BYTES = 44
FALLBACK = -1  # route of a file the graph does not decode


@dataclasses.dataclass(frozen=True)
class WavScan:
    """How the graph decodes each file: ``route[i]`` indexes ``rates_hz`` (or is FALLBACK)."""

    target_rate_hz: int
    rates_hz: tuple[int, ...]
    route: np.ndarray  # [files] int32
    channels: np.ndarray  # [files] int32
    file_bytes: np.ndarray  # [files] int64: the size the header promises

    def tensors(self) -> dict[str, np.ndarray]:
        """Per-file fields for ``Dataset.from_tensor_slices``, read by :meth:`WavDecoder.decode`."""
        return {
            "wav_route": self.route,
            "wav_channels": self.channels,
            "wav_bytes": self.file_bytes,
        }


def canonical_header(head: bytes, file_bytes: int) -> tuple[int, int] | None:
    """``(rate, channels)`` of a canonical 44-byte PCM16 WAV header, else None."""
    if len(head) < _HEADER_BYTES:
        return None
    riff, _, wave, fmt, fmt_size, pcm, channels, rate, byte_rate, block, bits, data, data_bytes = (
        struct.unpack("<4sI4s4sIHHIIHH4sI", head[:_HEADER_BYTES])
    )
    canonical = (
        (riff, wave, fmt, data) == (b"RIFF", b"WAVE", b"fmt ", b"data")
        and fmt_size == 16
        and pcm == 1
        and bits == 16
        and channels >= 1
        and block == 2 * channels
        and byte_rate == rate * block
        and data_bytes > 0
        and data_bytes % block == 0
        and file_bytes == _HEADER_BYTES + data_bytes
    )
    return (rate, channels) if canonical else None


def scan_wavs(paths: Sequence[str], target_rate_hz: int) -> WavScan:
    """Read each ``.wav`` header once and route canonical files at resamplable rates to the graph.

    Missing files, other formats and odd headers get FALLBACK (a missing file would stop
    ``tf.io.read_file``; the fallback reports it as broken instead).
    """
    count = len(paths)
    route = np.full(count, FALLBACK, np.int32)
    channels = np.ones(count, np.int32)
    file_bytes = np.zeros(count, np.int64)
    file_rates = np.zeros(count, np.int64)
    for i, path in enumerate(paths):
        if not path.lower().endswith(".wav"):
            continue
        try:
            with open(path, "rb") as f:
                head, size = f.read(_HEADER_BYTES), os.fstat(f.fileno()).st_size
        except OSError:
            continue
        header = canonical_header(head, size)
        if header is not None and supported(header[0], target_rate_hz):
            file_rates[i], channels[i], file_bytes[i] = header[0], header[1], size
    rates = tuple(sorted(set(file_rates[file_rates > 0].tolist())))
    for k, rate in enumerate(rates):
        route[file_rates == rate] = k
    return WavScan(target_rate_hz, rates, route, channels, file_bytes)


class WavDecoder:
    """Graph-side WAV decoding to mono float32 at the scan's target rate, one resampler per rate
    (a single rate needs no per-file branch)."""

    def __init__(self, scan: WavScan) -> None:
        self.rates_hz = scan.rates_hz
        self._resamplers = [design(rate, scan.target_rate_hz) for rate in scan.rates_hz]

    def decode(
        self, contents: tf.Tensor, item: dict, fallback: Callable[[], tf.Tensor]
    ) -> tf.Tensor:
        """File bytes (scalar string) -> waveform ``[samples]`` float32 in [-1, 1].

        ``item`` holds the file's :meth:`WavScan.tensors` fields. ``fallback`` builds the
        waveform for files the graph route does not take; it runs only for those files.
        """
        if not self.rates_hz:
            return fallback()
        route = item["wav_route"]

        def graph_route() -> tf.Tensor:
            data = tf.strings.substr(contents, _HEADER_BYTES, -1)
            pcm = tf.io.decode_raw(data, tf.int16, little_endian=True)  # [samples * channels]
            frames = tf.reshape(tf.cast(pcm, tf.float32) / 32768.0, [-1, item["wav_channels"]])
            mono = tf.reduce_mean(frames, axis=1)  # [samples] at the file's rate
            if len(self._resamplers) == 1:
                resampled = self._resamplers[0](mono)
            else:
                resampled = tf.switch_case(route, [lambda r=r: r(mono) for r in self._resamplers])
            peak = tf.reduce_max(tf.abs(resampled))  # [samples'] at the target rate
            return resampled / tf.maximum(peak, 1.0)  # scale down, never up (io.peak_safe)

        unchanged = tf.equal(tf.cast(tf.strings.length(contents), tf.int64), item["wav_bytes"])
        return tf.cond((route >= 0) & unchanged, graph_route, fallback)
