"""Keras fit runs: recipes end to end, resume after interruption (tf.distribute: tests/cli/test_distribute_cli.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_models_recipe
from lean_kd.config import PipelineConfig, TrainingSection
from lean_kd.errors import ConfigError, DataError, ModelError
from lean_kd.run import experiment
from lean_kd.run.recipe import CacheSection, DataSection, ModelSection, Recipe, load_recipe
from lean_kd.training.trainer import learning_rate_schedule

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A recipe over a small synthetic dataset whose models are tiny saved checkpoints."""
    return tiny_models_recipe(
        tmp_path_factory.mktemp("run"),
        clips_per_class=10,
        pipeline=PipelineConfig(batch_size=8, cache=True),
        teacher_training=TrainingSection(epochs=3, learning_rate=3e-3),
        training=TrainingSection(
            epochs=2, learning_rate=3e-3, schedule="cosine", warmup_epochs=0.5
        ),
        cache=CacheSection(crops_per_clip=2),
    )


def test_train_cache_and_distill_end_to_end(recipe, tmp_path):
    teacher = experiment.train(recipe, tmp_path / "teacher", verbose=0)
    assert teacher.epochs_run == 3 and teacher.best_path.is_file()
    metrics = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert 0 <= metrics["test"]["map"] <= 1 and metrics["test"]["num_examples"] > 0
    experiment.cache_teacher(recipe, teacher.best_path, tmp_path / "cache")
    student = experiment.distill(
        recipe, tmp_path / "student", cache_dir=tmp_path / "cache", verbose=0
    )
    assert student.epochs_run == 2
    assert {"kd", "ce", "val_map"} <= set(student.history)
    assert (tmp_path / "student" / "history.csv").read_text().count("\n") == 3  # header + 2 epochs


class StopAfterEpoch(Exception):
    pass


def test_interrupted_run_resumes_from_its_last_backup_and_continues_its_history(recipe, tmp_path):
    """Backups every 2 epochs (training.backup_steps: 4 at 2 steps an epoch): killed after the
    third epoch, the run resumes at the third (after the backup of the second), and the
    history keeps one row per epoch."""
    from lean_kd._keras import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise StopAfterEpoch()

    class FirstEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epochs = [*getattr(self, "epochs", []), epoch]

    training = TrainingSection(epochs=4, steps_per_epoch=2, learning_rate=3e-3, backup_steps=4)
    index = experiment.load_data(recipe)
    pipeline = experiment.make_pipeline(recipe, index)
    from lean_kd.distill.distiller import Distiller
    from lean_kd.distill.losses import build_loss
    from lean_kd.training.trainer import fit

    def distiller():
        return Distiller(
            experiment.model_from_section(recipe.teacher, recipe, index),
            build_loss([{"name": "ce"}]),
        )

    with pytest.raises(StopAfterEpoch):
        fit(
            distiller(),
            pipeline,
            training,
            tmp_path,
            multi_label=False,
            callbacks=[Interrupt()],
            verbose=0,
        )
    assert (tmp_path / "history.csv").read_text().count("\n") == 4  # header + epochs 0-2
    resumed = FirstEpoch()
    result = fit(
        distiller(), pipeline, training, tmp_path, multi_label=False, callbacks=[resumed], verbose=0
    )
    assert resumed.epochs == [2, 3]
    assert result.history["epoch"] == [0.0, 1.0, 2.0, 3.0]
    # a finished run is not resumed: running again starts afresh
    again = fit(distiller(), pipeline, training, tmp_path, multi_label=False, verbose=0)
    assert again.history["epoch"] == [0.0, 1.0, 2.0, 3.0]


def test_recipe_errors_come_before_training(tmp_path, recipe):
    path = tmp_path / "r.yaml"
    path.write_text("training:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match="unknown key\\(s\\) \\['epochz'\\]"):
        load_recipe(path)
    path.write_text("export:\n  lstm: int4\n")
    with pytest.raises(
        ConfigError,
        match="export.lstm must be one of \\['auto', 'unrolled', 'hybrid', 'int8', 'float'\\], got 'int4'",
    ):
        load_recipe(path)
    missing = Recipe(data=DataSection(dataset="csv", root=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match="nowhere does not exist"):
        experiment.train(missing, tmp_path / "run")
    bad_teacher = Recipe(
        **{**recipe.__dict__, "student": ModelSection(checkpoint=str(tmp_path / "none.keras"))}
    )
    with pytest.raises(ModelError, match="none.keras does not exist"):
        experiment.distill(
            bad_teacher, tmp_path / "run2", teacher_path=Path(recipe.teacher.checkpoint)
        )


def test_same_seed_gives_identical_weights(recipe, tmp_path):
    """pipeline.deterministic (the default): initialisation, crops, shuffling and kernels repeat."""
    import numpy as np

    fresh = Recipe(
        **{
            **recipe.__dict__,
            "teacher": ModelSection(
                name="mobilenet_v2", options={"width": 0.35, "last_channels": 64}
            ),
            "teacher_training": TrainingSection(epochs=1, learning_rate=3e-3, seed=5),
        }
    )
    runs = [experiment.train(fresh, tmp_path / f"run{i}", verbose=0) for i in range(2)]
    first, second = (experiment.load_model(r.final_path).get_weights() for r in runs)
    assert len(first) == len(second)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    other_seed = Recipe(
        **{
            **fresh.__dict__,
            "teacher_training": TrainingSection(epochs=1, learning_rate=3e-3, seed=6),
        }
    )
    third = experiment.load_model(
        experiment.train(other_seed, tmp_path / "run3", verbose=0).final_path
    )
    assert not all(np.array_equal(a, b) for a, b in zip(first, third.get_weights()))


def test_monitor_none_keeps_the_last_epoch(recipe, tmp_path):
    """A validation split too small to choose an epoch by: best.keras is the final model, also
    over a best.keras left by an earlier run in the same folder."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.keras").write_bytes(b"an older run's checkpoint")
    last = Recipe(
        **{
            **recipe.__dict__,
            "teacher_training": TrainingSection(epochs=2, learning_rate=3e-3, monitor="none"),
        }
    )
    result = experiment.train(last, run_dir, verbose=0)
    assert result.best_path.read_bytes() == result.final_path.read_bytes()
    with pytest.raises(
        ConfigError, match="early_stopping_patience needs a training.monitor other than 'none'"
    ):
        TrainingSection(monitor="none", early_stopping_patience=3)


def test_pretrained_learning_rate_scale():
    """The pretrained layers' optimizer peaks at the scaled rate, on the same schedule."""
    training = TrainingSection(
        epochs=4, learning_rate=1e-3, schedule="cosine", warmup_epochs=1,
        pretrained_learning_rate_scale=0.1,
    )  # fmt: skip
    main = learning_rate_schedule(training, 10)
    pretrained = learning_rate_schedule(
        training, 10, rate_scale=training.pretrained_learning_rate_scale
    )
    for step in (3, 10, 25):  # in the warm-up, at its peak, decaying
        assert float(main(step)) > 0
        np.testing.assert_allclose(float(pretrained(step)), 0.1 * float(main(step)), rtol=1e-6)
    for bad in (0.0, 1.5):
        with pytest.raises(
            ConfigError, match=f"pretrained_learning_rate_scale must be in .0, 1., got {bad}"
        ):
            TrainingSection(pretrained_learning_rate_scale=bad)
