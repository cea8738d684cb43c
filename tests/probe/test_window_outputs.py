"""Window outputs per clip: shapes, pooling, the on-disk cache and what invalidates it.

Cache mechanics use a fake backbone (numpy, no TensorFlow) whose outputs are simple functions
of the window, so the tests are fast and exact; the shapes of the real pretrained YAMNet are
checked once with the official weights (skipped when ../shared is absent).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import soundfile

from lean_kd.audio.windows import num_windows
from lean_kd.data.adapters import load_index
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.errors import AudioInputError, ConfigError, DataError
from lean_kd.probe.backbone import YAMNET_WINDOW_SAMPLES, Backbone
from lean_kd.probe.windows import ClipWindows, clip_key, clip_window_outputs, pool_clips

CLASSES = ("siren", "knock", "rain")
WINDOW = 4000  # fake backbone: 0.25 s windows


def fake_run(windows: np.ndarray) -> dict[str, np.ndarray]:
    """embeddings: [mean, peak] of each window; scores: its energy in 3 slices."""
    slices = np.stack([np.mean(s**2, axis=1) for s in np.array_split(windows, 3, axis=1)], 1)
    return {"embeddings": np.c_[windows.mean(1), np.abs(windows).max(1)], "scores": slices}


FAKE = Backbone("fake", "fake-v1", 16000, WINDOW, fake_run)


def broken(windows: np.ndarray) -> dict[str, np.ndarray]:
    raise AssertionError("the backbone ran although every clip was cached")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    config = SynthConfig(classes=CLASSES, clips_per_class=3, duration_seconds=(0.2, 1.5))
    synthesize(root, config, progress=False)
    return load_index("csv", root)


def test_window_outputs_cover_each_clip_and_pool_to_mean_and_max(synth, tmp_path):
    examples = list(synth.examples)
    found = clip_window_outputs(examples, backbone=FAKE, cache_dir=tmp_path)
    assert list(found) == [clip_key(e) for e in examples]
    for example in examples:
        clip = found[clip_key(example)]
        expected = num_windows(soundfile.info(example.path).frames, window=WINDOW, hop=WINDOW // 2)
        assert clip.embeddings.shape == (expected, 2) and clip.scores.shape == (expected, 3)
    first = found[clip_key(examples[0])]
    pooled = pool_clips([first], features="both")
    emb, scores = first.embeddings, first.scores
    expected = np.r_[emb.mean(0), emb.max(0), scores.mean(0), scores.max(0)]
    np.testing.assert_allclose(pooled[0], expected, rtol=1e-6)
    assert pool_clips(list(found.values()), features="scores").shape == (len(examples), 6)
    assert pool_clips(list(found.values()), features="embeddings").shape == (len(examples), 4)


def test_cache_is_reused_and_invalidated_by_backbone_hop_and_file(synth, tmp_path):
    examples = list(synth.examples)
    first = clip_window_outputs(examples, backbone=FAKE, cache_dir=tmp_path)
    cached_only = dataclasses.replace(FAKE, run=broken)
    again = clip_window_outputs(examples, backbone=cached_only, cache_dir=tmp_path)
    for key, clip in first.items():
        assert np.array_equal(again[key].embeddings, clip.embeddings)
        assert np.array_equal(again[key].scores, clip.scores)
    other_weights = dataclasses.replace(FAKE, identity="fake-v2", run=broken)
    with pytest.raises(AssertionError, match="backbone ran"):
        clip_window_outputs(examples[:1], backbone=other_weights, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="backbone ran"):
        clip_window_outputs(examples[:1], backbone=cached_only, cache_dir=tmp_path,
                            hop_fraction=0.3)  # fmt: skip
    touched = examples[1]
    os.utime(touched.path, ns=(1, 1))  # a replaced file: new modification time
    calls = []
    counting = dataclasses.replace(FAKE, run=lambda w: calls.append(len(w)) or fake_run(w))
    clip_window_outputs(examples, backbone=counting, cache_dir=tmp_path)
    assert len(calls) == 1  # only the touched clip was recomputed
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3  # v1, v2, v1 at hop 0.3
    assert not list(tmp_path.rglob(".*.tmp"))


def test_corrupt_cache_file_is_recomputed(synth, tmp_path):
    example = synth.examples[0]
    clip_window_outputs([example], backbone=FAKE, cache_dir=tmp_path)
    (cached,) = tmp_path.rglob("*.npz")
    cached.write_bytes(b"truncated")
    found = clip_window_outputs([example], backbone=FAKE, cache_dir=tmp_path)
    assert found[clip_key(example)].embeddings.shape[1] == 2
    assert np.load(cached)["embeddings"].shape[1] == 2  # rewritten


def test_unreadable_clip_is_left_out_or_an_error_when_strict(synth, tmp_path):
    empty = str(tmp_path / "empty.wav")
    bad = dataclasses.replace(synth.examples[0], path=empty, example_id="empty")
    (tmp_path / "empty.wav").write_bytes(b"")
    found = clip_window_outputs([bad, synth.examples[1]], backbone=FAKE)
    assert list(found) == [clip_key(synth.examples[1])]
    with pytest.raises(AudioInputError, match="empty.wav"):
        clip_window_outputs([bad], backbone=FAKE, strict=True)


def test_bad_features_hop_and_empty_pool():
    clip = ClipWindows(np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32))
    expected = r"features must be one of \['both', 'embeddings', 'scores'\], got 'logits'"
    with pytest.raises(ConfigError, match=expected):
        pool_clips([clip], features="logits")
    with pytest.raises(ConfigError, match="hop_fraction"):
        clip_window_outputs([], backbone=FAKE, hop_fraction=0.0)
    with pytest.raises(DataError, match="No clips to pool"):
        pool_clips([], features="both")


def test_pretrained_yamnet_gives_1024_embeddings_and_521_scores_per_window(
    synth, yamnet_tflite, tmp_path
):
    from lean_kd.probe.backbone import yamnet_backbone

    backbone = yamnet_backbone(yamnet_tflite)
    assert backbone.window_samples == YAMNET_WINDOW_SAMPLES == 15600
    assert backbone.sample_rate == 16000
    assert backbone.identity.startswith("sha256:")
    example = max(synth.examples, key=lambda e: os.path.getsize(e.path))  # 1-1.5 s: 2-3 windows
    clip = clip_window_outputs([example], backbone=backbone, cache_dir=tmp_path)[clip_key(example)]
    windows = num_windows(soundfile.info(example.path).frames, window=15600, hop=7800)
    assert clip.embeddings.shape == (windows, 1024) and clip.scores.shape == (windows, 521)
    assert clip.embeddings.dtype == np.float32 and np.all((clip.scores >= 0) & (clip.scores <= 1))
    assert pool_clips([clip], features="both").shape == (1, 2 * (1024 + 521))
