"""Throughput of the tf.data frontend against a librosa per-file loop, on the same files.

Both paths do the same work per clip: decode, resample to 16 kHz, crop/pad to 1 s, log-mel
with the YAMNet preset. Each is warmed up once, then timed over all files; the script writes
clips/s for both and their ratio to benchmarks/results/features.md.

    python benchmarks/features.py [--data DIR] [--files N] [--repeats R]

``--data`` is a folder of audio files (default: ../shared/datasets/fsdd/recordings when present,
else a synthetic dataset made with ``lean-kd data synth``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

from lean_kd.audio.features import YAMNET_PRESET
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.data.pipeline import AudioPipeline

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "features.md"
SHARED_FSDD = REPO.parent / "shared" / "datasets" / "fsdd" / "recordings"


def find_files(data: Path | None, count: int) -> list[str]:
    if data is None and SHARED_FSDD.is_dir():
        data = SHARED_FSDD
    if data is None:
        from lean_kd.data.synth import synthesize

        data = Path(tempfile.mkdtemp()) / "synth"
        synthesize(data, progress=False)
    files = sorted(str(p) for p in data.rglob("*") if p.suffix.lower() in {".wav", ".flac", ".ogg"})
    return files[:count]


def librosa_loop(files: list[str]) -> None:
    c = YAMNET_PRESET
    for f in files:
        y, _ = librosa.load(f, sr=c.sample_rate, mono=True)
        y = librosa.util.fix_length(y, size=c.sample_rate)
        mel = librosa.feature.melspectrogram(
            y=y, sr=c.sample_rate, n_fft=c.fft_size, hop_length=c.hop_samples,
            win_length=c.window_samples, n_mels=c.mel_bins, fmin=c.mel_min_hz,
            fmax=c.mel_max_hz, power=1.0, center=False, htk=True, norm=None,
        )
        np.log(mel + c.log_offset)


def tf_pipeline(batch_size: int):
    """The dataset is built once per file list, as a training loop builds it once per run."""
    built = {}

    def run(files: list[str]) -> None:
        key = tuple(files)
        if key not in built:
            index = DatasetIndex("bench", ("x",), tuple(Example(f, (0,), "test") for f in files))
            pipeline = AudioPipeline(
                index, audio=AudioConfig(clip_seconds=1.0), pipeline=PipelineConfig(batch_size=batch_size)
            )
            built[key] = pipeline.dataset("test", training=False)
        for inputs, _ in built[key]:
            inputs["log_mel"].numpy()

    return run


def clips_per_second(fn, files: list[str], repeats: int) -> float:
    fn(files)  # warm-up pass: imports, numba / graph compilation, OS file cache
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(files)
        best = min(best, time.perf_counter() - start)
    return len(files) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    files = find_files(args.data, args.files)
    lib = clips_per_second(librosa_loop, files, args.repeats)
    tfd = clips_per_second(tf_pipeline(args.batch_size), files, args.repeats)
    source = args.data or (SHARED_FSDD if SHARED_FSDD.is_dir() else "synthetic dataset")
    text = f"""# Feature pipeline throughput

Command: `python benchmarks/features.py --files {args.files} --batch-size {args.batch_size} --repeats {args.repeats}`

Work per clip, both paths: decode, resample to 16 kHz (soxr), crop/pad to 1 s, log-mel with the
YAMNet preset (512-point FFT, 64 mel bands 125-7500 Hz). Best of {args.repeats} timed passes
after one warm-up pass over the same files (both paths then read from the OS file cache).
The tf.data dataset is built once and iterated per pass, as in training. No tf.data cache.

| path | clips/s |
| --- | ---: |
| librosa per-file loop (`librosa.load` + `librosa.feature.melspectrogram`) | {lib:.1f} |
| lean_kd tf.data pipeline (parallel decode, batched log-mel, batch {args.batch_size}) | {tfd:.1f} |
| **ratio** | **{tfd / lib:.2f}x** |

Data: {len(files)} files from `{Path(str(source)).name}`. Machine: {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}.
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
