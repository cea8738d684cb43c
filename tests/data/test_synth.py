"""The embedded synthetic dataset: files, manifest, determinism, SNR and each class's signature."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lean_kd.audio.io import load_audio
from lean_kd.data import synth_sounds
from lean_kd.data.adapters import load_index
from lean_kd.data.synth import (
    MANIFEST_COLUMNS,
    ClipSpec,
    SynthConfig,
    plan,
    render_clip,
    synthesize,
)
from lean_kd.errors import ConfigError

SR = 16000
TINY = SynthConfig(
    classes=("siren", "alarm_beep", "rain"),
    clips_per_class=4,
    duration_seconds=(0.5, 0.8),
    val_fraction=0.25,
    test_fraction=0.25,
)


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        return list(reader)


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth") / "out", TINY, progress=False)


# ---------------------------------------------------------------- files and manifest


def test_same_config_gives_byte_identical_files(tiny_dataset: Path, tmp_path: Path) -> None:
    again = synthesize(tmp_path / "again", TINY, progress=False)
    first, second = folder_bytes(tiny_dataset.parent), folder_bytes(again.parent)
    assert len(first) == 3 + 12  # manifest.csv, classes.txt, synth_config.json + 12 WAVs
    assert first == second


def test_other_seed_gives_other_audio(tiny_dataset: Path, tmp_path: Path) -> None:
    other = synthesize(tmp_path / "other", dataclasses.replace(TINY, seed=1), progress=False)
    path = "audio/siren_0000.wav"
    assert (other.parent / path).read_bytes() != (tiny_dataset.parent / path).read_bytes()


def test_clip_depends_only_on_seed_class_and_index() -> None:
    a = SynthConfig(classes=("siren", "rain"), clips_per_class=3, distractor_probability=0.0)
    b = SynthConfig(
        classes=("rain", "knock", "siren"), clips_per_class=5, distractor_probability=0.0
    )
    spec = ClipSpec("siren", 1, "train", ("siren",))
    np.testing.assert_array_equal(render_clip(spec, a).waveform, render_clip(spec, b).waveform)


def test_manifest_columns_splits_and_counts(tiny_dataset: Path) -> None:
    rows = read_manifest(tiny_dataset)
    root = tiny_dataset.parent
    assert (root / "classes.txt").read_text().splitlines() == list(TINY.classes)
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    assert TINY.split_counts == {"train": 2, "val": 1, "test": 1}
    for name in TINY.classes:
        mine = [r for r in rows if r["labels"] == name]
        assert len(mine) == 4
        for split, count in TINY.split_counts.items():
            assert sum(r["split"] == split for r in mine) == count, (name, split)
    for row in rows:
        assert row["fold"] == "0"
        assert row["path"] == f"audio/{row['id']}.wav" and (root / row["path"]).is_file()
        assert row["id"].startswith(row["labels"] + "_")


def test_csv_adapter_reads_the_output(tiny_dataset: Path) -> None:
    index = load_index("csv", tiny_dataset.parent)
    assert index.class_names == TINY.classes and not index.multi_label
    assert index.summary() == {
        split: {name: count for name in TINY.classes} for split, count in TINY.split_counts.items()
    }


def test_files_are_16khz_mono_pcm16_with_peak_at_most_one(tiny_dataset: Path) -> None:
    for row in read_manifest(tiny_dataset):
        path = tiny_dataset.parent / row["path"]
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert 0.5 - 1e-3 <= info.duration <= 0.8 + 1e-3
        peak = float(np.max(np.abs(load_audio(path, sample_rate=SR))))
        assert 10 ** (-24.5 / 20) <= peak <= 1.0  # random gain: peak between -24 and -1 dBFS
        assert peak <= 10 ** (-1 / 20) + 1e-4


def test_complete_output_is_reused_and_interrupted_output_finished(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, classes=("knock", "whistle"), clips_per_class=3)
    manifest = synthesize(tmp_path, config, progress=False)
    reference = folder_bytes(tmp_path)
    kept = tmp_path / "audio/knock_0001.wav"
    mtime = kept.stat().st_mtime_ns
    assert synthesize(tmp_path, config, progress=False) == manifest
    assert kept.stat().st_mtime_ns == mtime  # nothing rewritten
    manifest.unlink()  # as if interrupted: manifest not yet written, one WAV missing
    (tmp_path / "audio/whistle_0002.wav").unlink()
    synthesize(tmp_path, config, progress=False)
    assert kept.stat().st_mtime_ns == mtime  # finished files are kept
    assert folder_bytes(tmp_path) == reference


def test_output_of_another_config_is_rewritten(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, classes=("knock",), clips_per_class=3)
    synthesize(tmp_path, config, progress=False)
    before = (tmp_path / "audio/knock_0000.wav").read_bytes()
    synthesize(tmp_path, dataclasses.replace(config, seed=7), progress=False)
    fresh = synthesize(tmp_path / "fresh", dataclasses.replace(config, seed=7), progress=False)
    after = (tmp_path / "audio/knock_0000.wav").read_bytes()
    assert after != before and after == (fresh.parent / "audio/knock_0000.wav").read_bytes()
    assert '"seed": 7' in (tmp_path / "synth_config.json").read_text()


def test_multi_label_rows_carry_one_to_three_labels(tmp_path: Path) -> None:
    config = dataclasses.replace(
        TINY, classes=("siren", "knock", "rain", "whistle"), clips_per_class=5, multi_label=True
    )
    rows = read_manifest(synthesize(tmp_path, config, progress=False))
    assert load_index("csv", tmp_path).multi_label
    label_sets = [r["labels"].split(";") for r in rows]
    sizes = [len(labels) for labels in label_sets]
    assert min(sizes) == 1 and max(sizes) == 3 and sum(s > 1 for s in sizes) >= 5
    for row, labels in zip(rows, label_sets):
        assert row["id"].rsplit("_", 1)[0] in labels
        assert labels == sorted(labels, key=config.classes.index)  # class order, no repeats
        assert len(set(labels)) == len(labels)


# ---------------------------------------------------------------- SNR


@pytest.mark.parametrize("snr_db", [-3.0, 6.0, 15.0])
@pytest.mark.parametrize("multi_label", [False, True])
def test_measured_snr_matches_request(tmp_path: Path, snr_db: float, multi_label: bool) -> None:
    config = dataclasses.replace(
        TINY,
        snr_db=(snr_db, snr_db),
        multi_label=multi_label,
        distractor_probability=1.0,
        clips_per_class=3,
    )
    synthesize(tmp_path, config, progress=False)
    for spec in plan(config):
        clip = render_clip(spec, config)
        written = load_audio(tmp_path / spec.path, sample_rate=SR).astype(np.float64)
        residual = written - clip.events - clip.distractor  # what is left is the noise bed
        start, stop = clip.span
        measured = 10 * np.log10(
            np.mean(clip.events[start:stop] ** 2) / np.mean(residual[start:stop] ** 2)
        )
        assert clip.snr_db == snr_db
        assert abs(measured - snr_db) < 1.0, (spec.clip_id, measured)
        assert multi_label or np.any(clip.distractor)  # single-label: unlabelled distractor


# ---------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"clips_per_class": 0}, "clips_per_class"),
        ({"classes": ("siren", "trumpet")}, "trumpet"),
        ({"classes": ()}, "classes is empty"),
        ({"classes": ("rain", "rain")}, "Duplicate"),
        ({"duration_seconds": (-1.0, 2.0)}, "duration_seconds minimum"),
        ({"duration_seconds": (0.0, 2.0)}, "duration_seconds minimum"),
        ({"duration_seconds": (3.0, 1.0)}, "minimum must be <= maximum"),
        ({"duration_seconds": (1.0,)}, "(min, max)"),
        ({"snr_db": (12.0, -3.0)}, "snr_db minimum must be <= maximum"),
        ({"snr_db": (0.0, float("nan"))}, "finite"),
        ({"sample_rate": 8000}, "sample_rate"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "< 1"),
        ({"clips_per_class": 2}, "no training clip"),
        ({"distractor_probability": 1.5}, "distractor_probability"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_config_raises_config_error(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SynthConfig(**overrides)


def test_output_path_that_is_a_file_raises(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a folder")
    with pytest.raises(ConfigError, match="not a directory"):
        synthesize(target, TINY, progress=False)


# ---------------------------------------------------------------- class signatures (clean events)


def clean(name: str, seed: int, seconds: float = 2.0) -> synth_sounds.Event:
    return synth_sounds.GENERATORS[name](np.random.default_rng(seed), int(seconds * SR), SR)


def frame_power(x: np.ndarray, size: int = 1024, hop: int = 256) -> np.ndarray:
    """``[frames, size // 2 + 1]`` power spectra of Hann-windowed frames."""
    count = 1 + (x.size - size) // hop
    frames = np.stack([x[i * hop : i * hop + size] for i in range(count)]) * np.hanning(size)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def dominant_hz(x: np.ndarray) -> np.ndarray:
    """Strongest frequency of every frame holding more than 5 % of the loudest frame's energy."""
    power = frame_power(x)
    energy = power.sum(axis=1)
    return np.argmax(power, axis=1)[energy > 0.05 * energy.max()] * SR / 1024


def envelope(x: np.ndarray, frame_s: float = 0.005) -> np.ndarray:
    size = int(frame_s * SR)
    return np.sqrt(np.mean(x[: x.size // size * size].reshape(-1, size) ** 2, axis=1))


def rising_edges(on: np.ndarray) -> int:
    return int(np.sum(on[1:] & ~on[:-1]) + on[0])


def flatness(x: np.ndarray) -> float:
    """Mean spectral flatness (geometric / arithmetic power mean, 125 Hz - 7 kHz), active frames."""
    power = frame_power(x, 512)[:, 4:225] + 1e-20
    energy = power.sum(axis=1)
    values = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    return float(np.mean(values[energy > 0.05 * energy.max()]))


def crest_factor(x: np.ndarray) -> float:
    return float(np.max(np.abs(x)) / np.sqrt(np.mean(x**2)))


@pytest.mark.parametrize("name", synth_sounds.CLASS_NAMES)
def test_every_generator_fills_its_length_at_peak_one(name: str) -> None:
    event = clean(name, 0, seconds=0.7)
    assert event.waveform.shape == (int(0.7 * SR),)
    assert np.all(np.isfinite(event.waveform))
    assert np.max(np.abs(event.waveform)) == pytest.approx(1.0)
    assert event.waveform[0] == 0.0 and event.waveform[-1] == 0.0  # faded ends: no clicks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_siren_sweeps_over_its_range(seed: int) -> None:
    event = clean("siren", seed)
    centre, depth = event.params["centre_hz"], event.params["depth_hz"]
    tracked = dominant_hz(event.waveform)
    assert tracked.min() >= centre - depth - 30 and tracked.max() <= centre + depth + 30
    assert tracked.max() - tracked.min() > depth  # the pitch moves over time


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alarm_beep_switches_on_and_off_at_its_rate(seed: int) -> None:
    event = clean("alarm_beep", seed)
    p = event.params
    on = envelope(event.waveform) > 0.5 * envelope(event.waveform).max()
    assert on.mean() == pytest.approx(p["duty"], abs=0.06)
    assert abs(rising_edges(on) - 2.0 * p["rate_hz"]) <= 1.5
    assert np.all(np.abs(dominant_hz(event.waveform) - p["pitch_hz"]) <= 16)  # one FFT bin


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engine_hum_peaks_at_fundamental_and_harmonics(seed: int) -> None:
    event = clean("engine_hum", seed)
    f0 = event.params["f0_hz"]
    spectrum = np.abs(np.fft.rfft(event.waveform * np.hanning(event.waveform.size))) ** 2
    hz = np.fft.rfftfreq(event.waveform.size, 1 / SR)
    below_1k = hz < 1000
    assert hz[below_1k][np.argmax(spectrum[below_1k])] == pytest.approx(f0, rel=0.04)
    for k in (1, 2, 3):  # harmonic peak vs the valley half-way to the next one
        peak = spectrum[np.abs(hz - k * f0) < 0.03 * k * f0].max()
        valley = spectrum[np.abs(hz - (k + 0.5) * f0) < 0.1 * f0].max()
        assert peak > 30 * valley, k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knock_is_impulsive(seed: int) -> None:
    event = clean("knock", seed)
    assert crest_factor(event.waveform) > 6.0  # a steady tone has 1.41
    energy = np.sort(envelope(event.waveform, 0.01) ** 2)[::-1]
    share = np.searchsorted(np.cumsum(energy) / energy.sum(), 0.9) / energy.size
    assert share < 0.4  # 90 % of the energy sits in under 40 % of the 10 ms frames
    assert 2 <= event.params["count"] <= 8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bird_chirp_is_high_and_bursty(seed: int) -> None:
    event = clean("bird_chirp", seed)
    p = event.params
    low, high = sorted([p["start_hz"], p["end_hz"]])
    tracked = dominant_hz(event.waveform)
    assert tracked.min() >= low - 450 and tracked.max() <= high + 450
    on = envelope(event.waveform) > 0.1 * envelope(event.waveform).max()
    assert on.mean() < 0.8 and rising_edges(on) >= min(p["count"], 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rain_is_broadband_and_tones_are_not(seed: int) -> None:
    assert flatness(clean("rain", seed).waveform) > 0.4
    for tonal in ("siren", "alarm_beep", "whistle", "engine_hum"):
        assert flatness(clean(tonal, seed).waveform) < 0.01, tonal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_speech_babble_is_voiced_and_syllabic(seed: int) -> None:
    event = clean("speech_babble", seed, seconds=3.0)
    p = event.params
    assert 1 <= p["talkers"] <= 3 and all(85 <= f0 <= 240 for f0 in p["f0_hz"])
    tracked = dominant_hz(event.waveform)
    assert np.median(tracked) < 1000  # energy in the first formant / low harmonics
    env = envelope(event.waveform, 0.02)
    modulation = np.abs(np.fft.rfft(env - env.mean())) ** 2
    hz = np.fft.rfftfreq(env.size, 0.02)
    assert modulation[(hz >= 2) & (hz <= 8)].sum() > modulation[(hz > 10) & (hz <= 25)].sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dog_bark_count_matches_bursts(seed: int) -> None:
    event = clean("dog_bark", seed)
    env = envelope(event.waveform, 0.01)
    assert rising_edges(env > 0.2 * env.max()) == event.params["count"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_whistle_is_a_nearly_pure_tone_on_its_notes(seed: int) -> None:
    event = clean("whistle", seed)
    notes = np.asarray(event.params["notes_hz"])
    tracked = dominant_hz(event.waveform)
    assert tracked.min() >= notes.min() * 0.95 and tracked.max() <= notes.max() * 1.05
    power = frame_power(event.waveform)
    peak_bins = np.argmax(power, axis=1)
    near = [row[max(0, b - 3) : b + 4].sum() / row.sum() for row, b in zip(power, peak_bins)]
    assert np.median(near) > 0.9  # almost all energy within +-3 bins of the whistled pitch


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chime_bell_rings_at_inharmonic_partials(seed: int) -> None:
    event = clean("chime_bell", seed)
    partials = np.asarray(event.params["partials_hz"])
    spectrum = np.abs(np.fft.rfft(event.waveform)) ** 2
    hz = np.fft.rfftfreq(event.waveform.size, 1 / SR)
    strongest = hz[np.argsort(spectrum)[::-1]]
    top = []
    for f in strongest:  # the five strongest distinct peaks
        if all(abs(f - t) > 20 for t in top):
            top.append(f)
        if len(top) == 5:
            break
    for f in top:
        assert np.min(np.abs(partials - f) / partials) < 0.01, f
    ratios = partials / partials[0]
    assert np.max(np.abs(ratios - np.round(ratios))) > 0.1  # not a harmonic series
