"""Issue 7: the Raspberry Pi runner's ``eval`` equals ``lean-kd evaluate`` on the same files.

The runner (export/raspberry_pi/lean_kd_pi, no TensorFlow, no lean_kd) and lean_kd's
evaluation read the same synthetic dataset (CSV manifest) and run the same TFLite file; clip
scores and metrics must agree to 1e-6.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lean_kd.data.adapters import load_index
from lean_kd.evaluation import evaluate_model, score_split
from test_evaluation import eval_lstm_models, eval_models, eval_synth  # noqa: F401 (fixtures)

RUNNER_DIR = Path(__file__).resolve().parents[2] / "export" / "raspberry_pi"
sys.path.insert(0, str(RUNNER_DIR))

import lean_kd_pi.__main__ as runner  # noqa: E402 (after the path insert)

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`


@pytest.mark.parametrize(
    "models", ["eval_models", "eval_lstm_models"]
)  # LSTM: state reset per window
def test_pi_eval_equals_lean_kd_evaluate(models, request, eval_synth, tmp_path):  # noqa: F811
    tflite = request.getfixturevalue(models)["tflite"]
    index = load_index("csv", eval_synth)
    out = tmp_path / "pi_eval.json"
    argv = [
        "eval",
        "--model",
        str(tflite),
        "--data",
        str(eval_synth),
        "--split",
        "test",
        "--json",
        str(out),
    ]
    assert runner.main(argv) == 0
    pi = json.loads(out.read_text())
    report = evaluate_model(tflite, index, progress=False)
    ours = score_split(tflite, index, progress=False).scores
    assert [c["path"] for c in pi["clips"]] == [e.path for e in index.split("test")]
    assert pi["classes"] == report["class_names"]
    assert (pi["sample_rate_hz"], pi["window_samples"], pi["hop_samples"]) == (
        report["sample_rate"],
        report["window_samples"],
        report["hop_samples"],
    )
    assert sum(c["windows"] for c in pi["clips"]) == report["num_windows"]
    pi_scores = np.array([c["scores"] for c in pi["clips"]])  # [clips, C]
    np.testing.assert_allclose(pi_scores, ours.clip_scores, rtol=0, atol=1e-6)
    metrics = pi["metrics"]
    assert metrics["clips"] == report["num_clips"]
    assert metrics["mAP"] == pytest.approx(report["map"], abs=1e-6)
    assert metrics["accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    assert metrics["average_precision"] == pytest.approx(report["per_class_ap"], abs=1e-6)
