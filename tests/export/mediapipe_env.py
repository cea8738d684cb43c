"""The MediaPipe virtualenv for the AudioClassifier compatibility test, and its classify step.

mediapipe 1.2.2 needs absl-py~=2.3 while tensorflow-model-optimization pins absl-py~=1.2, so
pip cannot install both into one environment (see ARCHITECTURE.md). This file runs in two places:

- ``python tests/export/mediapipe_env.py setup`` (from the Makefile's setup, any Python):
  creates ``.venv-mediapipe`` at the repository root with ``python3.11 -m venv`` and installs
  mediapipe there, unless it already imports;
- ``.venv-mediapipe/bin/python tests/export/mediapipe_env.py classify MODEL WAV`` (from
  tests/export/test_mediapipe.py): classifies a 16-bit PCM WAV with MediaPipe Tasks'
  AudioClassifier and prints JSON, one entry per window MediaPipe made.

It uses only the standard library, numpy and mediapipe: it must not import lean_kd.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("LEAN_KD_MEDIAPIPE_VENV", REPO / ".venv-mediapipe"))
PYTHON = VENV / "bin" / "python"
REQUIREMENT = "mediapipe==1.2.2"


def is_ready() -> bool:
    """True when the venv exists and imports mediapipe's AudioClassifier."""
    if not PYTHON.is_file():
        return False
    probe = [str(PYTHON), "-c", "from mediapipe.tasks.python.audio import audio_classifier"]
    return subprocess.run(probe, capture_output=True, timeout=120).returncode == 0


def setup(python: str = "python3.11") -> None:
    """Create the venv and install mediapipe (no-op when it is ready)."""
    if is_ready():
        print(f"{VENV}: ready")
        return
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", REQUIREMENT], check=True)
    if not is_ready():
        raise SystemExit(f"{VENV}: mediapipe was installed but does not import")
    print(f"{VENV}: created with {REQUIREMENT}")


def read_wav(path: str):
    """Mono 16-bit PCM WAV -> (float32 samples in [-1, 1], sample rate)."""
    import numpy as np

    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise SystemExit(f"{path}: expected mono 16-bit PCM")
        frames = wav.readframes(wav.getnframes())
        rate = wav.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, rate


def classify(model: str, wav_path: str) -> list[dict]:
    """MediaPipe's results: ``[{"timestamp_ms", "categories": [{index, name, score}]}]``."""
    from mediapipe.tasks.python.audio import audio_classifier
    from mediapipe.tasks.python.audio.core.audio_task_running_mode import AudioTaskRunningMode
    from mediapipe.tasks.python.components.containers import audio_data
    from mediapipe.tasks.python.core import base_options

    samples, rate = read_wav(wav_path)
    options = audio_classifier.AudioClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_path=model),
        running_mode=AudioTaskRunningMode.AUDIO_CLIPS,
    )
    with audio_classifier.AudioClassifier.create_from_options(options) as classifier:
        results = classifier.classify(audio_data.AudioData.create_from_array(samples, rate))
    return [
        {
            "timestamp_ms": result.timestamp_ms,
            "categories": [
                {"index": c.index, "name": c.category_name, "score": c.score}
                for c in result.classifications[0].categories
            ],
        }
        for result in results
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("setup", help=f"create {VENV.name} with {REQUIREMENT}")
    make.add_argument("--python", default="python3.11", help="interpreter for the venv")
    run = commands.add_parser(
        "classify", help="classify a WAV with MediaPipe (run inside the venv)"
    )
    run.add_argument("model")
    run.add_argument("wav")
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.python)
    else:
        print(json.dumps(classify(args.model, args.wav)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
