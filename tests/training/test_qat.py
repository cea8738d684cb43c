"""QAT with distillation: the trunk is fake-quantized, the KD loss is kept, int8 is no worse.

The end-to-end test distills a tiny student on synthetic data, then compares two int8 TFLite
files of that student on the same test windows: post-training int8 and QAT-with-KD int8.
"""

from __future__ import annotations

import numpy as np
import pytest

import export_helpers as h
from helpers import tiny_model
from lean_kd._keras import keras
from lean_kd.config import PipelineConfig, TrainingSection
from lean_kd.data.adapters import load_index
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.data.synth import CLASS_NAMES, SynthConfig, synthesize
from lean_kd.distill.distiller import Distiller
from lean_kd.distill.losses import build_loss
from lean_kd.errors import ConfigError, ModelError
from lean_kd.export.ops import FUSED_LSTM, summarize_ops
from lean_kd.export.representative import representative_from_index
from lean_kd.export.tflite import convert, export_tflite
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd.training.qat import (
    load_qat_model,
    prepare_qat,
    qat_finetune,
    qat_layer_names,
    qat_training,
    set_activation_ranges,
)
from lean_kd.training.trainer import student_metrics
from lean_kd_runtime.metrics import aggregate_windows, evaluate_scores

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

NUM_CLASSES = 5
KD = [{"name": "hinton_kd", "temperature": 4.0}]
# QAT int8 may be at most this much below post-training int8. Measured over seed offsets 0-3
# (QAT+KD minus PTQ test mAP): +0.003, +0.026, -0.018, +0.011.
MAX_MAP_DROP = 0.04
CHANCE_MAP = 1 / NUM_CLASSES  # about: random scores on balanced classes


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> AudioPipeline:
    root = tmp_path_factory.mktemp("synth")
    config = SynthConfig(
        classes=CLASS_NAMES[:NUM_CLASSES],
        clips_per_class=16,
        duration_seconds=(1.0, 2.0),
        test_fraction=0.35,
    )
    synthesize(root, config, progress=False)
    return AudioPipeline(
        load_index("csv", root), features=None, pipeline=PipelineConfig(batch_size=16, cache=True)
    )


def _fit(pipeline, model, loss, teacher=None, *, epochs: int):
    distiller = Distiller(model, build_loss(loss), teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=student_metrics(False))
    train = pipeline.dataset("train", training=True)
    distiller.fit(train, epochs=epochs, verbose=0)


@pytest.fixture(scope="module")
def distilled(pipeline):
    """(teacher, student): a CE-trained teacher and a small student distilled from it."""
    teacher = tiny_model(NUM_CLASSES, width=16, seed=0, name="teacher")
    _fit(pipeline, teacher, [{"name": "ce"}], epochs=12)
    student = tiny_model(NUM_CLASSES, width=4, seed=1, name="student")
    _fit(pipeline, student, KD, teacher, epochs=8)
    return teacher, student


@pytest.fixture(scope="module")
def qat_run(pipeline, distilled, tmp_path_factory):
    """(QAT model, run folder) of a short QAT fine-tune with the KD loss and online teacher."""
    teacher, student = distilled
    run_dir = tmp_path_factory.mktemp("qat_run")
    training = qat_training(TrainingSection(learning_rate=1e-2), epochs=4)
    model = qat_finetune(
        student, build_loss(KD), pipeline, training, run_dir, teacher=teacher, verbose=0
    )
    return model, run_dir


def _test_windows(pipeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test windows [N, 16000], their clip index [N] and clip labels [clips, C]."""
    windows, labels, clips = [], [], []
    for inputs, batch_labels in pipeline.windows("test"):
        windows.append(inputs["waveform"].numpy())
        labels.append(batch_labels.numpy())
        clips.append(inputs["clip_index"].numpy())
    clip_index = np.concatenate(clips)
    clip_labels = np.zeros((clip_index.max() + 1, NUM_CLASSES), np.float32)
    clip_labels[clip_index] = np.concatenate(labels)
    return np.concatenate(windows), clip_index, clip_labels


def _clip_map(window_scores, clip_index, clip_labels) -> float:
    clip_scores = aggregate_windows(window_scores, clip_index)
    return evaluate_scores(clip_scores, clip_labels, multi_label=False)["map"]


def _int8(model, pipeline, path) -> bytes:
    index = pipeline.index
    result = export_tflite(
        model,
        quant="int8",
        out=path,
        labels=list(index.class_names),
        sample_rate=16000,
        representative=representative_from_index(
            index, sample_rate=16000, num_samples=16000, count=40
        ),
    )
    assert result.summary.subgraph_count == 1 and "CONV_2D" not in result.summary.float_ops
    return path.read_bytes()


@pytest.mark.heavy
def test_qat_with_kd_int8_scores_at_least_post_training_int8(
    pipeline, distilled, qat_run, tmp_path
):
    _, student = distilled
    qat_model, _ = qat_run
    windows, clip_index, clip_labels = _test_windows(pipeline)
    maps = {
        "float student": _clip_map(keras_scores(student, windows), clip_index, clip_labels),
        "QAT (Keras, fake-quant)": _clip_map(
            keras_scores(qat_model, windows), clip_index, clip_labels
        ),
    }
    for name, model in [("PTQ int8", student), ("QAT+KD int8", qat_model)]:
        flatbuffer = _int8(model, pipeline, tmp_path / f"{name.split()[0]}.tflite")
        maps[name] = _clip_map(tflite_scores(flatbuffer, windows), clip_index, clip_labels)
    print(
        f"\ntest mAP over {len(clip_labels)} clips ({len(windows)} windows): "
        + ", ".join(f"{name} {value:.4f}" for name, value in maps.items())
    )
    # the student learned something: PTQ int8 mAP over seed offsets 0-3: 0.57, 0.31, 0.65, 0.38
    assert maps["PTQ int8"] > 1.25 * CHANCE_MAP
    assert maps["QAT+KD int8"] >= maps["PTQ int8"] - MAX_MAP_DROP


@pytest.mark.heavy
def test_qat_fine_tune_keeps_the_distillation_loss_and_saves_checkpoints(distilled, qat_run):
    _, student = distilled
    qat_model, run_dir = qat_run
    history = (run_dir / "history.csv").read_text().splitlines()
    assert {"loss", "ce", "kd", "val_map"} <= set(history[0].split(","))
    assert len(history) == 1 + 4  # header + epochs
    kd_column = history[0].split(",").index("kd")
    assert all(float(row.split(",")[kd_column]) > 0 for row in history[1:])
    assert (run_dir / "best.keras").is_file() and (run_dir / "final.keras").is_file()
    reloaded = load_qat_model(run_dir / "best.keras", student)
    windows, _ = h.tone_windows(4)
    np.testing.assert_allclose(
        keras_scores(reloaded, windows), keras_scores(qat_model, windows), atol=1e-6
    )


def test_trunk_is_conv_dense_and_the_layers_between_them():
    model = tiny_model(3)
    names = qat_layer_names(model)
    kinds = [type(model.get_layer(name)).__name__ for name in names]
    assert kinds == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    lstm = h.build_model("lstm")
    lstm_names = qat_layer_names(lstm)
    assert [type(lstm.get_layer(n)).__name__ for n in lstm_names] == [
        "Conv2D",
        "AveragePooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    # The BiLSTM, the reshape of the waveform into patches and the concatenation with the
    # LSTM output are left to the converter, and the model input is not fake-quantized.
    prepared = prepare_qat(lstm)
    assert not any(type(layer).__name__ == "QuantizeLayer" for layer in prepared.layers)


def test_activation_ranges_start_at_the_float_models():
    model = h.trained_model("plain")
    prepared = prepare_qat(model)
    windows, _ = h.tone_windows(12)
    assert set_activation_ranges(prepared, model, [windows[:6], windows[6:]]) == 4
    logits_layer = model.output["logits"].node.inbound_layers.name  # the last Dense
    logits = keras.Model(model.input, model.get_layer(logits_layer).output)(windows)
    (wrapper,) = [layer for layer in prepared.layers if layer.name == f"quant_{logits_layer}"]
    ranges = {
        v.name.split("/")[-1].split(":")[0]: float(np.ravel(v.numpy())[0])
        for v in wrapper.non_trainable_variables
        if "post_activation" in v.name
    }
    assert ranges["post_activation_min"] == pytest.approx(min(0.0, float(np.min(logits))))
    assert ranges["post_activation_max"] == pytest.approx(max(0.0, float(np.max(logits))))


@pytest.mark.heavy
@pytest.mark.parametrize("lstm", ["hybrid", "unrolled"])
def test_lstm_model_after_qat_converts_to_int8_in_one_subgraph(lstm):
    prepared = prepare_qat(h.trained_model("lstm"))
    summary = summarize_ops(
        convert(prepared, quant="int8", calibration=h.calibration(10), lstm=lstm)
    )
    assert summary.subgraph_count == 1 and "WHILE" not in summary.ops
    assert (FUSED_LSTM in summary.ops) == (lstm == "hybrid")
    assert "CONV_2D" not in summary.float_ops


def test_kd_loss_without_teacher_or_cache_is_refused(pipeline):
    with pytest.raises(ConfigError, match="needs a teacher during QAT"):
        qat_finetune(tiny_model(NUM_CLASSES), build_loss(KD), pipeline, TrainingSection(), "unused")


def test_qat_training_defaults_to_a_tenth_of_the_learning_rate():
    training = qat_training(TrainingSection(learning_rate=1e-3, warmup_epochs=2), epochs=3)
    assert (training.epochs, training.learning_rate, training.warmup_epochs) == (3, 1e-4, 0.0)
    assert qat_training(TrainingSection(), epochs=1, learning_rate=5e-5).learning_rate == 5e-5


def test_missing_or_foreign_qat_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_qat_model(tmp_path / "none.keras", tiny_model(3))
    other = prepare_qat(tiny_model(3, width=8))
    other.save(tmp_path / "other.keras")
    with pytest.raises(ModelError, match="does not fit model"):
        load_qat_model(tmp_path / "other.keras", tiny_model(3, width=4))
