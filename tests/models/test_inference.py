"""Clip-level inference: 1 s windows, 50 % overlap, mean of window scores, batching-invariant."""

import numpy as np
import pytest
from zoo_helpers import synth_fixture

from lean_kd._keras import keras
from lean_kd.audio.io import load_audio
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.errors import AudioInputError, ConfigError, DataError
from lean_kd.models.contract import ModelSpec, contract_outputs, waveform_input
from lean_kd.models.inference import (
    clip_scores,
    keras_scorer,
    mean_by_clip,
    probabilities,
    scored_windows,
    window_scores,
)

synth = synth_fixture  # the tiny synthetic dataset, one per session

RATE = 16000


def position_model(multi_label=False):
    """1 s model whose logits depend on every part of the window (mean, first and last 0.1 s)."""
    spec = ModelSpec(3, RATE, RATE, multi_label)
    waveform = waveform_input(spec)
    x = keras.layers.Reshape((10, RATE // 10))(waveform)  # ten 0.1 s pieces
    pieces = keras.layers.GlobalAveragePooling1D(data_format="channels_first")(x)  # [B, 10]
    logits = keras.layers.Dense(
        3, kernel_initializer=keras.initializers.RandomNormal(0, 10, seed=1)
    )(pieces)
    return keras.Model(
        waveform, contract_outputs(spec, logits=logits, embeddings=pieces), name="positions"
    )


@pytest.fixture(scope="module")
def model():
    return position_model()


def ramp_clip(seconds, seed=0):
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    return (0.3 * np.sin(np.arange(n) / 500.0) + rng.normal(0, 0.05, n)).astype(np.float32)


def test_clip_of_3_3_s_has_6_windows_and_averages_them(model):
    clip = ramp_clip(3.3)
    result = clip_scores(model, [clip])
    assert len(result.window_scores) == 6  # starts 0, 0.5, ..., 2.5 s; the last is zero-padded
    one_by_one = []
    for start in range(0, 6 * 8000, 8000):
        window = np.zeros(RATE, np.float32)
        piece = clip[start : start + RATE]
        window[: len(piece)] = piece
        logits = model(window[None], training=False)["logits"].numpy()
        one_by_one.append(np.exp(logits) / np.exp(logits).sum())
    one_by_one = np.concatenate(one_by_one)
    np.testing.assert_allclose(result.window_scores, one_by_one, atol=1e-6)
    np.testing.assert_allclose(result.clip_scores[0], one_by_one.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(result.clip_scores.sum(axis=1), 1.0, atol=1e-6)  # softmax
    assert np.ptp(result.window_scores, axis=0).max() > 1e-2  # the windows differ: the mean matters


def test_batching_gives_identical_results(model):
    clips = [ramp_clip(0.4, 1), ramp_clip(1.0, 2), ramp_clip(3.3, 3), ramp_clip(2.2, 4)]
    batched = clip_scores(model, clips, batch_size=5)
    singles = [clip_scores(model, [clip], batch_size=1) for clip in clips]
    assert [len(batched.windows_of(i)) for i in range(4)] == [1, 1, 6, 4]
    for i, single in enumerate(singles):  # equal up to float32 rounding of other batch shapes
        np.testing.assert_allclose(
            batched.windows_of(i), single.window_scores, rtol=1e-6, atol=1e-7
        )
        np.testing.assert_allclose(
            batched.clip_scores[i], single.clip_scores[0], rtol=1e-6, atol=1e-7
        )


def test_multi_label_uses_sigmoid():
    model = position_model(multi_label=True)
    clip = ramp_clip(1.5)
    result = clip_scores(model, [clip])
    windows = np.stack([clip[:RATE], clip[8000:]])  # 1.5 s: exactly two windows
    logits = model(windows)["logits"].numpy()
    np.testing.assert_allclose(
        result.clip_scores[0], (1 / (1 + np.exp(-logits))).mean(0), atol=1e-6
    )


def test_probabilities_and_mean_by_clip():
    spec = ModelSpec(2)
    np.testing.assert_allclose(probabilities([[0.0, np.log(3.0)]], spec), [[0.25, 0.75]], atol=1e-6)
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    np.testing.assert_allclose(mean_by_clip(scores, [0, 0, 1], 2), [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(DataError, match="no window"):
        mean_by_clip(scores, [0, 0, 1], 3)


def test_bad_inputs(model):
    with pytest.raises(
        AudioInputError, match=r"clip 1 as a 1-D waveform \[samples\], got shape \(2, 100\)"
    ):
        clip_scores(model, [ramp_clip(1.0), np.zeros([2, 100], np.float32)])
    with pytest.raises(AudioInputError, match="clip 0: 1 sample"):
        clip_scores(model, [np.array([0.0, np.nan], np.float32)])
    with pytest.raises(AudioInputError, match="at least one clip"):
        clip_scores(model, [])
    with pytest.raises(ConfigError, match=r"overlap must be in \[0, 1\), got 1"):
        clip_scores(model, [ramp_clip(1.0)], overlap=1)
    with pytest.raises(AudioInputError, match=r"\[batch, 16000\].*got 8000 samples"):
        window_scores(model, np.zeros([2, 8000], np.float32))
    with pytest.raises(ConfigError, match="batch_size must be > 0"):
        window_scores(model, np.zeros([2, RATE], np.float32), batch_size=0)


def test_pipeline_windows_give_the_same_clip_scores(model, synth):
    pipeline = AudioPipeline(
        synth, audio=AudioConfig(), features=None, pipeline=PipelineConfig(batch_size=4)
    )
    found, labels = scored_windows(keras_scorer(model), pipeline.windows("test"))
    examples = synth.split("test")
    expected = clip_scores(model, [load_audio(e.path, sample_rate=RATE) for e in examples])
    np.testing.assert_allclose(found.clip_scores, expected.clip_scores, atol=1e-6)
    np.testing.assert_array_equal(labels, synth.label_matrix(examples))
