"""The embedded default dataset: procedurally synthesised sound events written as real WAV files.

The demo and the tests need data that goes through the same file path as real datasets
(WAV on disk + a manifest in the generic CSV format), with no download. Ten parametric
generators (:mod:`lean_kd.data.synth_sounds`) draw new parameters for every clip; each clip
places its event(s) at a random time, colours them with a random "microphone" response, adds
a pink-to-brown noise bed (sometimes with mains hum and a quiet unlabelled event of another
class) at a random SNR and applies a random gain. The defaults make a CPU-sized dataset that is
not trivially separable: 10 classes x 40 clips of 1-3 s at 16 kHz (400 files, ~26 MB, ~12 s
to write on one core), SNR 5..20 dB. Its events are plain to see in a spectrogram, but a
log-mel mean/std + logistic-regression baseline stays near 70 % on the test split (see
``benchmarks/results/synth_baseline.md``): time structure matters, which leaves a student
room to beat the baseline.

Output layout (the generic CSV manifest)::

    out_dir/manifest.csv       path,labels,split,fold,id   (labels joined by ';')
    out_dir/classes.txt        one class name per line, in class order
    out_dir/audio/<id>.wav     16-bit PCM mono
    out_dir/synth_config.json  the config that made the files (detects stale outputs)

Every clip has its own random generator seeded from (seed, class name, index), so a clip does
not depend on the other clips or on generation order, and the same config gives byte-identical
files. The manifest is written last: a folder without it is an interrupted run, finished by the
next call, which keeps the WAVs already written.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import zlib
from pathlib import Path

import numpy as np
from scipy import signal
from tqdm import tqdm

from lean_kd.audio.io import write_wav
from lean_kd.config import to_dict
from lean_kd.data.synth_sounds import CLASS_NAMES, GENERATORS, noise_bed
from lean_kd.errors import ConfigError
from lean_kd.files import write_atomic

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when a generator changes, so that existing outputs are rebuilt
MAX_EVENTS = 3  # events per clip in multi-label mode
MANIFEST_COLUMNS = ("path", "labels", "split", "fold", "id")
_PLAN, _RENDER, _SPLIT = 0, 1, 2  # independent random streams per clip / per class

# How a clip is put together (ranges drawn uniformly per clip).
EVENT_FRACTION = (0.4, 1.0)  # event length / clip length (at least 0.3 s)
PARTNER_DB = (-6.0, 0.0)  # multi-label: level of the other events vs the main one
DISTRACTOR_DB = (-25.0, -12.0)  # single-label: unlabelled event vs the labelled one
PEAK_DBFS = (-24.0, -1.0)  # final clip peak: the random gain
HIGH_PASS_HZ = (40.0, 400.0)  # random microphone/room colouring (log-uniform cut-offs)
LOW_PASS_HZ = (2500.0, 7500.0)


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What to synthesise. Defaults: the demo dataset (10 classes x 40 clips, 1-3 s)."""

    classes: tuple[str, ...] = CLASS_NAMES
    clips_per_class: int = 40
    duration_seconds: tuple[float, float] = (1.0, 3.0)  # clip length range
    snr_db: tuple[float, float] = (5.0, 20.0)  # labelled events vs noise bed, over the events
    sample_rate: int = 16000
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    multi_label: bool = False  # 1-3 events of different classes per clip
    distractor_probability: float = 0.25  # single-label: quiet event of another class
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("classes", "duration_seconds", "snr_db"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _require(
            len(self.classes) > 0, f"classes is empty; expected names from {list(CLASS_NAMES)}"
        )
        unknown = [c for c in self.classes if c not in GENERATORS]
        _require(
            not unknown, f"Unknown class name(s) {unknown}; expected some of {list(CLASS_NAMES)}"
        )
        _require(
            len(set(self.classes)) == len(self.classes), f"Duplicate class names in {self.classes}"
        )
        _require(
            self.clips_per_class >= 1, f"clips_per_class must be >= 1, got {self.clips_per_class}"
        )
        _check_range("duration_seconds", self.duration_seconds, low=0.0)
        _check_range("snr_db", self.snr_db, low=-math.inf)
        _require(
            self.sample_rate >= 16000, f"sample_rate must be >= 16000 Hz, got {self.sample_rate}"
        )
        for name in ("val_fraction", "test_fraction", "distractor_probability"):
            value = getattr(self, name)
            _require(0 <= value <= 1, f"{name} must be in [0, 1], got {value}")
        _require(
            self.val_fraction + self.test_fraction < 1,
            f"val_fraction + test_fraction must be < 1, "
            f"got {self.val_fraction} + {self.test_fraction}",
        )
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        counts = self.split_counts
        _require(
            counts["train"] >= 1,
            f"clips_per_class={self.clips_per_class} leaves no training clip after val/test "
            f"({counts}); use more clips per class",
        )

    @property
    def split_counts(self) -> dict[str, int]:
        """Clips per class in each split: every split with a fraction > 0 gets at least one."""
        val, test = (
            max(1, round(self.clips_per_class * f)) if f > 0 else 0
            for f in (self.val_fraction, self.test_fraction)
        )
        return {"train": self.clips_per_class - val - test, "val": val, "test": test}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """One planned clip: its main class, index within the class, split and labels."""

    class_name: str
    index: int
    split: str
    labels: tuple[str, ...]  # in class order; contains class_name

    @property
    def clip_id(self) -> str:
        return f"{self.class_name}_{self.index:04d}"

    @property
    def path(self) -> str:
        return f"audio/{self.clip_id}.wav"


@dataclasses.dataclass(frozen=True)
class RenderedClip:
    """A clip and its parts, as mixed (the parts sum to ``waveform`` before 16-bit rounding)."""

    waveform: np.ndarray  # [samples] float32, peak <= 1
    events: np.ndarray  # [samples] labelled events
    distractor: np.ndarray  # [samples] unlabelled quiet event (zeros if none)
    background: np.ndarray  # [samples] noise bed (+ hum)
    snr_db: float  # requested events-to-background ratio over ``span``
    span: tuple[int, int]  # first and one-past-last sample covered by the labelled events


def _require(condition: object, message: str) -> None:
    if not condition:
        raise ConfigError(f"SynthConfig: {message}")


def _check_range(name: str, value: tuple[float, ...], *, low: float) -> None:
    _require(len(value) == 2, f"{name} must be (min, max), got {value}")
    _require(all(math.isfinite(v) for v in value), f"{name} must be finite, got {value}")
    _require(value[0] > low, f"{name} minimum must be > {low}, got {value[0]}")
    _require(value[0] <= value[1], f"{name} minimum must be <= maximum, got {value}")


def _rng(config: SynthConfig, class_name: str, *key: int) -> np.random.Generator:
    """Generator for one (class, purpose, index) under ``config.seed``; independent of order."""
    return np.random.default_rng([config.seed, zlib.crc32(class_name.encode()), *key])


def plan(config: SynthConfig) -> list[ClipSpec]:
    """All clips of ``config``: splits stratified per class, multi-label partners drawn."""
    counts = config.split_counts
    order = {name: i for i, name in enumerate(config.classes)}
    specs = []
    for name in config.classes:
        shuffled = _rng(config, name, _SPLIT).permutation(config.clips_per_class)
        split_of = {}
        for position, index in enumerate(shuffled):
            split_of[int(index)] = (
                "test"
                if position < counts["test"]
                else "val"
                if position < counts["test"] + counts["val"]
                else "train"
            )
        for index in range(config.clips_per_class):
            labels = {name}
            if config.multi_label:
                rng = _rng(config, name, _PLAN, index)
                others = [c for c in config.classes if c != name]
                extra = int(rng.integers(0, min(MAX_EVENTS, len(others) + 1)))
                labels.update(str(c) for c in rng.choice(others, size=extra, replace=False))
            ordered = tuple(sorted(labels, key=order.__getitem__))
            specs.append(ClipSpec(name, index, split_of[index], ordered))
    return specs


def _channel(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Random microphone/room colouring: a high-pass and a low-pass, as second-order sections."""
    low_cut = math.exp(rng.uniform(*np.log(HIGH_PASS_HZ)))
    high_cut = min(math.exp(rng.uniform(*np.log(LOW_PASS_HZ))), 0.45 * sample_rate)
    high_pass = signal.butter(1, low_cut, btype="highpass", fs=sample_rate, output="sos")
    low_pass = signal.butter(2, high_cut, btype="lowpass", fs=sample_rate, output="sos")
    return np.concatenate([high_pass, low_pass])


def _place(
    rng: np.random.Generator, name: str, num_samples: int, sample_rate: int
) -> tuple[np.ndarray, int, int]:
    """One event of class ``name`` at a random time and length inside a clip of ``num_samples``."""
    length = int(rng.uniform(*EVENT_FRACTION) * num_samples)
    length = min(num_samples, max(length, int(0.3 * sample_rate)))
    start = int(rng.integers(0, num_samples - length + 1))
    out = np.zeros(num_samples)
    out[start : start + length] = GENERATORS[name](rng, length, sample_rate).waveform
    return out, start, start + length


def _power(x: np.ndarray, span: tuple[int, int]) -> float:
    return float(np.mean(np.square(x[span[0] : span[1]])))


def render_clip(spec: ClipSpec, config: SynthConfig) -> RenderedClip:
    """Synthesise one clip of ``spec``; depends only on ``config`` and the spec's class/index."""
    rng = _rng(config, spec.class_name, _RENDER, spec.index)
    sr = config.sample_rate
    num_samples = round(rng.uniform(*config.duration_seconds) * sr)
    channel = _channel(rng, sr)
    events, starts, stops = np.zeros(num_samples), [], []
    partners = [c for c in spec.labels if c != spec.class_name]
    for position, name in enumerate([spec.class_name, *partners]):
        event, start, stop = _place(rng, name, num_samples, sr)
        gain = 1.0 if position == 0 else 10 ** (rng.uniform(*PARTNER_DB) / 20)
        events += gain * event
        starts.append(start)
        stops.append(stop)
    span = (min(starts), max(stops))
    events = signal.sosfilt(channel, events)
    background = signal.sosfilt(channel, noise_bed(rng, num_samples, sr)[0])
    snr_db = float(rng.uniform(*config.snr_db))
    target = _power(events, span) / 10 ** (snr_db / 10)
    background *= math.sqrt(target / max(_power(background, span), 1e-20))
    distractor = np.zeros(num_samples)
    others = [c for c in config.classes if c not in spec.labels]
    if not config.multi_label and others and rng.uniform() < config.distractor_probability:
        quiet, start, stop = _place(rng, str(rng.choice(others)), num_samples, sr)
        quiet = signal.sosfilt(channel, quiet)
        level = _power(events, span) * 10 ** (rng.uniform(*DISTRACTOR_DB) / 10)
        distractor = quiet * math.sqrt(level / max(_power(quiet, (start, stop)), 1e-20))
    mix = events + distractor + background
    gain = 10 ** (rng.uniform(*PEAK_DBFS) / 20) / max(float(np.max(np.abs(mix))), 1e-12)
    return RenderedClip(
        waveform=(gain * mix).astype(np.float32),
        events=gain * events,
        distractor=gain * distractor,
        background=gain * background,
        snr_db=snr_db,
        span=span,
    )


def _manifest_text(specs: list[ClipSpec]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for spec in specs:
        writer.writerow([spec.path, ";".join(spec.labels), spec.split, 0, spec.clip_id])
    return buffer.getvalue()


def _stamp(config: SynthConfig) -> str:
    return (
        json.dumps({"format_version": FORMAT_VERSION, **to_dict(config)}, indent=2, sort_keys=True)
        + "\n"
    )


def synthesize(
    out_dir: Path, config: SynthConfig = SynthConfig(), *, progress: bool = True
) -> Path:
    """Write the dataset of ``config`` into ``out_dir`` and return the path of its manifest.

    A complete output of the same config is reused as is; an interrupted one is finished
    (WAVs already written are kept); an output of another config is rewritten.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory; expected an output folder")
    manifest, stamp_path = out_dir / "manifest.csv", out_dir / "synth_config.json"
    specs = plan(config)
    stamp = _stamp(config)
    same = stamp_path.is_file() and stamp_path.read_text() == stamp
    if same and manifest.is_file() and all((out_dir / s.path).is_file() for s in specs):
        logger.info("%s: synthetic dataset already complete (%d clips)", out_dir, len(specs))
        return manifest
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    if not same:
        manifest.unlink(missing_ok=True)
        write_atomic(stamp_path, stamp)
    todo = [s for s in specs if not (same and (out_dir / s.path).is_file())]
    for spec in tqdm(todo, desc="synthesising", unit="clip", disable=not progress):
        write_wav(
            out_dir / spec.path, render_clip(spec, config).waveform, sample_rate=config.sample_rate
        )
    write_atomic(out_dir / "classes.txt", "".join(f"{name}\n" for name in config.classes))
    write_atomic(manifest, _manifest_text(specs))
    logger.info(
        "%s: wrote %d clips (%d reused) of %d classes",
        out_dir,
        len(todo),
        len(specs) - len(todo),
        len(config.classes),
    )
    return manifest
