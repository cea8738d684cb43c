"""Decoding, mono down-mix, resampling and validation of audio files."""

import numpy as np
import pytest
import soundfile

from lean_kd.audio.io import load_audio, peak_safe, resample, valid_audio, write_wav
from lean_kd.errors import AudioInputError


def tone(freq, rate, seconds=1.0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_load_formats_resample_preserves_tone(tmp_path, fmt, subtype):
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(path, tone(440, 44100), 44100, format=fmt, subtype=subtype)
    x = load_audio(path, sample_rate=16000)
    assert x.dtype == np.float32
    assert abs(len(x) - 16000) <= 1
    assert dominant_hz(x, 16000) == pytest.approx(440, abs=2)
    assert np.max(np.abs(x)) == pytest.approx(0.5, abs=0.02)


def test_upsampling_8k_to_16k_keeps_frequency(tmp_path):
    path = tmp_path / "digit.wav"
    soundfile.write(path, tone(1000, 8000), 8000)
    x = load_audio(path, sample_rate=16000)
    assert len(x) == 16000
    assert dominant_hz(x, 16000) == pytest.approx(1000, abs=2)
    # no energy above the source Nyquist (4 kHz) beyond the resampler's stop band
    spectrum = np.abs(np.fft.rfft(x))
    assert spectrum[4200:].max() < 1e-3 * spectrum.max()


def test_stereo_is_averaged(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = tone(300, 16000, amp=0.8), np.zeros(16000, np.float32)
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    x = load_audio(path, sample_rate=16000)
    np.testing.assert_allclose(x, left / 2, atol=1e-6)


def test_peak_safe_scales_only_overshoot():
    np.testing.assert_allclose(peak_safe(np.array([0.5, -0.25], np.float32)), [0.5, -0.25])
    np.testing.assert_allclose(peak_safe(np.array([2.0, -1.0], np.float32)), [1.0, -0.5])


def test_float_file_above_full_scale_is_brought_into_range(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(path, np.array([0.0, 1.5, -3.0, 0.3], np.float32), 16000, subtype="FLOAT")
    x = load_audio(path, sample_rate=16000)
    np.testing.assert_allclose(x, [0.0, 0.5, -1.0, 0.1], atol=1e-6)


def test_write_wav_round_trip_and_atomic(tmp_path):
    path = tmp_path / "out.wav"
    write_wav(path, tone(500, 16000), sample_rate=16000)
    assert soundfile.info(path).samplerate == 16000
    assert not list(tmp_path.glob(".*.tmp"))
    np.testing.assert_allclose(load_audio(path, sample_rate=16000), tone(500, 16000), atol=1e-4)


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("this is not audio at all" * 10), "not a readable audio file"),
    ],
)
def test_bad_files_name_the_file(tmp_path, make, expected):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioInputError, match=expected) as info:
        load_audio(path, sample_rate=16000)
    assert str(path) in str(info.value)


def test_truncated_wav(tmp_path):
    path = tmp_path / "trunc.wav"
    write_wav(path, tone(500, 16000), sample_rate=16000)
    path.write_bytes(path.read_bytes()[:30])  # header cut mid-way
    with pytest.raises(AudioInputError, match="trunc.wav"):
        load_audio(path, sample_rate=16000)


def test_zero_length_clip(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioInputError, match="zero samples"):
        load_audio(path, sample_rate=16000)


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    soundfile.write(path, np.array([0.1, np.nan, np.inf, 0.2], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioInputError, match="2 sample\\(s\\) are NaN or Inf"):
        load_audio(path, sample_rate=16000)


def test_rate_zero_and_validation():
    with pytest.raises(AudioInputError, match="orig_rate=0"):
        resample(np.zeros(10, np.float32), orig_rate=0, target_rate=16000)
    with pytest.raises(AudioInputError, match="floating-point"):
        valid_audio(np.zeros(4, np.int16))
    with pytest.raises(AudioInputError, match="shape"):
        valid_audio(np.zeros((2, 2, 2), np.float32))
