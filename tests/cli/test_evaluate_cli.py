"""``lean-kd evaluate``: one command for Keras checkpoints and TFLite files, one-line errors."""

from __future__ import annotations

import json
import re

import pytest

from lean_kd.cli.main import main
from lean_kd.data.adapters import load_index
from lean_kd.evaluation import evaluate_model
from test_evaluation import eval_models, eval_synth  # noqa: F401 (fixtures)


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keras_checkpoint_report_beside_the_model(eval_models, eval_synth, capsys):  # noqa: F811
    model = eval_models["keras"]
    code, out, _ = run(
        ["evaluate", "--model", model, "--dataset", "csv", "--root", eval_synth, "--no-progress"],
        capsys,
    )
    assert code == 0
    path = model.with_name("tiny.keras.eval_test.json")
    report = json.loads(path.read_text())
    expected = evaluate_model(model, load_index("csv", eval_synth), progress=False)
    assert report["map"] == pytest.approx(expected["map"], abs=1e-9)
    assert report["format"] == "keras" and report["num_windows"] == expected["num_windows"]
    size_mb = model.stat().st_size / 1e6
    assert f"mAP {expected['map']:.4f}, accuracy {expected['accuracy']:.4f}" in out
    assert f"{size_mb:.2f} MB" in out and f"{expected['num_windows']} windows" in out
    assert f"Report: {path}" in out


def test_tflite_with_recipe_and_out(eval_models, eval_synth, tmp_path, capsys):  # noqa: F811
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "data:\n  dataset: csv\n  root: /nowhere\n  val_fraction: 0.3\n"
        "audio:\n  sample_rate: 16000\n  clip_seconds: 1.0\n"
    )
    out = tmp_path / "tflite.json"
    argv = [
        "evaluate",
        "--model",
        eval_models["tflite"],
        "--config",
        recipe,
        "--root",
        eval_synth,
        "--split",
        "test",
        "--out",
        out,
    ]
    code, printed, err = run(argv, capsys)
    assert code == 0
    report = json.loads(out.read_text())
    assert report["format"] == "tflite" and report["split"] == "test" and report["num_clips"] == 6
    assert "6/6" in err  # the progress bar
    assert f"Report: {out}" in printed


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--model", "{tmp}/missing.tflite", "--dataset", "csv", "--root", "{data}"],
            "missing.tflite: model file not found",
        ),
        (
            ["--model", "{tmp}/corrupt.tflite", "--dataset", "csv", "--root", "{data}"],
            "corrupt.tflite: not a loadable TFLite model",
        ),
        (
            ["--model", "{tmp}/four.keras", "--dataset", "csv", "--root", "{data}"],
            "predicts 4 classes but dataset csv has 3",
        ),
        (
            ["--model", "{tflite}", "--dataset", "csv", "--root", "{tmp}/nowhere"],
            "dataset root .*nowhere does not exist",
        ),
        (
            ["--model", "{tflite}", "--dataset", "csv", "--root", "{data}", "--split", "dev"],
            "Unknown split 'dev'",
        ),
        (
            ["--model", "{tflite}", "--dataset", "csv", "--root", "{data}", "--split", "val"],
            "split 'val' has no examples",
        ),
        (["--model", "{tflite}", "--dataset", "csv"], "--dataset needs --root"),
        (["--model", "{tflite}", "--config", "{tmp}/none.yaml"], "none.yaml"),
    ],
)
def test_bad_input_is_a_one_line_error(argv, message, eval_models, eval_synth, tmp_path, capsys):  # noqa: F811
    from helpers import tiny_model

    (tmp_path / "corrupt.tflite").write_bytes(b"not a flatbuffer" * 10)
    if "four.keras" in argv[1]:
        tiny_model(4).save(tmp_path / "four.keras")
    values = {"tmp": tmp_path, "data": eval_synth, "tflite": eval_models["tflite"]}
    code, out, err = run(["evaluate", *(a.format(**values) for a in argv)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("lean-kd: error: ") and err.count("\n") == 1
    assert re.search(message, err), err
