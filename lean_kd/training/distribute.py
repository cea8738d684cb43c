"""tf.distribute for lean_kd runs: which strategy, which worker writes, how big each batch is.

Strategies, by recipe name (``distribute.strategy``, or ``--strategy`` on the command line):

    default      one device
    mirrored     MirroredStrategy over this host's GPUs; on a host without GPUs, over the
                 logical CPUs that ``LEAN_KD_CPU_DEVICES=N`` splits the CPU into (tests, trials)
    multiworker  MultiWorkerMirroredStrategy over the workers named in ``TF_CONFIG``, one process
                 per host (see README "Scaling out")

The model, the optimizer, the metrics and the losses are created inside ``strategy.scope()``
(TensorFlow refuses a metric made in another scope). ``pipeline.batch_size`` is the global batch
(the sum over all replicas) unless ``distribute.batch: per_replica``; :func:`global_batch_size`
turns it into the global batch the pipeline splits among the replicas.

Multi-worker conventions (Keras'): every worker trains, only the chief (``chief`` task, else
worker 0) writes the run folder; the others write the same files into a scratch folder of their
own (:func:`write_dir`), which keeps their file writes away from the chief's. Training files are
sharded among the workers before decoding (see ``AudioPipeline.dataset``): the DATA policy, by
index, applied to the file list, where it costs nothing, rather than to decoded batches; tf.data's
own auto-sharding is therefore set to OFF on these datasets. Every worker reads the whole
validation split, so all of them see the same validation metrics and make the same early-stopping
and checkpoint decisions. BackupAndRestore keeps its state under ``<run>/backup``, which every
worker reads when a restarted cluster resumes: the run folder must be on storage all workers see.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lean_kd._keras import tf
from lean_kd.config import STRATEGIES, DistributeSection
from lean_kd.data.pipeline import AudioPipeline, CropTable
from lean_kd.distill.teacher_stream import with_teacher_stream
from lean_kd.errors import ConfigError

logger = logging.getLogger(__name__)

CPU_DEVICES_ENV = "LEAN_KD_CPU_DEVICES"  # split the CPU into N logical devices (mirrored)
WORKER_ROLES = ("chief", "worker")  # the TF_CONFIG task types MultiWorkerMirroredStrategy runs


@dataclasses.dataclass(frozen=True)
class WorkerTask:
    """This process's place in a TF_CONFIG cluster."""

    type: str
    index: int
    num_workers: int  # chief + workers


def read_tf_config(environ: Mapping[str, str] = os.environ) -> WorkerTask:
    """The cluster and task of ``TF_CONFIG``, checked before TensorFlow waits on the network."""
    raw = environ.get("TF_CONFIG", "")
    example = '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'
    if not raw.strip():
        raise ConfigError(
            f"--strategy multiworker needs TF_CONFIG in the environment, e.g. TF_CONFIG='{example}'"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc}): {raw[:200]!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(
            f"TF_CONFIG must hold a 'cluster' and a 'task' object, e.g. {example}; got {raw[:200]!r}"
        )
    for role, addresses in cluster.items():
        if role not in WORKER_ROLES or not isinstance(addresses, list) or not addresses:
            raise ConfigError(
                f"TF_CONFIG cluster[{role!r}] = {addresses!r}: expected roles {list(WORKER_ROLES)} "
                "with a non-empty list of 'host:port' addresses"
            )
        for address in addresses:
            if not (isinstance(address, str) and address.rpartition(":")[2].isdigit()):
                raise ConfigError(
                    f"TF_CONFIG cluster[{role!r}] address {address!r}: expected 'host:port'"
                )
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise ConfigError(
            f"TF_CONFIG task type {kind!r} is not in the cluster, which has {sorted(cluster)}"
        )
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ConfigError(
            f"TF_CONFIG task index {index!r} is out of range: cluster[{kind!r}] has "
            f"{len(cluster[kind])} address(es), so expected 0 to {len(cluster[kind]) - 1}"
        )
    return WorkerTask(kind, index, sum(len(addresses) for addresses in cluster.values()))


def localhost_cluster(count: int) -> list[str]:
    """``count`` ``localhost:port`` addresses on ports free right now: a cluster for trying
    multiworker on one machine (tests, benchmarks/distributed.py)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [f"localhost:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()


def worker_tf_config(cluster: list[str], index: int) -> str:
    """The TF_CONFIG of worker ``index`` in a cluster of ``cluster`` workers."""
    return json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})


def split_cpu(environ: Mapping[str, str] = os.environ) -> int:
    """Split the CPU into ``LEAN_KD_CPU_DEVICES`` logical devices (before TensorFlow starts);
    the number of logical CPUs asked for (0: unset)."""
    raw = environ.get(CPU_DEVICES_ENV, "")
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(
            f"{CPU_DEVICES_ENV}={raw!r}: expected a whole number of logical CPUs >= 1"
        )
    count, cpu = int(raw), tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured is not None and len(configured) == count:
        return count  # an earlier stage of this process did it
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"{CPU_DEVICES_ENV}={raw}: TensorFlow had already started ({exc})"
        ) from None
    return count


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy called ``name`` (see the module docstring); create it before any other
    TensorFlow work of the process (a multi-worker strategy configures the runtime)."""
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}; expected one of {list(STRATEGIES)}")
    if name == "multiworker":
        task = read_tf_config()
        logger.info("multiworker: %s %d of %d worker(s)", task.type, task.index, task.num_workers)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:  # "Collective ops must be configured at program startup"
            raise ConfigError(
                f"multiworker: create the strategy before other TensorFlow work ({exc})"
            ) from None
    cpus = split_cpu()
    if name == "default":
        return tf.distribute.get_strategy()
    if cpus and not tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")]
        )
    return tf.distribute.MirroredStrategy()


def check_run_strategy(name: str) -> None:
    """``lean-kd run`` trains in one process: mirrored at most (multiworker needs one process
    per host, which the per-command workflow provides); splits the CPU before any stage starts
    TensorFlow."""
    if name == "multiworker":
        raise ConfigError(
            "distribute.strategy multiworker is not supported by lean-kd run (one process); run "
            'lean-kd train / distill on every worker instead (README "Scaling out"), or use mirrored'
        )
    split_cpu()


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is one of ours that runs replicas (its input must be distributed)."""
    return isinstance(
        strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder (every process, except non-chief workers)."""
    return bool(strategy.extended.should_checkpoint)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Hosts (processes) taking part: the TF_CONFIG cluster's chief and workers, else 1."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(role) for role in WORKER_ROLES if role in spec.jobs)


def steps_per_pass(
    pipeline: AudioPipeline, strategy: tf.distribute.Strategy, split: str, *, training: bool
) -> int:
    """Steps of one pass over ``split`` under ``strategy`` (a distributed dataset needs them)."""
    return pipeline.steps(
        split,
        training=training,
        replicas=strategy.num_replicas_in_sync,
        workers=num_workers(strategy),
    )


def epoch_steps(
    pipeline: AudioPipeline, strategy: tf.distribute.Strategy, steps_per_epoch: int
) -> int:
    """Optimizer steps of one training epoch: ``steps_per_epoch``, or one pass when it is 0."""
    return steps_per_epoch or steps_per_pass(pipeline, strategy, "train", training=True)


def fit_inputs(
    pipeline: AudioPipeline,
    strategy: tf.distribute.Strategy,
    *,
    crops: CropTable | None = None,
    val_crops: CropTable | None = None,
    steps_per_epoch: int = 0,
    teacher_stream: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``fit`` arguments for the train and val splits: plain datasets on one device; under a
    replicating strategy distributed ones (per-replica batches) with their step counts.
    ``steps_per_epoch`` > 0: fixed-length epochs over an endless training stream.
    ``teacher_stream``: recorded teacher outputs for the batches of :func:`training_stream`
    (:mod:`lean_kd.distill.teacher_stream`), one device only."""
    if teacher_stream is not None:
        if is_distributed(strategy) or crops is not None:
            raise ConfigError(
                "A teacher stream is read on one device and without a teacher cache; got "
                f"{strategy.num_replicas_in_sync} replicas and crops {crops is not None}"
            )
        return {
            "x": with_teacher_stream(training_stream(pipeline), teacher_stream),
            "validation_data": pipeline.dataset("val", training=False, crops=val_crops),
            "steps_per_epoch": epoch_steps(pipeline, strategy, steps_per_epoch),
        }
    if not is_distributed(strategy):
        train = pipeline.dataset("train", training=True, crops=crops)
        return {
            "x": train.repeat() if steps_per_epoch else train,
            "validation_data": pipeline.dataset("val", training=False, crops=val_crops),
            "steps_per_epoch": steps_per_epoch or None,
        }
    return {  # endless distributed datasets, run for one pass per epoch (or steps_per_epoch)
        "x": pipeline.distribute(strategy, "train", training=True, crops=crops),
        "validation_data": pipeline.distribute(strategy, "val", training=False, crops=val_crops),
        "steps_per_epoch": epoch_steps(pipeline, strategy, steps_per_epoch),
        "validation_steps": steps_per_pass(pipeline, strategy, "val", training=False),
    }


def training_stream(pipeline: AudioPipeline) -> tf.data.Dataset:
    """The endless stream of augmented training batches that a teacher stream is recorded on
    and read with (the same batches in the same order for every student)."""
    return pipeline.dataset("train", training=True).repeat()


def write_dir(run_dir: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this process writes its checkpoints and logs: ``run_dir`` on the chief,
    ``run_dir/.worker-<task id>`` (a scratch folder, replaced by each run) on other workers."""
    if is_chief(strategy):
        return Path(run_dir)
    return Path(run_dir) / f".worker-{strategy.cluster_resolver.task_id}"


def global_batch_size(
    batch_size: int, section: DistributeSection, strategy: tf.distribute.Strategy
) -> int:
    """The global batch for ``pipeline.batch_size`` read as ``section.batch`` says; logged."""
    replicas = strategy.num_replicas_in_sync
    total = batch_size * replicas if section.batch == "per_replica" else batch_size
    if total % replicas:
        raise ConfigError(
            f"pipeline.batch_size {batch_size} is the global batch (distribute.batch: global) and "
            f"must split evenly among the {replicas} replicas; set it to a multiple of {replicas} "
            "or set distribute.batch: per_replica"
        )
    if is_distributed(strategy):
        logger.info(
            "%s: %d replica(s); batch %d per replica, %d global (pipeline.batch_size %d read as %s)",
            type(strategy).__name__,
            replicas,
            total // replicas,
            total,
            batch_size,
            section.batch,
        )
    return total


__all__ = [
    "CPU_DEVICES_ENV",
    "check_run_strategy",
    "epoch_steps",
    "fit_inputs",
    "global_batch_size",
    "is_chief",
    "is_distributed",
    "localhost_cluster",
    "make_strategy",
    "num_workers",
    "steps_per_pass",
    "read_tf_config",
    "training_stream",
    "write_dir",
]
