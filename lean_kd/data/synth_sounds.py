"""Parametric sound generators for the synthetic dataset.

Each generator draws its own parameters from the ``rng`` it is given and renders one event of
exactly ``num_samples`` samples, peak-normalised to 1. The drawn parameters come back with the
waveform so that tests can check each class's signature (a siren's sweep range, a beep train's
rate, an engine's fundamental) against the values that produced it. Parameter ranges overlap
between classes on purpose (sirens, whistles and beeps share pitches; engines and babble share
low harmonics) so that telling the classes apart needs more than the average spectrum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import signal

FADE_SECONDS = 0.005  # raised-cosine fade at both ends of every event: no clicks at the edges


@dataclasses.dataclass(frozen=True)
class Event:
    """One rendered sound event and the parameters drawn for it."""

    waveform: np.ndarray  # [samples] float64, peak 1 (all zeros only if nothing was drawn)
    params: dict[str, float | list[float] | str]


Generator = Callable[[np.random.Generator, int, int], Event]


# ---------------------------------------------------------------- building blocks


def _seconds(num_samples: int, sample_rate: int) -> np.ndarray:
    return np.arange(num_samples) / sample_rate


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def finish(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Fade both ends and scale to peak 1 (a silent waveform stays silent)."""
    fade = min(int(FADE_SECONDS * sample_rate), waveform.size // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        waveform = waveform.copy()
        waveform[:fade] *= ramp
        waveform[-fade:] *= ramp[::-1]
    peak = float(np.max(np.abs(waveform))) if waveform.size else 0.0
    return waveform / peak if peak > 0 else waveform


def harmonic_tone(freq_hz: np.ndarray, sample_rate: int, amplitudes: list[float]) -> np.ndarray:
    """Sum of harmonics of an instantaneous frequency track ``[samples]``; none above Nyquist."""
    phase = 2 * np.pi * np.cumsum(freq_hz) / sample_rate
    out = np.zeros_like(freq_hz, dtype=np.float64)
    for k, amplitude in enumerate(amplitudes, start=1):
        if amplitude:
            audible = k * freq_hz < 0.45 * sample_rate
            out += amplitude * np.sin(k * phase) * audible
    return out


def coloured_noise(rng: np.random.Generator, num_samples: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)
    rms = float(np.sqrt(np.mean(noise**2)))
    return noise / rms if rms > 0 else noise


def smooth_walk(
    rng: np.random.Generator, num_samples: int, sample_rate: int, rate_hz: float
) -> np.ndarray:
    """Slow random contour in about [-1, 1]: noise knots every 1/rate_hz s, linearly joined."""
    knots = max(2, int(num_samples / sample_rate * rate_hz) + 2)
    values = rng.uniform(-1.0, 1.0, knots)
    return np.interp(np.linspace(0, knots - 1, num_samples), np.arange(knots), values)


def resonate(x: np.ndarray, centre_hz: float, bandwidth_hz: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonator (a formant or a body mode) with unit gain at its centre."""
    radius = np.exp(-np.pi * bandwidth_hz / sample_rate)
    theta = 2 * np.pi * centre_hz / sample_rate
    denominator = [1.0, -2 * radius * np.cos(theta), radius**2]
    gain = abs(np.polyval(denominator[::-1], np.exp(-1j * theta)))
    return signal.lfilter([gain], denominator, x)


def damped_modes(
    freqs_hz: list[float],
    taus_s: list[float],
    amps: list[float],
    num_samples: int,
    sample_rate: int,
) -> np.ndarray:
    """Sum of exponentially decaying sinusoids (an impact or a struck bell)."""
    t = _seconds(num_samples, sample_rate)
    out = np.zeros(num_samples)
    for freq, tau, amp in zip(freqs_hz, taus_s, amps):
        out += amp * np.exp(-t / tau) * np.sin(2 * np.pi * freq * t)
    return out


def add_at(out: np.ndarray, sound: np.ndarray, start: int) -> None:
    """Add ``sound`` into ``out`` from sample ``start``, cutting what falls off the end."""
    stop = min(out.size, start + sound.size)
    if stop > start:
        out[start:stop] += sound[: stop - start]


def burst_starts(
    rng: np.random.Generator,
    num_samples: int,
    sample_rate: int,
    count: int,
    gap_s: tuple[float, float],
) -> list[int]:
    """Start samples of up to ``count`` bursts separated by random gaps, inside the event."""
    starts, position = [], int(rng.uniform(0.0, 0.1) * sample_rate)
    for _ in range(count):
        if position >= num_samples:
            break
        starts.append(position)
        position += int(rng.uniform(*gap_s) * sample_rate)
    return starts


# ---------------------------------------------------------------- the classes


def siren(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """Periodic up/down frequency sweep (wail or yelp) of a buzzy tone."""
    centre, rate = rng.uniform(600, 1600), _log_uniform(rng, 0.4, 8.0)
    depth = rng.uniform(0.2, 0.45) * centre
    shape = str(rng.choice(["sine", "triangle", "saw"]))
    cycle = (_seconds(num_samples, sample_rate) * rate + rng.uniform()) % 1.0
    lfo = {
        "sine": np.sin(2 * np.pi * cycle),
        "triangle": 4 * np.abs(cycle - 0.5) - 1,
        "saw": 2 * cycle - 1,
    }[shape]
    amps = [1.0, rng.uniform(0.0, 0.5), rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.15)]
    tone = harmonic_tone(centre + depth * lfo, sample_rate, amps)
    params = {"centre_hz": centre, "depth_hz": depth, "rate_hz": rate, "shape": shape}
    return Event(finish(tone, sample_rate), params)


def alarm_beep(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """Train of constant-pitch beeps: on/off gating at ``rate_hz`` with a ``duty`` cycle."""
    pitch, rate, duty = _log_uniform(rng, 1800, 3500), rng.uniform(1.5, 8.0), rng.uniform(0.25, 0.7)
    timbre = [[1.0, 0.0, 0.5, 0.0, 0.3, 0.0, 0.2], [1.0, 0.6, 0.4, 0.3, 0.2]][rng.integers(2)]
    t = _seconds(num_samples, sample_rate)
    gate = ((t * rate + rng.uniform(0.0, 1.0 - duty)) % 1.0 < duty).astype(np.float64)
    ramp = np.hanning(max(3, int(0.004 * sample_rate)))
    gate = np.convolve(gate, ramp / ramp.sum(), mode="same")  # 4 ms edges instead of clicks
    tone = harmonic_tone(np.full(num_samples, pitch), sample_rate, timbre) * gate
    return Event(finish(tone, sample_rate), {"pitch_hz": pitch, "rate_hz": rate, "duty": duty})


def engine_hum(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """Low fundamental with a stack of harmonics, slow speed jitter and firing-rate AM."""
    f0, jitter = rng.uniform(25, 90), rng.uniform(0.002, 0.015)
    freq = f0 * (1 + jitter * smooth_walk(rng, num_samples, sample_rate, 2.0))
    count = int(min(40, 2000 / f0))
    tilt = rng.uniform(0.5, 1.5)
    amps = [k**-tilt * rng.uniform(0.3, 1.0) for k in range(1, count + 1)]
    amps[0] = 1.0
    t = _seconds(num_samples, sample_rate)
    am_rate, am_depth = rng.uniform(1.0, 12.0), rng.uniform(0.0, 0.4)
    tone = harmonic_tone(freq, sample_rate, amps) * (1 + am_depth * np.sin(2 * np.pi * am_rate * t))
    rumble = signal.lfilter([0.05], [1.0, -0.95], coloured_noise(rng, num_samples, 1.0))
    params = {"f0_hz": f0, "jitter": jitter, "am_rate_hz": am_rate, "am_depth": am_depth}
    return Event(finish(tone + rumble * rng.uniform(0.02, 0.1), sample_rate), params)


def knock(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """Train of impacts, each a few damped body resonances plus a short noise click."""
    count = int(rng.integers(2, 9))
    modes = int(rng.integers(2, 5))
    freqs = [_log_uniform(rng, 100, 1500) for _ in range(modes)]
    taus = [rng.uniform(0.004, 0.04) for _ in range(modes)]
    length = int(0.25 * sample_rate)
    out = np.zeros(num_samples)
    starts = burst_starts(rng, num_samples, sample_rate, count, (0.06, 0.4))
    for start in starts:
        amps = list(rng.uniform(0.3, 1.0, modes))
        hit = damped_modes(freqs, taus, amps, length, sample_rate)
        click = rng.standard_normal(length) * np.exp(-_seconds(length, sample_rate) / 0.001)
        add_at(out, rng.uniform(0.5, 1.0) * (hit + rng.uniform(0.1, 0.5) * click), start)
    params = {"count": len(starts), "mode_freqs_hz": freqs, "mode_taus_s": taus}
    return Event(finish(out, sample_rate), params)


def bird_chirp(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """Short frequency-modulated chirps (optionally trilled) with a weak second harmonic."""
    start_hz, ratio = _log_uniform(rng, 2000, 6000), _log_uniform(rng, 0.5, 1.6)
    chirp_s, trill_hz, trill_depth = (
        rng.uniform(0.03, 0.15),
        rng.uniform(20, 60),
        rng.uniform(0, 400),
    )
    second = rng.uniform(0.0, 0.3)
    length = int(chirp_s * sample_rate)
    t = _seconds(length, sample_rate)
    sweep = start_hz * ratio ** (t / chirp_s) + trill_depth * np.sin(2 * np.pi * trill_hz * t)
    chirp = harmonic_tone(sweep, sample_rate, [1.0, second]) * np.hanning(length)
    out = np.zeros(num_samples)
    starts = burst_starts(rng, num_samples, sample_rate, 40, (chirp_s + 0.03, chirp_s + 0.3))
    for start in starts:
        add_at(out, rng.uniform(0.4, 1.0) * chirp, start)
    params = {
        "start_hz": start_hz,
        "end_hz": start_hz * ratio,
        "chirp_s": chirp_s,
        "count": len(starts),
    }
    return Event(finish(out, sample_rate), params)


def rain(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """Broadband noise bed plus random droplet clicks (short high resonances)."""
    exponent, drop_rate = rng.uniform(0.0, 0.6), _log_uniform(rng, 20, 200)
    bed = coloured_noise(rng, num_samples, exponent)
    bed = signal.lfilter([1.0, -1.0], [1.0, -0.98], bed)  # remove the rumble below ~50 Hz
    drops = np.zeros(num_samples)
    times = rng.uniform(0, num_samples, rng.poisson(drop_rate * num_samples / sample_rate))
    drops[times.astype(int)] = rng.lognormal(0.0, 0.7, times.size)
    drops = resonate(drops, rng.uniform(1500, 6000), rng.uniform(800, 3000), sample_rate)
    out = bed + rng.uniform(1.0, 4.0) * drops
    params = {"noise_exponent": exponent, "drop_rate_hz": drop_rate}
    return Event(finish(out, sample_rate), params)


VOWELS_HZ = [  # F1, F2, F3 of a few vowels (adult averages)
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (570, 840, 2410),
    (660, 1720, 2410),
    (440, 1020, 2240),
    (490, 1350, 1690),
]


def _talker(
    rng: np.random.Generator, num_samples: int, sample_rate: int
) -> tuple[np.ndarray, float, float]:
    """One synthetic talker: glottal pulses through syllable-wise vowel formants."""
    f0, syllable_rate = rng.uniform(85, 240), rng.uniform(3.0, 6.5)
    contour = f0 * (1 + 0.12 * smooth_walk(rng, num_samples, sample_rate, syllable_rate))
    phase = np.cumsum(contour) / sample_rate
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
    source = signal.lfilter([1.0], [1.0, -0.95], pulses) + 0.02 * rng.standard_normal(num_samples)
    out, position = np.zeros(num_samples), 0
    while position < num_samples:
        length = int(rng.uniform(0.7, 1.3) * sample_rate / syllable_rate)
        if rng.uniform() > 0.15:  # otherwise a pause
            segment = source[position : position + length]
            for formant in VOWELS_HZ[rng.integers(len(VOWELS_HZ))]:
                hz = formant * rng.uniform(0.9, 1.1)
                segment = resonate(segment, hz, 60 + 0.06 * hz, sample_rate)
            add_at(out, segment * np.hanning(segment.size), position)
        position += length
    return signal.lfilter([1.0, -1.0], [1.0, -0.99], out), f0, syllable_rate  # no DC


def speech_babble(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """One to three overlapping synthetic talkers (formant-filtered glottal pulse trains)."""
    talkers = int(rng.integers(1, 4))
    out, f0s, rates = np.zeros(num_samples), [], []
    for _ in range(talkers):
        voice, f0, rate = _talker(rng, num_samples, sample_rate)
        out += rng.uniform(0.5, 1.0) * voice / max(float(np.max(np.abs(voice))), 1e-9)
        f0s.append(f0)
        rates.append(rate)
    return Event(
        finish(out, sample_rate), {"talkers": talkers, "f0_hz": f0s, "syllable_rate_hz": rates}
    )


def dog_bark(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """One to four harsh barks: falling harmonic burst plus noise through two formants."""
    count, f0 = int(rng.integers(1, 5)), rng.uniform(250, 800)
    bark_s, fall, harshness = rng.uniform(0.08, 0.25), rng.uniform(0.6, 0.9), rng.uniform(0.2, 0.6)
    formants = [rng.uniform(500, 1200), rng.uniform(1500, 3000)]
    length = int(bark_s * sample_rate)
    t = _seconds(length, sample_rate)
    envelope = (1 - np.exp(-t / 0.005)) * np.exp(-t / (0.4 * bark_s))
    out = np.zeros(num_samples)
    starts = burst_starts(rng, num_samples, sample_rate, count, (bark_s + 0.1, bark_s + 0.4))
    for start in starts:
        source = harmonic_tone(f0 * fall ** (t / bark_s), sample_rate, [1.0, 0.7, 0.5, 0.35, 0.25])
        source += harshness * rng.standard_normal(length)
        bark = sum(resonate(source, hz, 150 + 0.1 * hz, sample_rate) for hz in formants)
        add_at(out, rng.uniform(0.6, 1.0) * bark * envelope, start)
    params = {"count": len(starts), "f0_hz": f0, "bark_s": bark_s}
    return Event(finish(out, sample_rate), params)


def whistle(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """A few near-pure whistled notes joined by glides, with vibrato and breath noise."""
    notes = [_log_uniform(rng, 900, 3200) for _ in range(int(rng.integers(1, 6)))]
    glide = max(1, int(rng.uniform(0.02, 0.08) * sample_rate))
    steps = np.asarray(notes)[np.arange(num_samples) * len(notes) // num_samples]
    track = np.convolve(np.pad(steps, glide, mode="edge"), np.ones(glide) / glide, mode="same")
    track = track[glide : glide + num_samples]
    t = _seconds(num_samples, sample_rate)
    vibrato = 1 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    tone = harmonic_tone(track * vibrato, sample_rate, [1.0, rng.uniform(0.0, 0.05)])
    breath = resonate(rng.standard_normal(num_samples), float(np.mean(notes)), 400, sample_rate)
    out = tone + rng.uniform(0.03, 0.1) * breath / max(float(np.std(breath)), 1e-9)
    return Event(finish(out, sample_rate), {"notes_hz": notes})


BELL_RATIOS = [0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011]  # partials of a church bell


def chime_bell(rng: np.random.Generator, num_samples: int, sample_rate: int) -> Event:
    """One to three strikes of a bell or chime: inharmonic partials with partial-wise decay."""
    base, decay_s = _log_uniform(rng, 300, 1500), rng.uniform(0.3, 1.5)
    partials = [base * r * rng.uniform(0.98, 1.02) for r in BELL_RATIOS]
    partials = [hz for hz in partials if hz < 0.45 * sample_rate]
    amps = [float(a) for a in rng.uniform(0.2, 1.0, len(partials))]
    taus = [decay_s * (hz / base) ** -0.7 for hz in partials]
    strike = damped_modes(partials, taus, amps, num_samples, sample_rate)
    out = np.zeros(num_samples)
    starts = burst_starts(rng, num_samples, sample_rate, int(rng.integers(1, 4)), (0.3, 1.2))
    for start in starts:
        add_at(out, rng.uniform(0.6, 1.0) * strike, start)
    params = {"partials_hz": partials, "partial_amps": amps, "strikes": len(starts)}
    return Event(finish(out, sample_rate), params)


GENERATORS: dict[str, Generator] = {
    "siren": siren,
    "alarm_beep": alarm_beep,
    "engine_hum": engine_hum,
    "knock": knock,
    "bird_chirp": bird_chirp,
    "rain": rain,
    "speech_babble": speech_babble,
    "dog_bark": dog_bark,
    "whistle": whistle,
    "chime_bell": chime_bell,
}
CLASS_NAMES: tuple[str, ...] = tuple(GENERATORS)


# ---------------------------------------------------------------- backgrounds


BED_EXPONENT = (0.8, 2.0)  # spectral slope of the background noise: pink (1) to brown (2)
HUM_PROBABILITY = 0.3  # share of backgrounds with 50/60 Hz mains hum


def noise_bed(
    rng: np.random.Generator, num_samples: int, sample_rate: int
) -> tuple[np.ndarray, dict]:
    """Pink-to-brown noise, sometimes with mains hum: the background a clip's SNR refers to."""
    exponent = rng.uniform(*BED_EXPONENT)
    bed = signal.lfilter([1.0, -1.0], [1.0, -0.995], coloured_noise(rng, num_samples, exponent))
    bed /= max(float(np.std(bed)), 1e-12)
    mains = 0.0
    if rng.uniform() < HUM_PROBABILITY:
        mains = float(rng.choice([50.0, 60.0]))
        hum = harmonic_tone(np.full(num_samples, mains), sample_rate, [1.0, 0.5, 0.3, 0.2])
        bed += rng.uniform(0.3, 1.0) * hum
    return bed, {"noise_exponent": exponent, "mains_hz": mains}
