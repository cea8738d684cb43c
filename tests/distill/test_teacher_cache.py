"""Teacher cache: offsets, fingerprints, resume, and cached == online losses."""

import json

import numpy as np
import pytest

from helpers import tiny_model
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.adapters import load_index
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.distill.losses import build_loss
from lean_kd.distill.teacher_cache import META_FILE, TeacherCache, build_teacher_cache, crop_offsets
from lean_kd.errors import DataError

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

AUDIO = AudioConfig(clip_seconds=1.0)
CACHE_SETTINGS = dict(
    audio=AUDIO, teacher_name="tiny", crops_per_clip=3, shard_size=5, progress=False
)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize(
        root, SynthConfig(classes=("siren", "knock", "rain"), clips_per_class=8), progress=False
    )
    return load_index("csv", root)


@pytest.fixture(scope="module")
def teacher():
    return tiny_model(3, width=16, seed=1, name="teacher")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, teacher, index):
    out = tmp_path_factory.mktemp("cache")
    return build_teacher_cache(teacher, index, out, **CACHE_SETTINGS)


def test_crop_offsets_spread_over_the_clip():
    np.testing.assert_array_equal(crop_offsets(3000, clip_samples=1000, crops=3), [0, 1000, 2000])
    np.testing.assert_array_equal(crop_offsets(500, clip_samples=1000, crops=3), [0, 0, 0])


def test_cache_holds_every_train_and_val_example(cache_dir, index):
    meta = json.loads((cache_dir / META_FILE).read_text())
    examples = index.split("train") + index.split("val")
    assert meta["num_shards"] == -(-len(examples) // 5)
    table = TeacherCache(cache_dir, index=index).crop_table(index.split("train"))
    assert table.offsets.shape == (len(index.split("train")), 3)
    assert table.arrays["teacher_logits"].shape == (len(index.split("train")), 3, 3)
    assert table.arrays["teacher_embeddings"].shape[-1] == 32  # tiny_model: 2 x width


def test_cached_and_online_losses_are_equal_on_the_same_batch(cache_dir, index, teacher):
    cache = TeacherCache(cache_dir, index=index)
    pipeline = AudioPipeline(
        index, audio=AUDIO, features=None, pipeline=PipelineConfig(batch_size=8, seed=4)
    )
    inputs, labels = next(
        iter(pipeline.dataset("train", training=True, crops=cache.crop_table(index.split("train"))))
    )
    student = tiny_model(3, seed=2, name="student")(inputs["waveform"])
    loss = build_loss([{"name": "hinton_kd", "temperature": 2.0}, {"name": "pkt", "weight": 1.0}])
    cached = {"logits": inputs["teacher_logits"], "embeddings": inputs["teacher_embeddings"]}
    online = teacher(inputs["waveform"], training=False)
    np.testing.assert_allclose(cached["logits"].numpy(), online["logits"].numpy(), atol=1e-5)
    np.testing.assert_allclose(
        loss(labels, student, cached).numpy(), loss(labels, student, online).numpy(), rtol=1e-5
    )


def test_interrupted_build_resumes_and_reuses_shards(tmp_path, teacher, index, cache_dir):
    out = tmp_path / "cache"
    out.mkdir()
    first = sorted(cache_dir.glob("shard-*.npz"))[0]
    (out / first.name).write_bytes(first.read_bytes())  # as if killed after shard 0
    marker = np.load(out / first.name)["logits"].copy()
    build_teacher_cache(teacher, index, out, **CACHE_SETTINGS)
    assert (out / META_FILE).is_file()
    np.testing.assert_array_equal(np.load(out / first.name)["logits"], marker)
    assert len(list(out.glob("shard-*.npz"))) == len(list(cache_dir.glob("shard-*.npz")))


def test_cache_from_another_dataset_or_class_list_is_rejected(cache_dir, index, tmp_path):
    other_root = tmp_path / "other"
    synthesize(
        other_root,
        SynthConfig(classes=("siren", "knock", "rain"), clips_per_class=8, seed=9),
        progress=False,
    )
    with pytest.raises(DataError, match="another dataset"):
        TeacherCache(cache_dir, index=load_index("csv", other_root))
    renamed = load_index("csv", other_root).__class__(
        name="x", class_names=("a", "b", "c"), examples=index.examples
    )
    with pytest.raises(DataError, match="classes"):
        TeacherCache(cache_dir, index=renamed)


def test_incomplete_cache_is_reported(tmp_path, index):
    with pytest.raises(DataError, match="missing or incomplete"):
        TeacherCache(tmp_path, index=index)


def test_examples_outside_the_cached_splits(cache_dir, index):
    with pytest.raises(DataError, match="not in the teacher cache"):
        TeacherCache(cache_dir, index=index).crop_table(index.split("test"))


def test_cache_built_in_parts_equals_the_cache_built_at_once(cache_dir, index, teacher, tmp_path):
    build = dict(audio=AUDIO, teacher_name="tiny", crops_per_clip=3, shard_size=5, progress=False)
    for i in (1, 0, 2):  # any order: the last part to finish writes cache.json
        assert not (tmp_path / META_FILE).exists()
        build_teacher_cache(teacher, index, tmp_path, part=(i, 3), **build)
    assert sorted(p.name for p in tmp_path.glob("part-*")) == [
        f"part-{i}-of-3.json" for i in range(3)
    ]
    whole, parts = TeacherCache(cache_dir, index=index), TeacherCache(tmp_path, index=index)
    assert whole.meta == parts.meta
    for split in ("train", "val"):
        a, b = whole.crop_table(index.split(split)), parts.crop_table(index.split(split))
        np.testing.assert_array_equal(a.offsets, b.offsets)
        np.testing.assert_allclose(
            a.arrays["teacher_logits"], b.arrays["teacher_logits"], atol=1e-5
        )


def test_a_part_built_from_other_settings_is_refused_at_the_merge(index, teacher, tmp_path):
    build = dict(audio=AUDIO, teacher_name="tiny", shard_size=5, progress=False)
    build_teacher_cache(teacher, index, tmp_path, part=(0, 2), crops_per_clip=3, **build)
    with pytest.raises(
        DataError, match=r"part-0-of-2.json: .*other crops_per_clip \(3; expected 2\)"
    ):
        build_teacher_cache(teacher, index, tmp_path, part=(1, 2), crops_per_clip=2, **build)
    assert not (tmp_path / META_FILE).exists()


def test_clip_targets_give_every_crop_its_clips_mean_logits(cache_dir, index):
    cache = TeacherCache(cache_dir, index=index)
    crops = cache.crop_table(index.split("train"))
    clips = cache.crop_table(index.split("train"), targets="clip")
    expected = crops.arrays["teacher_logits"].mean(axis=1, keepdims=True)  # [N, 1, C]
    np.testing.assert_allclose(
        clips.arrays["teacher_logits"],
        np.broadcast_to(expected, crops.arrays["teacher_logits"].shape),
    )
    np.testing.assert_array_equal(clips.offsets, crops.offsets)
    np.testing.assert_array_equal(
        clips.arrays["teacher_embeddings"], crops.arrays["teacher_embeddings"]
    )


def test_cache_built_with_other_settings_is_refused_before_training(cache_dir, index):
    from lean_kd.config import AugmentConfig
    from lean_kd.errors import ConfigError
    from lean_kd.run.experiment import cached_teacher_crops
    from lean_kd.run.recipe import CacheSection, Recipe

    def recipe(**changes):
        sections = {"audio": AUDIO, "cache": CacheSection(crops_per_clip=3, targets="clip")}
        return Recipe(**(sections | changes))

    with pytest.raises(
        DataError, match="holds 3 crops per clip, the recipe asks for cache.crops_per_clip 9"
    ):
        cached_teacher_crops(cache_dir, index, recipe(cache=CacheSection(crops_per_clip=9)))
    with pytest.raises(
        DataError, match="crops of 16000 samples at 16000 Hz, the recipe's audio asks for 32000"
    ):
        cached_teacher_crops(cache_dir, index, recipe(audio=AudioConfig(clip_seconds=2.0)))
    with pytest.raises(
        ConfigError, match=r"unmixed crops, but the recipe mixes clips \(augment.mixup_alpha 0.4\)"
    ):
        cached_teacher_crops(cache_dir, index, recipe(augment=AugmentConfig(mixup_alpha=0.4)))
    train, val = cached_teacher_crops(cache_dir, index, recipe())
    assert train.offsets.shape[1] == 3 and len(val.offsets) == len(index.split("val"))
