"""lean_kd.evaluation: Keras checkpoints and TFLite files through one evaluation code path.

The fixtures here (a tiny synthetic dataset, a tiny contract model saved as ``.keras`` and
exported as float32 ``.tflite``) are shared with tests/cli/test_evaluate_cli.py and
tests/export/test_pi_eval_parity.py (importable as ``test_evaluation``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from lean_kd.audio.io import load_audio
from lean_kd.audio.windows import num_windows
from lean_kd.config import AudioConfig
from lean_kd.data.adapters import load_index
from lean_kd.data.index import Example
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.errors import AudioInputError, ConfigError, DataError, ModelError
from lean_kd.evaluation import evaluate_keras, evaluate_model, score_split, write_evaluation
from lean_kd.export.tflite import export_tflite
from lean_kd.models.registry import load_model
from lean_kd_runtime.metrics import evaluate_scores

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

# 3 classes x 4 clips of 0.6-2.2 s (some shorter than a window): 6 train, 6 test clips.
SYNTH = SynthConfig(
    classes=("siren", "dog_bark", "engine_hum"),
    clips_per_class=4,
    duration_seconds=(0.6, 2.2),
    val_fraction=0.0,
    test_fraction=0.5,
)
RATE = 16000


@pytest.fixture(scope="session")
def eval_synth(tmp_path_factory) -> Path:
    """Root of the tiny synthetic dataset (CSV manifest), written once per session."""
    root = tmp_path_factory.getbasetemp() / "eval_synth"
    synthesize(root, SYNTH, progress=False)
    return root


@functools.cache
def saved_models(kind: str, folder: Path, data: Path) -> dict[str, Path]:
    """Model ``kind`` for the dataset at ``data``, as ``.keras`` and float32 ``.tflite``.

    ``tiny``: the untrained log-mel CNN of tests/helpers.py; ``lstm``: the tone-trained BiLSTM
    model of tests/export_helpers.py, whose fused LSTM state shows in its scores. Cached, so
    that the test modules importing the fixtures below build each model once per session.
    """
    import export_helpers
    from helpers import tiny_model

    index = load_index("csv", data)
    model = tiny_model(index.num_classes) if kind == "tiny" else export_helpers.trained_model(kind)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"keras": folder / f"{kind}.keras", "tflite": folder / f"{kind}.tflite"}
    model.save(paths["keras"])
    export_tflite(
        model,
        quant="float32",
        out=paths["tflite"],
        labels=list(index.class_names),
        sample_rate=RATE,
    )
    return paths


@pytest.fixture(scope="session")
def eval_models(tmp_path_factory, eval_synth) -> dict[str, Path]:
    return saved_models("tiny", tmp_path_factory.getbasetemp() / "eval_models", eval_synth)


@pytest.fixture(scope="session")
def eval_lstm_models(tmp_path_factory, eval_synth) -> dict[str, Path]:
    return saved_models("lstm", tmp_path_factory.getbasetemp() / "eval_models", eval_synth)


@pytest.fixture(scope="module")
def index(eval_synth):
    return load_index("csv", eval_synth)


@pytest.fixture(scope="module")
def keras_report(eval_models, index):
    return evaluate_model(eval_models["keras"], index, progress=False)


def expected_windows(examples) -> int:
    """1 s windows with a 0.5 s hop, counted from the decoded clips themselves."""
    return sum(
        num_windows(len(load_audio(e.path, sample_rate=RATE)), window=RATE, hop=RATE // 2)
        for e in examples
    )


def test_keras_report_equals_experiment_evaluate_keras(keras_report, eval_models, index):
    model = load_model(eval_models["keras"])
    pipeline = AudioPipeline(index, audio=AudioConfig(), features=None)
    expected = evaluate_keras(model, pipeline, "test")
    for key, value in expected.items():
        if key == "per_class_ap":
            assert list(keras_report[key].values()) == pytest.approx(value, abs=1e-6)
        elif isinstance(value, float):
            assert keras_report[key] == pytest.approx(value, abs=1e-6), key
        else:
            assert keras_report[key] == value, key
    examples = index.split("test")
    assert keras_report["format"] == "keras" and keras_report["split"] == "test"
    assert keras_report["model"] == str(eval_models["keras"])
    assert keras_report["size_bytes"] == eval_models["keras"].stat().st_size
    assert keras_report["num_clips"] == len(examples) == 6
    assert keras_report["num_windows"] == expected_windows(examples)
    assert keras_report["class_names"] == list(index.class_names)
    assert list(keras_report["per_class_ap"]) == list(index.class_names)
    assert keras_report["accuracy"] == expected["accuracy"]
    assert (keras_report["sample_rate"], keras_report["window_samples"]) == (RATE, RATE)
    assert keras_report["hop_samples"] == RATE // 2 and keras_report["skipped_files"] == []
    assert keras_report["seconds"] > 0
    json.dumps(keras_report, allow_nan=False)  # JSON-ready


def test_float32_tflite_gives_the_keras_numbers(keras_report, eval_models, index):
    report = evaluate_model(eval_models["tflite"], index, progress=False)
    assert report["format"] == "tflite"
    assert report["size_bytes"] == eval_models["tflite"].stat().st_size
    assert report["map"] == pytest.approx(keras_report["map"], abs=1e-4)
    assert report["accuracy"] == pytest.approx(keras_report["accuracy"], abs=1e-4)
    for name, ap in keras_report["per_class_ap"].items():
        assert report["per_class_ap"][name] == pytest.approx(ap, abs=1e-4)
    assert (report["num_clips"], report["num_windows"]) == (
        keras_report["num_clips"],
        keras_report["num_windows"],
    )
    keras_scores = score_split(eval_models["keras"], index, progress=False).scores
    tflite_scores = score_split(eval_models["tflite"], index, progress=False).scores
    np.testing.assert_allclose(tflite_scores.window_scores, keras_scores.window_scores, atol=1e-4)
    np.testing.assert_array_equal(tflite_scores.clip_index, keras_scores.clip_index)


def test_lstm_tflite_is_scored_from_reset_state(eval_lstm_models, index):
    """A fused LSTM keeps its state between invokes; each window must start from zero state."""
    keras_scores = score_split(eval_lstm_models["keras"], index, progress=False).scores
    tflite_scores = score_split(eval_lstm_models["tflite"], index, progress=False).scores
    np.testing.assert_allclose(tflite_scores.window_scores, keras_scores.window_scores, atol=1e-4)


def test_multi_label_data_has_no_accuracy(eval_models, index):
    tagging = dataclasses.replace(index, multi_label=True)
    report = evaluate_model(eval_models["tflite"], tagging, progress=False)
    scores = score_split(eval_models["tflite"], index, progress=False)
    expected = evaluate_scores(scores.scores.clip_scores, scores.labels, multi_label=True)
    assert report["accuracy"] is None and "top_5_accuracy" not in report
    assert report["map"] == pytest.approx(expected["map"], abs=1e-9)
    assert report["micro_auc_pr"] == pytest.approx(expected["micro_auc_pr"], abs=1e-9)


def test_unreadable_file_is_skipped_or_fails_when_strict(eval_models, index, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    examples = list(index.examples)
    first_test = next(i for i, e in enumerate(examples) if e.split == "test")
    examples.insert(first_test + 2, Example(str(broken), (1,), "test", example_id="broken"))
    with_broken = dataclasses.replace(index, examples=tuple(examples))
    report = evaluate_model(eval_models["tflite"], with_broken, progress=False)
    clean = evaluate_model(eval_models["tflite"], index, progress=False)
    assert report["skipped_files"] == [str(broken)]
    assert report["num_clips"] == clean["num_clips"] == 6
    assert report["map"] == pytest.approx(clean["map"], abs=1e-9)
    with pytest.raises(AudioInputError, match="broken.wav"):
        evaluate_model(eval_models["tflite"], with_broken, progress=False, strict=True)


def test_progress_bar_counts_clips(eval_models, index, capsys):
    evaluate_model(eval_models["tflite"], index, progress=True)
    assert "6/6" in capsys.readouterr().err


def test_audio_config_must_fit_the_model(eval_models, index):
    same = evaluate_model(
        eval_models["tflite"], index, audio=AudioConfig(clip_seconds=2.0), progress=False
    )
    assert same["window_samples"] == RATE
    with pytest.raises(ConfigError, match=r"Expected sample_rate 16000 .*got 22050"):
        evaluate_model(eval_models["keras"], index, audio=AudioConfig(sample_rate=22050))
    with pytest.raises(ConfigError, match="16000 samples .* got 0.5 s = 8000 samples"):
        evaluate_model(
            eval_models["tflite"],
            index,
            audio=AudioConfig(window_seconds=0.5, window_hop_seconds=0.25),
        )


def test_tflite_labels_in_another_order_are_refused(eval_models, index, tmp_path):
    path = tmp_path / "reordered.tflite"
    export_tflite(
        load_model(eval_models["keras"]),
        quant="float32",
        out=path,
        labels=list(index.class_names)[::-1],
        sample_rate=RATE,
    )
    with pytest.raises(DataError, match="in another order"):
        evaluate_model(path, index, progress=False)


@pytest.mark.parametrize(
    "content, error, message",
    [
        (b"", ModelError, "not a loadable TFLite model"),
        (b"\x1c\x00\x00\x00TFL3" + bytes(200), ModelError, "not a loadable TFLite model"),
    ],
)
def test_corrupt_tflite(tmp_path, index, content, error, message):
    path = tmp_path / "corrupt.tflite"
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        evaluate_model(path, index)


def test_truncated_tflite(eval_models, index, tmp_path):
    path = tmp_path / "truncated.tflite"
    path.write_bytes(eval_models["tflite"].read_bytes()[:5000])
    with pytest.raises(ModelError, match=f"{path}: not a loadable TFLite model"):
        evaluate_model(path, index)


@pytest.mark.parametrize("name", ["corrupt.keras", "corrupt.h5"])
def test_corrupt_keras_checkpoint(tmp_path, index, name):
    path = tmp_path / name
    path.write_bytes(b"PK not a zip, not HDF5")
    with pytest.raises(ModelError, match=name):
        evaluate_model(path, index)


def test_class_count_must_match_the_dataset(tmp_path, index):
    from helpers import tiny_model

    path = tmp_path / "four.keras"
    tiny_model(4).save(path)
    with pytest.raises(DataError, match=r"predicts 4 classes but dataset csv has 3 \(siren, "):
        evaluate_model(path, index)


def test_missing_or_unknown_model(tmp_path, index):
    with pytest.raises(ModelError, match="nowhere.tflite: model file not found"):
        evaluate_model(tmp_path / "nowhere.tflite", index)
    odd = tmp_path / "model.onnx"
    odd.write_bytes(b"x")
    with pytest.raises(
        ModelError, match=r"unknown model format '.onnx'; expected .keras, .h5, .tflite"
    ):
        evaluate_model(odd, index)


def test_tflite_that_is_not_a_waveform_classifier(yamnet_tflite, index):
    with pytest.raises(ModelError, match=r"expected one waveform input and one score output"):
        evaluate_model(yamnet_tflite, index)


def test_unknown_or_empty_split(eval_models, index):
    with pytest.raises(DataError, match="Unknown split 'dev'"):
        evaluate_model(eval_models["keras"], index, split="dev")
    with pytest.raises(DataError, match="split 'val' has no examples"):
        evaluate_model(eval_models["keras"], index, split="val")


def test_write_report_is_atomic(tmp_path):
    path = tmp_path / "report.json"
    write_evaluation({"map": 0.5, "per_class_ap": {"a": None}}, path)
    assert json.loads(path.read_text()) == {"map": 0.5, "per_class_ap": {"a": None}}
    with pytest.raises(ValueError):
        write_evaluation({"map": float("nan")}, path)
    assert json.loads(path.read_text())["map"] == 0.5  # the old report is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary left
    with pytest.raises(ConfigError, match="folder .*missing does not exist"):
        write_evaluation({}, tmp_path / "missing" / "report.json")
