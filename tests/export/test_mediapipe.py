"""MediaPipe Tasks' AudioClassifier loads an exported model and agrees with lean_kd's evaluation.

MediaPipe runs in its own virtualenv (``python tests/export/mediapipe_env.py setup``; see
ARCHITECTURE.md for why): the test writes the model and a WAV, runs ``mediapipe_env.py classify``
there and compares its per-window results with the same file run through ai-edge-litert on
the same windows. MediaPipe cuts a clip into consecutive windows of the model's input
length, zero-padding the last one, and does not reset LSTM state between them; the
comparison does the same.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mediapipe_env
import numpy as np
import pytest

import export_helpers as h
from lean_kd.audio.io import load_audio, write_wav
from lean_kd.audio.windows import split_windows
from lean_kd.export.metadata import add_metadata
from lean_kd.export.tflite import export_tflite
from lean_kd.export.verify import tflite_scores

pytestmark = [
    pytest.mark.trains,
    pytest.mark.skipif(
        not mediapipe_env.is_ready(),
        reason=f"no MediaPipe virtualenv at {mediapipe_env.VENV} "
        "(create it: python tests/export/mediapipe_env.py setup)",
    ),
]
CLIP_CLASSES = [2, 0, 1, 2]  # one tone per second; the last one lasts 0.4 s


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    windows, _ = h.tone_windows(12, seed=11)
    by_class = {label: windows[label] for label in range(3)}
    clip = np.concatenate([by_class[c] for c in CLIP_CLASSES])[: 3 * 16000 + 6400]
    path = tmp_path_factory.mktemp("mediapipe") / "tones.wav"
    write_wav(path, clip, sample_rate=16000)
    return path


def mediapipe_scores(model: Path, wav: Path) -> tuple[list[int], np.ndarray]:
    """Timestamps (ms) and ``[windows, 3]`` scores from MediaPipe's AudioClassifier."""
    command = [str(mediapipe_env.PYTHON), mediapipe_env.__file__, "classify", str(model), str(wav)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    scores = np.zeros((len(results), len(h.LABELS)), np.float32)
    for row, result in enumerate(results):
        for category in result["categories"]:
            assert category["name"] == h.LABELS[category["index"]]
            scores[row, category["index"]] = category["score"]
    return [r["timestamp_ms"] for r in results], scores


def lean_kd_windows(wav: Path) -> np.ndarray:
    """The clip as MediaPipe windows it: consecutive 1 s windows, the last zero-padded."""
    return split_windows(load_audio(wav, sample_rate=16000), window=16000, hop=16000)


def test_float32_model_classifies_wav_like_lean_kd(wav, tmp_path):
    result = export_tflite(
        h.trained_model("plain"),
        quant="float32",
        out=tmp_path / "plain.tflite",
        labels=h.LABELS,
        sample_rate=16000,
    )
    timestamps, scores = mediapipe_scores(result.path, wav)
    ours = tflite_scores(result.path, lean_kd_windows(wav))
    assert timestamps == [0, 1000, 2000, 3000]
    np.testing.assert_allclose(scores, ours, atol=1e-4)
    assert list(scores.argmax(axis=1)) == list(ours.argmax(axis=1))
    # the tones themselves: the full 1 s windows (the last one is 0.4 s of tone and padding,
    # which one seed's model calls another tone)
    assert list(ours.argmax(axis=1))[:3] == CLIP_CLASSES[:3]


def test_int8_lstm_model_classifies_wav_like_lean_kd(wav, tmp_path):
    """LEAN-shaped: log-mel + conv branch and a BiLSTM over raw patches, int8 with hybrid LSTMs."""
    path = tmp_path / "lstm_int8.tflite"
    path.write_bytes(add_metadata(h.converted("lstm", "int8"), labels=h.LABELS, sample_rate=16000))
    _, scores = mediapipe_scores(path, wav)
    # MediaPipe keeps the LSTM state between windows: it must score as lean_kd does without
    # resets. (Whether this small int8 model gets every window's tone right depends on the
    # seed: the last, mostly padded window flipped for one; the float test checks the classes.)
    ours = tflite_scores(path, lean_kd_windows(wav), reset_state=False)
    np.testing.assert_allclose(scores, ours, atol=1e-4)
    assert list(scores.argmax(axis=1)) == list(ours.argmax(axis=1))
