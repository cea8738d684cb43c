"""Teacher streams: the online teacher's outputs on the augmented training stream, recorded once
and read by every student trained on the same stream."""

import dataclasses

import numpy as np
import pytest

from helpers import tiny_models_recipe
from lean_kd.config import AugmentConfig, PipelineConfig, TrainingSection
from lean_kd.distill.teacher_stream import ARRAYS_FILE
from lean_kd.errors import ConfigError, DataError
from lean_kd.run import experiment
from lean_kd.training.determinism import seed_everything
from lean_kd.training.distribute import training_stream

pytestmark = pytest.mark.trains


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Mixup on a small synthetic dataset (the teacher must see the mixed clips), fixed-length
    epochs, tiny saved models."""
    return tiny_models_recipe(
        tmp_path_factory.mktemp("stream"),
        clips_per_class=8,
        pipeline=PipelineConfig(batch_size=8, cache=True),
        augment=AugmentConfig(mixup_alpha=0.4),
        loss=({"name": "hinton_kd", "temperature": 2.0},),
        training=TrainingSection(epochs=2, steps_per_epoch=3, learning_rate=3e-3),
    )


def weights(result) -> list[np.ndarray]:
    return experiment.load_model(result.best_path).get_weights()


def test_students_on_one_stream_share_one_recording_and_learn_as_with_the_teacher_online(
    recipe, tmp_path
):
    teacher = recipe.teacher.checkpoint
    online = experiment.distill(recipe, tmp_path / "online", teacher_path=teacher, verbose=0)
    store = tmp_path / "streams"
    first = experiment.distill(
        recipe, tmp_path / "first", teacher_path=teacher, teacher_streams=store, verbose=0
    )
    [folder] = list(store.iterdir())
    recorded = np.load(folder / ARRAYS_FILE)["teacher_logits"]
    assert recorded.shape == (6, 8, 4)  # 2 epochs x 3 steps, batch 8, 4 classes
    # what was recorded is the teacher on the mixed batches the student trained on
    pipeline = experiment.make_pipeline(recipe, experiment.load_data(recipe))
    model = experiment.load_model(teacher)
    seed_everything(recipe.training.seed)
    for step, (x, _) in enumerate(training_stream(pipeline).take(6)):
        np.testing.assert_allclose(model(x["waveform"])["logits"], recorded[step], atol=1e-5)
    for a, b in zip(weights(online), weights(first)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # another student on the same stream reads it: not recorded again
    written = (folder / ARRAYS_FILE).stat().st_mtime_ns
    wider = dataclasses.replace(recipe, student=dataclasses.replace(recipe.teacher))
    experiment.distill(
        wider, tmp_path / "wider", teacher_path=teacher, teacher_streams=store, verbose=0
    )
    assert (folder / ARRAYS_FILE).stat().st_mtime_ns == written and len(list(store.iterdir())) == 1
    # another training seed or augmentation hears other batches: streams of their own
    reseeded = dataclasses.replace(recipe, training=dataclasses.replace(recipe.training, seed=5))
    remixed = dataclasses.replace(recipe, augment=AugmentConfig(mixup_alpha=0.2))
    for number, other in enumerate((reseeded, remixed), start=2):
        experiment.distill(
            other, tmp_path / f"other{number}", teacher_path=teacher, teacher_streams=store,
            verbose=0,
        )  # fmt: skip
        assert len(list(store.iterdir())) == number
    pipeline = experiment.make_pipeline(reseeded, experiment.load_data(reseeded))
    seed_everything(5)
    first_batch = next(iter(training_stream(pipeline)))[0]["waveform"]
    seed_everything(0)
    assert not np.allclose(first_batch, next(iter(training_stream(pipeline)))[0]["waveform"])


def test_teacher_stream_errors_name_what_is_wrong(recipe, tmp_path):
    teacher = recipe.teacher.checkpoint
    with pytest.raises(ConfigError, match="a teacher cache .* was given too"):
        experiment.distill(
            recipe, tmp_path / "a", cache_dir=tmp_path / "cache", teacher_streams=tmp_path / "s"
        )
    store = tmp_path / "streams"
    experiment.distill(
        recipe, tmp_path / "b", teacher_path=teacher, teacher_streams=store, verbose=0
    )
    [folder] = list(store.iterdir())
    (folder / ARRAYS_FILE).write_bytes(b"not an archive")
    with pytest.raises(DataError, match=f"{folder}: unreadable teacher stream"):
        experiment.distill(
            recipe, tmp_path / "c", teacher_path=teacher, teacher_streams=store, verbose=0
        )
