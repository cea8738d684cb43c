"""run_probe on synthetic clips with the official YAMNet weights (skipped without ../shared).

The single-label data is 3 well-separated synthetic classes (8 clips each, SNR 20-30 dB, no
distractors): over synthesis seeds 0-5 the probe's accuracy on its 12 val + test clips was
0.83-1.0 (chance 0.33); the test asks for 0.6.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import tiny_model
from lean_kd._keras import keras
from lean_kd.config import ProbeSection
from lean_kd.data.adapters import load_index
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.errors import ModelError
from lean_kd.probe import LinearProbe, checkpoint_backbone, run_probe, yamnet_backbone
from lean_kd.probe.windows import clip_key, clip_window_outputs, pool_clips
from lean_kd.training.trainer import save_model

CLASSES = ("siren", "knock", "rain")


@pytest.fixture(scope="module")
def yamnet(yamnet_tflite):
    return yamnet_backbone(yamnet_tflite)


def synth_index(root, **options):
    config = SynthConfig(
        classes=CLASSES, clips_per_class=8, duration_seconds=(1.0, 2.0), snr_db=(20.0, 30.0),
        distractor_probability=0.0, val_fraction=0.25, test_fraction=0.25, **options,
    )  # fmt: skip
    synthesize(root, config, progress=False)
    return load_index("csv", root)


def test_probe_learns_separable_synthetic_classes_and_saves_itself(yamnet, tmp_path):
    index = synth_index(tmp_path / "data")
    report = run_probe(index, tmp_path / "out", backbone=yamnet, cache_dir=tmp_path / "cache")
    val, test = report["val"], report["test"]
    correct = val["accuracy"] * val["num_examples"] + test["accuracy"] * test["num_examples"]
    assert correct / (val["num_examples"] + test["num_examples"]) >= 0.6
    assert report["feature_size"] == 2 * (1024 + 521) and report["num_fit_clips"] == 12
    assert report["backbone"] == "yamnet" and report["fit_splits"] == ["train"]
    assert len(test["per_class_ap"]) == 3 and "confusion_matrix" in test  # evaluate_scores' shape
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["test"] == test
    probe = LinearProbe.load(tmp_path / "out" / "probe.npz")  # scores the test clips again
    test_clips = index.split("test")
    windows = clip_window_outputs(test_clips, backbone=yamnet, cache_dir=tmp_path / "cache")
    features = pool_clips([windows[clip_key(e)] for e in test_clips], features="both")
    predicted = probe.scores(features).argmax(1)
    truth = index.label_matrix(test_clips).argmax(1)
    assert np.mean(predicted == truth) == pytest.approx(test["accuracy"])


def test_multi_label_probe_and_fit_on_train_and_val(yamnet, tmp_path):
    index = synth_index(tmp_path / "data", multi_label=True)
    assert index.multi_label
    settings = ProbeSection(features="scores", C=0.5, fit_splits=("train", "val"))
    report = run_probe(index, tmp_path / "out", backbone=yamnet, settings=settings)
    assert "val" not in report  # fitted on it
    assert "accuracy" not in report["test"] and "confusion_matrix" not in report["test"]
    assert 0 < report["test"]["map"] <= 1
    assert report["num_fit_clips"] == len(index.split("train")) + len(index.split("val"))
    assert report["feature_size"] == 2 * 521
    probe = LinearProbe.load(tmp_path / "out" / "probe.npz")
    assert probe.multi_label and probe.coef.shape == (3, 2 * 521)


def test_checkpoint_backbone_needs_embeddings(tmp_path):
    save_model(tiny_model(3, width=4), tmp_path / "tiny.keras")
    backbone = checkpoint_backbone(tmp_path / "tiny.keras")
    assert backbone.window_samples == 16000 and backbone.identity.startswith("sha256:")
    outputs = backbone.run(np.zeros((2, 16000), np.float32))
    assert outputs["embeddings"].shape == (2, 8)
    np.testing.assert_allclose(outputs["scores"].sum(axis=1), 1.0, rtol=1e-5)  # softmax
    waveform = keras.Input(shape=(16000,), name="waveform")
    logits = keras.layers.Dense(3, name="logits")(keras.layers.Reshape((16000,))(waveform))
    save_model(keras.Model(waveform, {"logits": logits}), tmp_path / "no_embeddings.keras")
    expected = r"no_embeddings.keras: a probe needs .*'embeddings'.*gives \['logits'\]"
    with pytest.raises(ModelError, match=expected):
        checkpoint_backbone(tmp_path / "no_embeddings.keras")
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="Cannot load model .*broken.h5"):
        checkpoint_backbone(tmp_path / "broken.h5")
