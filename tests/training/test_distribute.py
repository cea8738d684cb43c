"""lean_kd.training.distribute: TF_CONFIG checks, batch sizes, and the sharded / evenly split inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from lean_kd._keras import tf
from lean_kd.config import AudioConfig, DistributeSection, PipelineConfig
from lean_kd.data.adapters import load_index
from lean_kd.data.pipeline import AudioPipeline, CropTable
from lean_kd.data.sharding import validation_slots
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.errors import ConfigError
from lean_kd.training.distribute import global_batch_size, read_tf_config

REPO = Path(__file__).resolve().parents[2]
TWO_WORKERS = {"worker": ["localhost:20001", "localhost:20002"]}


def tf_config(cluster=TWO_WORKERS, task_type="worker", index=0) -> dict[str, str]:
    return {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    }


def test_tf_config_names_the_task_and_counts_the_workers():
    task = read_tf_config(tf_config({"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}, "worker", 1))
    assert (task.type, task.index, task.num_workers) == ("worker", 1, 3)


@pytest.mark.parametrize(
    "environ, message",
    [
        ({}, "--strategy multiworker needs TF_CONFIG"),
        ({"TF_CONFIG": "{cluster"}, "TF_CONFIG is not valid JSON"),
        ({"TF_CONFIG": '{"cluster": {}}'}, "TF_CONFIG must hold a 'cluster' and a 'task'"),
        (
            tf_config(task_type="chief"),
            "task type 'chief' is not in the cluster, which has \\['worker'\\]",
        ),
        (
            tf_config(index=2),
            "task index 2 is out of range: cluster\\['worker'\\] has 2 address\\(es\\), so expected 0 to 1",
        ),
        (tf_config({"ps": ["h:1"]}, "ps"), "expected roles \\['chief', 'worker'\\]"),
        (tf_config({"worker": ["localhost"]}), "address 'localhost': expected 'host:port'"),
    ],
)
def test_bad_tf_config_is_a_config_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        read_tf_config(environ)


def test_multiworker_without_a_valid_tf_config_fails_fast_from_the_command_line(tmp_path):
    """One line on stderr, exit 2, and no wait for peers that will never come."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {{dataset: csv, root: {tmp_path}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    for extra, message in [
        ({}, "needs TF_CONFIG"),
        (tf_config(index=5), "task index 5 is out of range"),
    ]:
        start = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "lean_kd.cli.main",
                "train",
                "--config",
                str(recipe),
                "--out",
                str(tmp_path / "o"),
                "--strategy",
                "multiworker",
            ],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        errors = [line for line in result.stderr.splitlines() if line.startswith("lean-kd: error:")]
        assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr[
            -2000:
        ]
        assert time.monotonic() - start < 60  # TensorFlow's own wait for peers is unbounded


def replicas(count: int):
    return types.SimpleNamespace(num_replicas_in_sync=count)


def test_global_and_per_replica_batch():
    assert global_batch_size(32, DistributeSection(batch="global"), replicas(4)) == 32
    assert global_batch_size(32, DistributeSection(batch="per_replica"), replicas(4)) == 128
    with pytest.raises(
        ConfigError, match="batch_size 30 is the global batch .* among the 4 replicas"
    ):
        global_batch_size(30, DistributeSection(), replicas(4))
    with pytest.raises(ConfigError, match="distribute.strategy must be one of"):
        DistributeSection(strategy="tpu")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> AudioPipeline:
    root = tmp_path_factory.mktemp("synth")
    synthesize(
        root,
        SynthConfig(
            classes=("siren", "knock", "rain"), clips_per_class=9, duration_seconds=(1.0, 1.2)
        ),
        progress=False,
    )
    index = load_index("csv", root)
    return AudioPipeline(
        index,
        audio=AudioConfig(clip_seconds=0.5),
        features=None,
        pipeline=PipelineConfig(batch_size=4),
    )


def rows(pipeline: AudioPipeline, split: str) -> CropTable:
    """A crop table whose only array is each example's row: batches then say which clips they hold."""
    n = len(pipeline.index.split(split))
    return CropTable(np.zeros([n, 1], np.int32), {"row": np.arange(n, dtype=np.int32)[:, None]})


def test_two_workers_read_disjoint_equal_shards_of_the_training_files(pipeline):
    n = len(pipeline.index.split("train"))
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2
        )
        batches = list(
            pipeline.dataset(
                "train", training=True, input_context=context, crops=rows(pipeline, "train")
            )
        )
        assert all(
            inputs["waveform"].shape[0] == 2 for inputs, _ in batches
        )  # global 4 over 2 replicas
        assert len(batches) == pipeline.steps("train", training=True, replicas=2, workers=2)
        seen.append([int(r) for inputs, _ in batches for r in inputs["row"].numpy()])
    assert len(seen[0]) == len(seen[1]) and not set(seen[0]) & set(seen[1])
    assert n - len(seen[0]) - len(seen[1]) < 2 * 2 * 2  # less than a step per worker left out


def test_validation_batches_split_evenly_and_never_leave_a_replica_empty(pipeline):
    n = len(pipeline.index.split("val"))
    context = tf.distribute.InputContext(
        num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2
    )
    batches = list(
        pipeline.dataset("val", training=False, input_context=context, crops=rows(pipeline, "val"))
    )
    sizes = [int(inputs["waveform"].shape[0]) for inputs, _ in batches]
    assert (
        len(sizes)
        == 2 * pipeline.steps("val", training=False, replicas=2)
        == validation_slots(n, 2, 2)
    )
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert sorted(int(r) for inputs, _ in batches for r in inputs["row"].numpy()) == list(range(n))


def test_validation_slots():
    assert validation_slots(9, 4, 2) == 4  # sizes 3, 2, 2, 2: two steps of two replicas
    assert validation_slots(3, 4, 2) == 2
    assert validation_slots(7, 1, 2) == 6  # a step fewer than 7 batches of 1 would need
    with pytest.raises(ConfigError, match="1 example\\(s\\), fewer than the 2 replicas"):
        validation_slots(1, 4, 2)
