"""Tiny contract models, tone data and cached conversions for tests/export.

Importable as ``import export_helpers`` (tests/ is on the test path).

The models follow the model contract (waveform in, dict with logits and embeddings out, the
log-mel frontend as a layer) in two shapes: ``plain`` (log-mel -> conv -> dense) and ``lstm``
(the same plus a BiLSTM over raw 25 ms patches, as the LEAN wave encoder). They are trained
for a few seconds on three pure tones so that their scores are confident and a quantization
error shows as a real difference. Conversions are cached for the whole session: converting
costs seconds, and several test modules need the same files.
"""

from __future__ import annotations

import functools

import numpy as np

from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.export.representative import calibration_set
from lean_kd.export.tflite import convert
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    contract_outputs,
    log_mel_image,
    waveform_input,
)

SAMPLE_RATE = 16000
TONES_HZ = (300.0, 1000.0, 3000.0)
LABELS = ["low", "mid", "high"]


def build_model(
    kind: str, *, seed: int = 0, multi_label: bool = False, lstm_units: int = 8
) -> keras.Model:
    """``plain`` or ``lstm`` contract model with 3 classes, 1 s at 16 kHz (untrained)."""
    keras.utils.set_random_seed(shifted_seed(seed))
    spec = ModelSpec(
        len(LABELS), sample_rate=SAMPLE_RATE, num_samples=SAMPLE_RATE, multi_label=multi_label
    )
    waveform = waveform_input(spec)
    image = log_mel_image(waveform, spec, FrontendOptions())  # [B, 98, 64, 1]
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(image)  # [B, 48, 31, 4]
    x = keras.layers.AveragePooling2D(pool_size=(48, 1))(x)  # [B, 1, 31, 4]: keeps frequency
    x = keras.layers.Flatten()(x)  # [B, 124]
    if kind == "lstm":
        patches = keras.layers.Reshape((40, 400))(waveform)  # [B, 40, 400]: 25 ms patches
        x = keras.layers.Concatenate()(
            [x, keras.layers.Bidirectional(keras.layers.LSTM(lstm_units))(patches)]
        )
    embeddings = keras.layers.Dense(16, activation="relu")(x)
    logits = keras.layers.Dense(len(LABELS))(embeddings)
    return keras.Model(
        waveform, contract_outputs(spec, logits=logits, embeddings=embeddings), name=kind
    )


def tone_windows(count: int, *, seed: int = 0, peak_db: tuple[float, float] = (-20.0, -3.0)):
    """``count`` 1 s windows of one tone each plus a little noise: ``([N, 16000], labels [N])``."""
    rng = np.random.default_rng(shifted_seed(seed))
    labels = np.arange(count) % len(TONES_HZ)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    windows = np.empty((count, SAMPLE_RATE), np.float32)
    for row, label in enumerate(labels):
        tone = np.sin(2 * np.pi * TONES_HZ[label] * t + rng.uniform(0, 2 * np.pi))
        clip = tone + 0.05 * rng.standard_normal(SAMPLE_RATE)
        windows[row] = clip / np.max(np.abs(clip)) * 10 ** (rng.uniform(*peak_db) / 20)
    return windows, labels


@functools.cache
def trained_model(kind: str) -> keras.Model:
    """A ``kind`` model trained on tones until it separates them (a few seconds)."""
    model = build_model(kind)
    windows, labels = tone_windows(60, seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    model.fit(windows, {"logits": labels}, epochs=15, batch_size=20, verbose=0)
    return model


def assert_top1_agrees(expected: np.ndarray, actual: np.ndarray, *, tolerance: float) -> None:
    """TFLite picks the Keras top class wherever the Keras top-2 margin exceeds ``2 * tolerance``
    (there a score error within ``tolerance`` cannot reorder them), and on most other windows.

    Exact agreement on every window is not a property of a converter: a trained model has some
    windows whose top-2 scores nearly tie, and which side of the tie wins depends on the CPU's
    float rounding (one window of 30 flipped on an AVX-512 VNNI machine)."""
    top2 = np.sort(expected, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 2 * tolerance
    agree = expected.argmax(1) == actual.argmax(1)
    assert decided.mean() >= 0.5, f"only {decided.mean():.2f} of the windows are clear-cut"
    assert agree[decided].all(), f"top-1 differs on {np.sum(~agree[decided])} clear-cut window(s)"
    assert agree.mean() >= 0.9, f"top-1 agreement {agree.mean():.3f}"


def calibration(count: int = 30) -> list[np.ndarray]:
    """Checked calibration windows (tones at normal levels, another seed than the tests)."""
    windows, _ = tone_windows(count, seed=2)
    return calibration_set(windows, num_samples=SAMPLE_RATE, sample_rate=SAMPLE_RATE, count=count)


@functools.cache
def converted(
    kind: str,
    quant: str,
    keep_frontend_float: bool = True,
    float_ops: tuple[str, ...] = (),
    lstm: str = "hybrid",
) -> bytes:
    """TFLite flatbuffer (no metadata) of the trained ``kind`` model in mode ``quant``."""
    needs_data = quant in ("int8", "int16x8")
    return convert(
        trained_model(kind),
        quant=quant,
        calibration=calibration() if needs_data else None,
        keep_frontend_float=keep_frontend_float,
        float_ops=float_ops,
        lstm=lstm,
    )
