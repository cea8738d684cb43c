"""The Distiller: trains better than chance, KD helps a weak student, bad pairs are refused."""

import numpy as np
import pytest
from helpers import tiny_model

from lean_kd._keras import keras, tf
from lean_kd.config import PipelineConfig
from lean_kd.data.adapters import load_index
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.distill.distiller import Distiller
from lean_kd.distill.losses import build_loss
from lean_kd.errors import ConfigError, ModelError
from lean_kd.training import student_metrics

CHANCE_MAP = 0.1  # 10 balanced classes


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, SynthConfig(clips_per_class=20), progress=False)
    pipeline = AudioPipeline(load_index("csv", root), features=None, pipeline=PipelineConfig(batch_size=16, cache=True))
    return pipeline.dataset("train", training=True), pipeline.dataset("val", training=False)


def best_val_map(splits, model, loss, teacher=None, epochs=10):
    train, val = splits
    distiller = Distiller(model, build_loss(loss), teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=student_metrics(False))
    history = distiller.fit(train, validation_data=val, epochs=epochs, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    return max(history["val_map"])


@pytest.mark.heavy
def test_kd_student_reaches_the_no_kd_student_over_three_seeds(splits):
    teacher = tiny_model(10, width=32, seed=0, name="teacher")
    teacher_map = best_val_map(splits, teacher, [{"name": "ce"}], epochs=30)
    plain, distilled = [], []
    for seed in range(3):
        plain.append(best_val_map(splits, tiny_model(10, width=4, seed=seed), [{"name": "ce"}]))
        kd = [{"name": "hinton_kd", "temperature": 4.0}]
        distilled.append(best_val_map(splits, tiny_model(10, width=4, seed=seed), kd, teacher))
    print(f"\nteacher val mAP {teacher_map:.3f}; no-KD {np.round(plain, 3)} mean {np.mean(plain):.3f}; "
          f"KD {np.round(distilled, 3)} mean {np.mean(distilled):.3f}")
    assert teacher_map > 4 * CHANCE_MAP
    assert np.mean(distilled) > 2 * CHANCE_MAP
    assert np.mean(distilled) >= np.mean(plain)


def test_online_teacher_loss_terms_are_tracked(splits):
    train, _ = splits
    distiller = Distiller(tiny_model(10, seed=1), build_loss([{"name": "hinton_kd"}, {"name": "pkt"}]), tiny_model(10, width=16, name="t"))
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=student_metrics(False))
    logs = distiller.evaluate(train.take(2), return_dict=True, verbose=0)
    assert {"loss", "ce", "kd", "pkt", "map", "accuracy"} <= set(logs)
    np.testing.assert_allclose(logs["loss"], logs["ce"] + logs["kd"] + logs["pkt"], rtol=1e-4)
    assert distiller.teacher.trainable is False


def test_teacher_and_student_with_different_class_counts_are_refused():
    with pytest.raises(ModelError, match="predicts 5 classes but student .* predicts 10"):
        Distiller(tiny_model(10), build_loss([{"name": "hinton_kd"}]), tiny_model(5, name="teacher"))


def test_teacher_and_student_with_different_input_lengths_are_refused():
    with pytest.raises(ModelError, match="expected the same input length"):
        Distiller(tiny_model(3, num_samples=16000), build_loss([{"name": "hinton_kd"}]), tiny_model(3, num_samples=8000, name="t"))


def test_kd_loss_without_teacher_or_cache_is_a_clear_error():
    distiller = Distiller(tiny_model(3), build_loss([{"name": "hinton_kd"}]))
    with pytest.raises(ConfigError, match="needs a teacher"):
        distiller.teacher_outputs({"waveform": tf.zeros([1, 16000])})
