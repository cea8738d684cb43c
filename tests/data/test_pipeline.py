"""tf.data pipelines: crops, labels, broken files, balanced sampling, mixup, windows, sharding."""

import numpy as np
import pytest
import soundfile

from lean_kd._keras import tf
from lean_kd.audio.features import YAMNET_PRESET, log_mel
from lean_kd.config import AudioConfig, AugmentConfig, PipelineConfig
from lean_kd.data.augment import mixup, spec_augment
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.data.pipeline import AudioPipeline, class_members, rows_in_chunks
from lean_kd.errors import DataError

RATE = 1000  # a low rate keeps the fixtures tiny; features are off for these tests


def write(path, samples):
    soundfile.write(path, np.asarray(samples, np.float32), RATE, subtype="FLOAT")
    return str(path)


def pipeline(index, **config):
    return AudioPipeline(
        index,
        audio=AudioConfig(sample_rate=RATE, clip_seconds=1.0),
        features=None,
        pipeline=PipelineConfig(**{"batch_size": 2, **config}),
    )


@pytest.fixture
def ramp_index(tmp_path):
    """Six clips whose samples encode (clip number, position)."""
    examples = []
    for i in range(6):
        n = 500 if i == 0 else 2000  # clip 0 is shorter than the 1 s crop
        path = write(tmp_path / f"c{i}.wav", (i + 1) / 10 + np.arange(n) / 1e5)
        examples.append(Example(path, (i % 3,), "train" if i < 4 else "test", example_id=str(i)))
    return DatasetIndex("ramps", ("a", "b", "c"), tuple(examples))


def collect(ds):
    xs, ys = zip(*[(x["waveform"].numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_evaluation_crops_are_centred_and_labels_one_hot(ramp_index):
    waves, labels = collect(pipeline(ramp_index).dataset("test", training=False))
    assert waves.shape == (2, RATE)
    # clip 4 has 2000 samples: the centred 1 s crop starts at sample 500
    np.testing.assert_allclose(waves[0, 0], 0.5 + 500 / 1e5, atol=1e-6)
    np.testing.assert_array_equal(labels, [[0, 1, 0], [0, 0, 1]])


def test_short_clip_is_zero_padded(ramp_index):
    pl = pipeline(ramp_index, shuffle_buffer=0)
    waves, _ = collect(pl.dataset("train", training=False))
    np.testing.assert_allclose(waves[0, :500], 0.1 + np.arange(500) / 1e5, atol=1e-6)
    np.testing.assert_array_equal(waves[0, 500:], 0.0)


def test_random_crops_are_seeded_and_vary_between_epochs(ramp_index):
    first = collect(pipeline(ramp_index, seed=3).dataset("train", training=True))[0]
    again = collect(pipeline(ramp_index, seed=3).dataset("train", training=True))[0]
    np.testing.assert_array_equal(first, again)
    ds = pipeline(ramp_index, seed=3).dataset("train", training=True)
    epoch1, epoch2 = collect(ds)[0], collect(ds)[0]
    assert not np.array_equal(epoch1, epoch2)
    for row in epoch1:  # every crop is a contiguous piece of one ramp
        nonzero = row[row != 0]
        np.testing.assert_allclose(np.diff(nonzero), 1e-5, atol=1e-6)


def test_multi_hot_labels(tmp_path):
    path = write(tmp_path / "m.wav", np.zeros(RATE))
    index = DatasetIndex("m", ("a", "b", "c"), (Example(path, (0, 2)),), multi_label=True)
    _, labels = collect(pipeline(index, batch_size=1).dataset("train", training=False))
    np.testing.assert_array_equal(labels, [[1, 0, 1]])


def test_broken_files_are_skipped_and_counted(ramp_index, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio " * 20)
    broken = [
        Example(str(tmp_path / n), (0,), "test") for n in ("empty.wav", "text.wav", "gone.wav")
    ]
    index = DatasetIndex("b", ramp_index.class_names, ramp_index.examples + tuple(broken))
    pl = pipeline(index)
    waves, _ = collect(pl.dataset("test", training=False))
    assert len(waves) == 2  # the two good test clips
    assert len(pl.broken) == 3
    summary = pl.broken.summary()
    assert "3 broken file(s)" in summary and "empty.wav" in summary and "gone.wav" in summary


def test_strict_mode_fails_before_reading_batches(ramp_index, tmp_path):
    bad = Example(str(tmp_path / "gone.wav"), (0,), "test")
    index = DatasetIndex("b", ramp_index.class_names, ramp_index.examples + (bad,))
    with pytest.raises(Exception, match="gone.wav: file not found"):
        pipeline(index, strict=True).dataset("test", training=False)


def test_empty_split_is_an_error(ramp_index):
    with pytest.raises(DataError, match="split 'val' has no examples"):
        pipeline(ramp_index).dataset("val", training=False)


def test_balanced_sampling_equalises_class_frequencies(tmp_path):
    path = write(tmp_path / "x.wav", np.zeros(RATE))
    # class 0 on 90 examples, class 1 on 9, class 2 on 1: sampled ~1/3 each when balanced
    labels = [0] * 90 + [1] * 9 + [2]
    examples = tuple(Example(path, (c,), example_id=str(i)) for i, c in enumerate(labels))
    index = DatasetIndex("imb", ("a", "b", "c"), examples)
    pl = pipeline(index, batch_size=50, balanced=True)
    counts = np.zeros(3)
    for _ in range(6):  # 6 epochs x 100 draws
        counts += collect(pl.dataset("train", training=True))[1].sum(axis=0)
    freq = counts / counts.sum()
    np.testing.assert_allclose(freq, 1 / 3, atol=0.06)
    unbalanced = collect(pipeline(index, batch_size=50).dataset("train", training=True))[1]
    assert unbalanced.sum(axis=0)[0] == 90


def test_class_members_drops_empty_classes():
    labels = np.array([[1, 0, 0], [1, 0, 1]], np.float32)
    assert class_members(labels) == [[0, 1], [1]]


def test_mixup_mixes_waveforms_and_targets_with_the_same_weight():
    waves = tf.constant([[1.0] * 4, [3.0] * 4, [5.0] * 4])
    labels = tf.constant(np.eye(3, dtype=np.float32))
    mixed_w, mixed_y = mixup(waves, labels, alpha=0.4, seed=tf.constant([1, 2], tf.int64))
    mixed_w, mixed_y = mixed_w.numpy(), mixed_y.numpy()
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, atol=1e-6)
    # the waveform value is the label-weighted average of the source values
    np.testing.assert_allclose(mixed_w[:, 0], mixed_y @ np.array([1.0, 3.0, 5.0]), atol=1e-5)


def test_spec_augment_masks_with_the_mean():
    log_mel = tf.random.stateless_normal([4, 50, 16], seed=[0, 1])
    out = spec_augment(
        log_mel,
        time_masks=2,
        time_mask_frames=10,
        freq_masks=1,
        freq_mask_bins=4,
        seed=tf.constant([3, 4], tf.int64),
    ).numpy()
    changed = out != log_mel.numpy()
    assert changed.any()
    means = log_mel.numpy().mean(axis=(1, 2))
    for b in range(4):
        np.testing.assert_allclose(out[b][changed[b]], means[b], atol=1e-6)
        masked_frames = changed[b].all(axis=1).sum()
        assert masked_frames <= 20


def test_pipeline_applies_mixup_only_when_training(ramp_index):
    pl = AudioPipeline(
        ramp_index,
        audio=AudioConfig(sample_rate=RATE),
        features=None,
        pipeline=PipelineConfig(batch_size=4),
        augment=AugmentConfig(mixup_alpha=1.0),
    )
    _, train_labels = collect(pl.dataset("train", training=True))
    assert ((train_labels > 0) & (train_labels < 1)).any()
    _, eval_labels = collect(pl.dataset("train", training=False))
    assert set(np.unique(eval_labels)) == {0.0, 1.0}


def test_log_mel_is_computed_for_each_batch(tmp_path):
    rate = 16000
    t = np.arange(rate) / rate
    path = tmp_path / "tone.wav"
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 1000 * t), rate)
    index = DatasetIndex("t", ("a",), (Example(str(path), (0,)),))
    pl = AudioPipeline(index, pipeline=PipelineConfig(batch_size=1))
    ((inputs, _),) = list(pl.dataset("train", training=False))
    assert inputs["log_mel"].shape == (1, 98, 64)
    expected = log_mel(inputs["waveform"], YAMNET_PRESET).numpy()
    np.testing.assert_allclose(inputs["log_mel"].numpy(), expected, atol=1e-5)
    assert int(expected[0].mean(axis=0).argmax()) == 19  # the mel band centred near 1 kHz


def test_windows_carry_clip_indices(tmp_path):
    examples = (
        Example(write(tmp_path / "a.wav", np.ones(3300)), (0,), "test"),  # 3.3 s -> 6 windows
        Example(write(tmp_path / "b.wav", np.ones(800)), (1,), "test"),  # 0.8 s -> 1 window
    )
    index = DatasetIndex("w", ("a", "b"), examples)
    pl = pipeline(index, batch_size=4)
    clip_index, waves, labels = [], [], []
    for x, y in pl.windows("test"):
        clip_index += list(x["clip_index"].numpy())
        waves.append(x["waveform"].numpy())
        labels.append(y.numpy())
    assert clip_index == [0] * 6 + [1]
    waves = np.concatenate(waves)
    assert waves.shape == (7, RATE)
    assert waves[5, :800].sum() == 800 and waves[5, 800:].sum() == 0  # last window padded
    np.testing.assert_array_equal(np.concatenate(labels)[-1], [0, 1])


def test_sharding_splits_training_files_between_input_pipelines(ramp_index):
    pl = pipeline(ramp_index, batch_size=2, shuffle_buffer=0)
    seen = []
    for pipeline_id in range(2):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        waves = collect(pl.dataset("train", training=True, input_context=ctx))[0]
        assert len(waves) == 2  # per-replica batch 1, half of the four training files each
        seen += [round(float(w[np.flatnonzero(w)[0]]), 1) for w in waves]
        # every worker evaluates the whole split, so all compute the same validation metrics
        assert len(collect(pl.dataset("train", training=False, input_context=ctx))[0]) == 4
    assert sorted(seen) == [0.1, 0.2, 0.3, 0.4]


def test_stored_crops_cut_at_their_offsets_and_carry_their_arrays(ramp_index):
    from lean_kd.data.pipeline import CropTable

    # four training clips, two stored crops each; "score" encodes (clip, crop)
    offsets = np.array([[0, 0], [0, 1000], [100, 900], [0, 1000]], np.int32)
    score = np.arange(8, dtype=np.float32).reshape(4, 2, 1)
    crops = CropTable(offsets, {"teacher_logits": score})
    pl = pipeline(ramp_index, batch_size=4, shuffle_buffer=0)
    ((inputs, _),) = list(pl.dataset("train", training=False, crops=crops))
    # evaluation takes the middle stored crop (k = 1)
    np.testing.assert_array_equal(inputs["teacher_logits"].numpy()[:, 0], [1, 3, 5, 7])
    np.testing.assert_allclose(inputs["waveform"].numpy()[2, 0], 0.3 + 900 / 1e5, atol=1e-6)
    seen = set()
    train = pl.dataset("train", training=True, crops=crops)
    for _ in range(5):  # epochs
        ((inputs, _),) = list(train)
        for wave, logit in zip(inputs["waveform"].numpy(), inputs["teacher_logits"].numpy()[:, 0]):
            clip, k = divmod(int(logit), 2)
            start = offsets[clip, k] if clip else 0
            np.testing.assert_allclose(wave[0], (clip + 1) / 10 + start / 1e5, atol=1e-6)
            seen.add(int(logit))
    assert len(seen) > 4  # random crop choice over epochs


def test_stored_crops_of_the_wrong_size_are_rejected(ramp_index):
    from lean_kd.data.pipeline import CropTable

    crops = CropTable(
        np.zeros([3, 2], np.int32), {"teacher_logits": np.zeros([3, 2, 1], np.float32)}
    )
    with pytest.raises(DataError, match="one row per example"):
        pipeline(ramp_index).dataset("train", training=True, crops=crops)


@pytest.mark.parametrize("size", [0, 3, 8, 13])
def test_rows_in_chunks_runs_the_op_on_padded_chunks_and_trims(size):
    batch = tf.reshape(tf.range(size * 6, dtype=tf.float32), [size, 2, 3])

    def row_op(rows):  # scales by the chunk's row count, so the chunking itself is visible
        return tf.reduce_sum(rows, axis=-1) * tf.cast(tf.shape(rows)[0], tf.float32)

    out = tf.function(lambda b: rows_in_chunks(row_op, b, 4))(batch)
    expected = batch.numpy().sum(axis=-1) * 4
    assert out.shape == (size, 2)
    np.testing.assert_array_equal(out.numpy(), expected)
