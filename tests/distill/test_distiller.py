"""The Distiller: loss terms, the pull towards the teacher, bad pairs refused."""

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
from lean_kd.models.contract import mark_pretrained, pretrained_variables
from lean_kd.training.trainer import student_metrics

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, SynthConfig(clips_per_class=20), progress=False)
    pipeline = AudioPipeline(
        load_index("csv", root), features=None, pipeline=PipelineConfig(batch_size=16, cache=True)
    )
    return pipeline.dataset("train", training=True), pipeline.dataset("val", training=False)


def val_kd_term(distiller, val) -> float:
    """The KD term (lambda T^2 KL(teacher || student)) averaged over the validation split."""
    return distiller.evaluate(val, return_dict=True, verbose=0)["kd"]


def test_distillation_pulls_the_student_towards_the_teacher(splits):
    """Mechanism, not a research claim (KD vs no KD on real data is benchmarks/esc50_dev.py):
    from the same start, a student trained with the KD term ends closer to the teacher on
    held-out clips than one trained on labels alone, and closer than it started."""
    train, val = splits
    teacher = tiny_model(10, width=16, seed=7, name="teacher")  # any fixed function will do
    with_kd = build_loss([{"name": "hinton_kd", "temperature": 2.0, "lambda": 4.0}])
    distances = {}
    for name, loss in (("labels", build_loss([{"name": "ce"}])), ("kd", with_kd)):
        distiller = Distiller(tiny_model(10, width=4, seed=1), loss, teacher)
        distiller.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=student_metrics(False))
        history = distiller.fit(train, epochs=4, verbose=0).history
        assert history["loss"][-1] < history["loss"][0]
        probe = Distiller(distiller.student, with_kd, teacher)
        probe.compile(metrics=student_metrics(False))
        distances[name] = val_kd_term(probe, val)
    start = Distiller(tiny_model(10, width=4, seed=1), with_kd, teacher)
    start.compile(metrics=student_metrics(False))
    distances["start"] = val_kd_term(start, val)
    # measured over seed offsets 0-2: kd / min(labels, start) = 0.33, 0.40, 0.44
    assert distances["kd"] < 0.75 * min(distances["labels"], distances["start"]), distances


def test_pretrained_layers_learn_at_their_own_rate(splits):
    """Adam's first step moves each weight by about its learning rate (lr * g / |g|): the
    layers marked pretrained move by the pretrained optimizer's rate, the others by the main one."""
    train, _ = splits
    student = tiny_model(10, seed=1)
    conv = next(layer for layer in student.layers if isinstance(layer, keras.layers.Conv2D))
    mark_pretrained(student, [conv.name])
    assert [v.ref() for v in pretrained_variables(student)] == [
        v.ref() for v in conv.trainable_variables
    ]
    before = {v.ref(): v.numpy() for v in student.trainable_variables}
    distiller = Distiller(student, build_loss([{"name": "ce"}]))
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        pretrained_optimizer=keras.optimizers.Adam(1e-3),
        pretrained_variables=pretrained_variables(student),
        metrics=student_metrics(False),
    )
    distiller.fit(train.take(1), epochs=1, verbose=0)
    for variable in student.trainable_variables:
        moved = np.abs(variable.numpy() - before[variable.ref()]).max()
        expected = 1e-3 if any(variable is v for v in conv.trainable_variables) else 1e-2
        np.testing.assert_allclose(moved, expected, rtol=0.02, err_msg=variable.name)


def test_online_teacher_loss_terms_are_tracked(splits):
    train, _ = splits
    distiller = Distiller(
        tiny_model(10, seed=1),
        build_loss([{"name": "hinton_kd"}, {"name": "pkt"}]),
        tiny_model(10, width=16, name="t"),
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=student_metrics(False))
    logs = distiller.evaluate(train.take(2), return_dict=True, verbose=0)
    assert {"loss", "ce", "kd", "pkt", "map", "accuracy"} <= set(logs)
    np.testing.assert_allclose(logs["loss"], logs["ce"] + logs["kd"] + logs["pkt"], rtol=1e-4)
    assert distiller.teacher.trainable is False


def test_teacher_and_student_with_different_class_counts_are_refused():
    with pytest.raises(ModelError, match="predicts 5 classes but student .* predicts 10"):
        Distiller(
            tiny_model(10), build_loss([{"name": "hinton_kd"}]), tiny_model(5, name="teacher")
        )


def test_teacher_and_student_with_different_input_lengths_are_refused():
    with pytest.raises(ModelError, match="expected the same input length"):
        Distiller(
            tiny_model(3, num_samples=16000),
            build_loss([{"name": "hinton_kd"}]),
            tiny_model(3, num_samples=8000, name="t"),
        )


def test_kd_loss_without_teacher_or_cache_is_a_clear_error():
    distiller = Distiller(tiny_model(3), build_loss([{"name": "hinton_kd"}]))
    with pytest.raises(ConfigError, match="needs a teacher"):
        distiller.teacher_outputs({"waveform": tf.zeros([1, 16000])})
