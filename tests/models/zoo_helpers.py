"""Shared checks of the model-zoo tests: tiny synthetic data, a few training steps, reload.

Every model in the zoo must build, learn on the synthetic dataset and survive a save/reload
with identical outputs; these helpers keep those three checks the same for every model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import shifted_seed
from lean_kd._keras import keras, tf
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.adapters import load_index
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.models.contract import check_model, model_spec
from lean_kd.models.registry import load_model

SYNTH = SynthConfig(
    classes=("siren", "dog_bark", "engine_hum"),
    clips_per_class=4,
    duration_seconds=(1.0, 1.5),
    val_fraction=0.0,
    test_fraction=0.25,
)


def synth_index(root: Path):
    """The tiny synthetic dataset (3 classes x 4 clips), written once per pytest session."""
    synthesize(root, SYNTH, progress=False)
    return load_index("csv", root)


def train_batches(index, model: keras.Model, *, batch_size: int = 9) -> tf.data.Dataset:
    """Training batches ``(waveform, {"logits": labels})`` cropped to the model's input length."""
    spec = model_spec(model)
    pipeline = AudioPipeline(
        index,
        audio=AudioConfig(sample_rate=spec.sample_rate, clip_seconds=spec.seconds),
        features=None,
        pipeline=PipelineConfig(batch_size=batch_size, seed=shifted_seed(0)),
    )
    return pipeline.dataset("train", training=True).map(lambda x, y: (x["waveform"], {"logits": y}))


DROPOUT_PASSES = 4


def assert_learns(
    model: keras.Model, index, *, steps: int = 6, learning_rate: float = 1e-3
) -> tuple[float, float]:
    """Fit one fixed batch for ``steps`` steps: its training-mode loss must go down.

    A fixed learning problem (the same batch every step) makes "training lowers the loss" hold
    for every seed and CPU: over different batches a few Adam steps of a fresh network can
    raise the loss on any one of them (MobileNetV2 x0.35, 4 steps: 1.17 -> 1.22 on one CPU).
    """
    check_model(model)
    waveform, targets = next(iter(train_batches(index, model)))
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)

    def fixed_batch_loss() -> float:  # training mode: batch norm uses the batch, as in fit
        # the mean over a few passes: dropout draws other units on every pass
        passes = [model(waveform, training=True)["logits"] for _ in range(DROPOUT_PASSES)]
        return float(np.mean([loss(targets["logits"], logits) for logits in passes]))

    before = fixed_batch_loss()
    # Eager: tracing and optimising the train graph of a ~150-layer model takes 30-70 s on
    # 2 cores, far longer than the few steps themselves.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss={"logits": loss}, run_eagerly=True
    )
    batch = tf.data.Dataset.from_tensors((waveform, targets)).repeat()
    model.fit(batch, steps_per_epoch=steps, epochs=1, verbose=0)
    after = fixed_batch_loss()
    assert after < before, f"{model.name}: loss went from {before:.4f} to {after:.4f}"
    return before, after


def assert_reloads(model: keras.Model, path: Path) -> keras.Model:
    """Save as ``.keras``, reload with lean_kd's loader: identical outputs, the same spec."""
    spec = model_spec(model)
    path = Path(path).with_suffix(".keras")
    model.save(path)
    loaded = load_model(path)
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, [2, spec.num_samples]).astype(np.float32)
    expected, actual = model(waveform, training=False), loaded(waveform, training=False)
    assert sorted(actual) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(
            actual[key].numpy(), expected[key].numpy(), rtol=0, atol=1e-6, err_msg=key
        )
    assert model_spec(loaded) == spec
    return loaded


@pytest.fixture(scope="session")
def synth_fixture(tmp_path_factory):
    """The tiny synthetic dataset's index; a test module binds it as ``synth = synth_fixture``."""
    return synth_index(tmp_path_factory.getbasetemp() / "zoo_synth")


synth = synth_fixture  # also importable as ``synth`` (test_lean.py, test_yamnet_teacher.py do)
