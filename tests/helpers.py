"""Tiny contract models shared by tests (importable as ``helpers``)."""

from __future__ import annotations

import os

from lean_kd._keras import keras
from lean_kd.audio.features import YAMNET_PRESET, LogMelSpectrogram
from lean_kd.models.contract import ModelSpec, contract_outputs, waveform_input


def shifted_seed(seed: int) -> int:
    """``seed`` plus the suite's offset ``LEAN_KD_TEST_SEED`` (default 0).

    Every seed that initialises or trains a model in the tests goes through here, so
    ``make test-seeds`` can rerun them with other seeds: a threshold that holds for one seed
    only would also fail on another CPU, whose floats differ."""
    value = os.environ.get("LEAN_KD_TEST_SEED", "0")
    try:
        return seed + int(value)
    except ValueError:
        raise ValueError(f"LEAN_KD_TEST_SEED must be an integer, got {value!r}") from None


def tiny_model(
    num_classes: int, *, num_samples: int = 16000, width: int = 8, seed: int = 0, name: str = "tiny"
):
    """Waveform -> log-mel -> one conv -> mean pooling: a contract model that trains in seconds."""
    keras.utils.set_random_seed(shifted_seed(seed))
    spec = ModelSpec(num_classes, num_samples=num_samples)
    waveform = waveform_input(spec)
    log_mel = LogMelSpectrogram(YAMNET_PRESET)(waveform)  # [B, frames, 64]
    x = keras.layers.Reshape((-1, 64, 1))(log_mel)
    x = keras.layers.Rescaling(0.25, offset=1.0)(x)
    x = keras.layers.Conv2D(width, 5, strides=2, activation="relu")(x)  # [B, frames/2, 30, width]
    x = keras.layers.MaxPooling2D((4, 2))(x)
    x = keras.layers.Flatten()(x)
    embeddings = keras.layers.Dense(2 * width, activation="relu")(x)
    logits = keras.layers.Dense(num_classes)(embeddings)
    return keras.Model(
        waveform, contract_outputs(spec, logits=logits, embeddings=embeddings), name=name
    )


def synthetic_yamnet_recipe(root, classes: tuple[str, ...], *, seed: int, **sections):
    """A recipe on freshly synthesised clips at ``root`` (6 per class, 1-2 s, no distractors;
    a quarter each for val and test) with the pretrained YAMNet as teacher; ``sections``
    (e.g. ``pipeline``, ``training``) go to :class:`Recipe`."""
    from lean_kd.config import AudioConfig
    from lean_kd.data.synth import SynthConfig, synthesize
    from lean_kd.run.recipe import DataSection, ModelSection, Recipe

    config = SynthConfig(
        classes=classes, clips_per_class=6, duration_seconds=(1.0, 2.0), snr_db=(20.0, 30.0),
        distractor_probability=0.0, val_fraction=0.25, test_fraction=0.25,
        seed=shifted_seed(seed),
    )  # fmt: skip
    synthesize(root, config, progress=False)
    return Recipe(
        data=DataSection(dataset="csv", root=str(root)),
        audio=AudioConfig(clip_seconds=1.0),
        teacher=ModelSection(name="yamnet_teacher", options={"pretrained": "if_available"}),
        **sections,
    )


def tiny_models_recipe(root, *, clips_per_class: int, **sections):
    """A recipe on four synthesised classes at ``root/data`` whose teacher (width 16) and student
    (width 4) are tiny saved checkpoints; ``sections`` go to :class:`Recipe`."""
    from lean_kd.data.synth import SynthConfig, synthesize
    from lean_kd.run.recipe import DataSection, ModelSection, Recipe
    from lean_kd.training.trainer import save_model

    classes = ("siren", "knock", "rain", "whistle")
    config = SynthConfig(classes=classes, clips_per_class=clips_per_class)
    synthesize(root / "data", config, progress=False)
    save_model(tiny_model(4, width=16, seed=0, name="teacher"), root / "teacher.keras")
    save_model(tiny_model(4, width=4, seed=1, name="student"), root / "student.keras")
    return Recipe(
        data=DataSection(dataset="csv", root=str(root / "data")),
        teacher=ModelSection(checkpoint=str(root / "teacher.keras")),
        student=ModelSection(checkpoint=str(root / "student.keras")),
        **sections,
    )
