"""How a dataset is split among the replicas and workers of a tf.distribute strategy.

Training files are sharded by index before decoding (each input pipeline, one per worker, reads
its own equal share of a shuffle of the file list that all pipelines make alike); validation is
not sharded, but batched so that no replica of a step gets an empty batch (the models cannot run
on one). tf.data's own auto-sharding is switched off on these datasets: they are sharded already.
"""

from __future__ import annotations

from lean_kd._keras import tf
from lean_kd.errors import ConfigError


def validation_slots(count: int, batch_size: int, replicas: int) -> int:
    """Batches that split ``count`` examples among ``replicas`` replicas per step, each at most
    about ``batch_size`` and none empty (a model cannot run on an empty batch)."""
    if count < replicas:
        raise ConfigError(
            f"The validation split has {count} example(s), fewer than the {replicas} replicas "
            "that evaluate it; use fewer replicas or a larger validation split"
        )
    steps = -(-count // (batch_size * replicas))
    steps = min(steps, count // replicas)
    return steps * replicas


def even_batches(ds: tf.data.Dataset, count: int, slots: int) -> tf.data.Dataset:
    """The ``count`` items of ``ds`` in ``slots`` consecutive batches whose sizes differ by at
    most one (e.g. 9 items in 4 batches: 3, 2, 2, 2)."""
    base, extra = divmod(count, slots)
    sizes = tf.constant([base + 1] * extra + [base] * (slots - extra), tf.int64)  # [slots]
    ends = tf.cumsum(sizes)  # [slots]: index one past each batch's last item

    def batch_of(i: tf.Tensor, item: dict) -> tf.Tensor:
        found = tf.searchsorted(ends, [i], side="right", out_type=tf.int64)[0]
        return tf.minimum(found, slots - 1)

    def size_of(key: tf.Tensor) -> tf.Tensor:
        return sizes[key]

    def batch(key: tf.Tensor, window: tf.data.Dataset) -> tf.data.Dataset:
        return window.map(_drop_index).batch(sizes[key])

    return ds.enumerate().group_by_window(batch_of, batch, window_size_func=size_of)


def _drop_index(i: tf.Tensor, item: dict) -> dict:
    return item


def shard_size(count: int, context: tf.distribute.InputContext, batch_size: int) -> int:
    """Files each input pipeline reads per pass when ``count`` are sharded: the same number for
    every pipeline and a whole number of steps (``batch_size`` per replica), so every worker
    runs the same steps per epoch and no file is read twice in one; the last few files of the
    split (less than a step per pipeline) are left out."""
    local = context.num_replicas_in_sync // context.num_input_pipelines
    per_step = batch_size * local
    return count // context.num_input_pipelines // per_step * per_step


def shard_files(
    files: tf.data.Dataset,
    count: int,
    context: tf.distribute.InputContext,
    batch_size: int,
    seed: int,
) -> tf.data.Dataset:
    """This input pipeline's share of the ``count`` files: every pipeline shuffles the list alike
    (same seed, reshuffled each pass) and takes its own slice of :func:`shard_size` files, so the
    files left over differ from pass to pass."""
    pipelines = context.num_input_pipelines
    files = files.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    files = files.take(shard_size(count, context, batch_size) * pipelines)
    return files.shard(pipelines, context.input_pipeline_id)


def no_auto_shard(ds: tf.data.Dataset) -> tf.data.Dataset:
    """The pipeline shards its file list itself (before decoding, which is where the time goes):
    tf.data must not shard the batches again."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)
