"""Graph-side WAV decoding and resampling, checked against soundfile + soxr (lean_kd.audio.io)."""

import numpy as np
import pytest
import soundfile
import soxr

from lean_kd._keras import tf
from lean_kd.audio.io import load_audio
from lean_kd.audio.resample_tf import design, supported
from lean_kd.audio.wav_tf import FALLBACK, WavDecoder, canonical_header, scan_wavs
from lean_kd.errors import ConfigError

SENTINEL = [-7.0]  # what the test fallback returns, so a test can see which route ran


def snr_db(reference, x, edge):
    reference, x = reference[edge:-edge], x[edge:-edge]
    return 10 * np.log10(np.sum(reference**2) / np.sum((reference - x) ** 2))


def signals(rate):
    """A tone at a quarter and a chirp up to 0.85 of the lower Nyquist frequency (the passband)."""
    t = np.arange(int(rate * 0.7)) / rate
    top = 0.85 * min(rate, 16000) / 2
    tone = 0.5 * np.sin(2 * np.pi * top / 3.4 * t)
    chirp = 0.5 * np.sin(2 * np.pi * (50 * t + (top - 50) / (2 * t[-1]) * t**2))
    return {"tone": tone.astype(np.float32), "chirp": chirp.astype(np.float32)}


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000])
def test_resampler_matches_soxr_within_60_db(rate):
    resampler = design(rate, 16000)
    for name, x in signals(rate).items():
        reference = soxr.resample(x, rate, 16000, quality="HQ")
        y = resampler(tf.constant(x)).numpy()
        assert y.shape == reference.shape, name
        # away from the edges, where soxr and this filter treat the abrupt start differently
        assert snr_db(reference, y, edge=320) >= 60, (rate, name)


def test_unsupported_ratios_are_rejected():
    assert supported(44100, 16000) and not supported(44101, 16000) and not supported(0, 16000)
    with pytest.raises(ConfigError, match="44101 Hz -> 16000 Hz"):
        design(44101, 16000)


def decode(path, target=16000, contents=None):
    """Scan ``path`` then decode it (or ``contents``, bytes read later) as the pipeline does."""
    scan = scan_wavs([str(path)], target)
    item = {name: tf.constant(values[0]) for name, values in scan.tensors().items()}
    contents = tf.io.read_file(str(path)) if contents is None else tf.constant(contents)
    return WavDecoder(scan).decode(contents, item, lambda: tf.constant(SENTINEL)).numpy()


def test_pcm16_at_the_target_rate_equals_soundfile_with_stereo_downmix(tmp_path):
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.9, 0.9, size=(3000, 2))
    path = tmp_path / "s.wav"
    soundfile.write(path, stereo, 16000, subtype="PCM_16")
    np.testing.assert_allclose(decode(path), load_audio(path, sample_rate=16000), atol=1e-7)


def test_pcm16_at_8_khz_matches_the_soxr_path(tmp_path):
    path = tmp_path / "c.wav"
    soundfile.write(path, signals(8000)["chirp"], 8000, subtype="PCM_16")
    reference = load_audio(path, sample_rate=16000)
    y = decode(path)
    assert y.shape == reference.shape
    assert snr_db(reference, y, edge=320) >= 60


def test_loud_file_is_scaled_down_like_peak_safe(tmp_path):
    square = np.sign(np.sin(2 * np.pi * 500 * np.arange(4000) / 8000)) * (32767 / 32768)
    path = tmp_path / "loud.wav"
    soundfile.write(path, square, 8000, subtype="PCM_16")
    y, reference = decode(path), load_audio(path, sample_rate=16000)
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-6)  # resampling overshoot removed
    assert np.max(np.abs(reference)) == pytest.approx(1.0, abs=1e-6)
    # a square wave has harmonics up to Nyquist, where the two filters differ most
    assert snr_db(reference, y, edge=320) >= 30


def write_variant(path, kind):
    x = signals(8000)["tone"]
    if kind == "pcm24":
        soundfile.write(path, x, 8000, subtype="PCM_24")
    elif kind == "float":
        soundfile.write(path, x, 8000, subtype="FLOAT")
    elif kind == "rate_22050":
        soundfile.write(path, x, 22050, subtype="PCM_16")
    else:
        soundfile.write(path, x, 8000, subtype="PCM_16")
        data = path.read_bytes()
        if kind == "truncated":
            path.write_bytes(data[:-100])
        elif kind == "trailing_chunk":
            path.write_bytes(data + b"LIST" + (4).to_bytes(4, "little") + b"INFO")
        elif kind == "header_only":
            path.write_bytes(data[:44])
        elif kind == "not_audio":
            path.write_bytes(b"not audio " * 20)


@pytest.mark.parametrize(
    "kind", ["pcm24", "float", "truncated", "trailing_chunk", "header_only", "not_audio"]
)
def test_other_files_take_the_fallback(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    write_variant(path, kind)
    np.testing.assert_array_equal(decode(path), SENTINEL)


def test_unsupported_rate_and_a_file_changed_since_the_scan_take_the_fallback(tmp_path):
    path = tmp_path / "odd.wav"
    soundfile.write(path, signals(8000)["tone"], 44101, subtype="PCM_16")  # ratio too complex
    np.testing.assert_array_equal(decode(path), SENTINEL)
    path = tmp_path / "ok.wav"
    write_variant(path, "pcm16")
    assert decode(path).shape == (2 * 5600,)
    np.testing.assert_array_equal(decode(path, contents=path.read_bytes()[:-100]), SENTINEL)
    np.testing.assert_array_equal(decode(path, contents=b""), SENTINEL)


def test_header_check_accepts_only_canonical_pcm16(tmp_path):
    path = tmp_path / "s.wav"
    soundfile.write(path, np.zeros((50, 2)), 22050, subtype="PCM_16")
    data = path.read_bytes()
    assert canonical_header(data[:44], len(data)) == (22050, 2)
    assert canonical_header(data[:44], len(data) + 1) is None  # data chunk must end the file
    assert canonical_header(data[:40], len(data)) is None
    odd_byte_rate = data[:28] + (22050 * 4 + 1).to_bytes(4, "little") + data[32:44]
    assert canonical_header(odd_byte_rate, len(data)) is None


def test_scan_routes_canonical_wavs_by_rate_and_the_rest_to_the_fallback(tmp_path):
    for kind in ("pcm16", "rate_22050", "not_audio", "truncated"):
        write_variant(tmp_path / f"{kind}.wav", kind)
    soundfile.write(tmp_path / "x.flac", np.zeros(100), 8000)
    names = ("pcm16.wav", "rate_22050.wav", "not_audio.wav", "truncated.wav", "x.flac", "gone.wav")
    scan = scan_wavs([str(tmp_path / n) for n in names], 16000)
    assert scan.rates_hz == (8000, 22050)
    np.testing.assert_array_equal(scan.route, [0, 1, FALLBACK, FALLBACK, FALLBACK, FALLBACK])
    assert scan.file_bytes[0] == (tmp_path / "pcm16.wav").stat().st_size
    np.testing.assert_array_equal(scan.channels, [1] * 6)
