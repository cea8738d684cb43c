"""``lean-kd probe`` as typed: outputs, flags over the recipe, errors before any work."""

from __future__ import annotations

import json

import pytest

from lean_kd._keras import keras
from lean_kd.cli.main import main
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.training.trainer import save_model


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A recipe on 3 synthetic classes x 4 clips (csv manifest with train/val/test)."""
    root = tmp_path_factory.mktemp("probe_cli")
    classes = ("siren", "knock", "rain")
    config = SynthConfig(classes=classes, clips_per_class=4, duration_seconds=(1.0, 1.5))
    synthesize(root / "data", config, progress=False)
    path = root / "recipe.yaml"
    data = f"{{dataset: csv, root: {root / 'data'}}}"
    path.write_text(f"name: probe_cli\ndata: {data}\nprobe: {{C: 2.0}}\n")
    return path


def test_probe_writes_metrics_and_probe_with_flags_over_the_recipe(
    recipe, yamnet_tflite, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["probe", "--config", str(recipe), "--out", str(out), "--features", "scores"]
    argv.append("--no-progress")
    assert main(argv) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["features"] == "scores" and report["C"] == 2.0
    assert report["feature_size"] == 2 * 521
    assert {"val", "test"} <= set(report) and (out / "probe.npz").is_file()
    assert list((out / "window_outputs").rglob("*.npz"))  # the cache, by default inside --out
    text = capsys.readouterr().out
    assert "Probe on yamnet (scores, C=2" in text and "  test: accuracy" in text
    assert main([*argv, "--C", "0.5"]) == 0
    assert json.loads((out / "metrics.json").read_text())["C"] == 0.5


def test_model_without_embeddings_fails_before_any_work(recipe, tmp_path, capsys):
    waveform = keras.Input(shape=(16000,), name="waveform")
    logits = keras.layers.Dense(3, name="logits")(keras.layers.Reshape((16000,))(waveform))
    model = tmp_path / "no_embeddings.keras"
    save_model(keras.Model(waveform, {"logits": logits}), model)
    out = tmp_path / "out"
    assert main(["probe", "--config", str(recipe), "--out", str(out), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "lean-kd: error:" in err and "no_embeddings.keras" in err and "'embeddings'" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "probe, message",
    [
        ("{C: -1}", "probe.C must be a number > 0, got -1"),
        ("{pooling: attention}", "unknown key(s) ['pooling']"),
        ("{fit_splits: [test]}", "probe.fit_splits must be distinct splits among ['train', 'val']"),
    ],
)
def test_bad_probe_section_is_a_one_line_error(recipe, tmp_path, capsys, probe, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("probe: {C: 2.0}", f"probe: {probe}"))
    assert main(["probe", "--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_unknown_features_value_is_rejected_by_the_parser(recipe, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["probe", "--config", str(recipe), "--out", str(tmp_path), "--features", "logits"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'logits'" in capsys.readouterr().err
