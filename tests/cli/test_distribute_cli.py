"""Training on several devices and hosts, with the commands as a user types them (README "Scaling out").

Mirrored runs split the CPU into 2 logical devices (LEAN_KD_CPU_DEVICES=2); multi-worker runs
start 2 ``lean-kd`` processes on localhost with ports the test finds free, one TF_CONFIG each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_model
from lean_kd.cli._console import LOG_FILE
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.training.distribute import localhost_cluster, worker_tf_config
from lean_kd.training.trainer import read_history, save_model

REPO = Path(__file__).resolve().parents[2]
LEAN_KD = str(Path(sys.executable).parent / "lean-kd")
TIMEOUT = 300  # seconds per command; each takes 15-60 s on a loaded 2-core machine

RECIPE = """\
name: tiny_distributed
data: {{dataset: csv, root: {root}}}
pipeline: {{batch_size: {batch}, cache: true}}
teacher: {{checkpoint: {teacher}}}
student: {{checkpoint: {student}}}
teacher_training: {{epochs: {epochs}, learning_rate: 3.0e-3, backup_steps: 1}}
training: {{epochs: 2, learning_rate: 3.0e-3}}
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    config = SynthConfig(
        classes=("siren", "knock", "rain"), clips_per_class=8, duration_seconds=(1.0, 1.5)
    )
    synthesize(root / "data", config, progress=False)
    save_model(tiny_model(3, width=8, seed=0, name="teacher"), root / "teacher.keras")
    save_model(tiny_model(3, width=4, seed=1, name="student"), root / "student.keras")
    return root


def write_recipe(
    workspace: Path, path: Path, *, epochs: int = 2, batch: int = 8, extra: str = ""
) -> Path:
    text = RECIPE.format(
        root=workspace / "data",
        teacher=workspace / "teacher.keras",
        student=workspace / "student.keras",
        epochs=epochs,
        batch=batch,
    )
    path.write_text(text + extra)
    return path


def environment(**extra: str) -> dict[str, str]:
    """The user's environment with this checkout first on the path (as an installed clone)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "LEAN_KD_CPU_DEVICES")}
    return {**env, "PYTHONPATH": path, **extra}


def lean_kd(*args: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [LEAN_KD, *args],
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"lean-kd {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def start_workers(
    args: list[str], cluster: list[str], logs: Path, attempt: str = ""
) -> list[subprocess.Popen]:
    workers = []
    for index in range(len(cluster)):
        log = open(logs / f"worker{index}{attempt}.log", "w")
        env = environment(TF_CONFIG=worker_tf_config(cluster, index))
        workers.append(
            subprocess.Popen([LEAN_KD, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    return workers


def wait_all(workers: list[subprocess.Popen], logs: Path, attempt: str = "") -> None:
    try:
        codes = [w.wait(timeout=TIMEOUT) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    text = "\n".join(
        (logs / f"worker{i}{attempt}.log").read_text()[-3000:] for i in range(len(workers))
    )
    assert codes == [0] * len(workers), f"worker exit codes {codes}:\n{text}"


def weights(path: Path) -> list[np.ndarray]:
    from lean_kd.models.registry import load_model

    return load_model(path).get_weights()


@pytest.mark.heavy
def test_mirrored_train_and_distill_on_two_logical_cpus(workspace, tmp_path):
    recipe = write_recipe(workspace, tmp_path / "r.yaml")
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    lean_kd(
        "train",
        "--config",
        str(recipe),
        "--out",
        str(teacher),
        "--strategy",
        "mirrored",
        LEAN_KD_CPU_DEVICES="2",
    )
    # INFO lines go to the run folder's lean_kd.log (the console shows warnings and results)
    assert (
        "MirroredStrategy: 2 replica(s); batch 4 per replica, 8 global"
        in (teacher / LOG_FILE).read_text()
    )
    assert read_history(teacher / "history.csv")["epoch"] == [0.0, 1.0]
    assert json.loads((teacher / "metrics.json").read_text())["epochs_run"] == 2
    # the recipe's distribute section instead of --strategy; per-replica batch; online teacher
    per_replica = write_recipe(
        workspace,
        tmp_path / "p.yaml",
        batch=4,
        extra="distribute: {strategy: mirrored, batch: per_replica}\n",
    )
    lean_kd(
        "distill",
        "--config",
        str(per_replica),
        "--teacher",
        str(teacher / "best.keras"),
        "--out",
        str(student),
        LEAN_KD_CPU_DEVICES="2",
    )
    assert (
        "MirroredStrategy: 2 replica(s); batch 4 per replica, 8 global (pipeline.batch_size 4 read as per_replica)"
        in (student / LOG_FILE).read_text()
    )
    assert {"kd", "ce", "val_map"} <= set(read_history(student / "history.csv"))
    assert len(weights(student / "best.keras")) == len(weights(workspace / "student.keras"))


@pytest.mark.heavy
def test_two_workers_on_localhost_finish_with_the_same_weights(workspace, tmp_path):
    recipe = write_recipe(workspace, tmp_path / "r.yaml")
    out = tmp_path / "run"
    args = ["train", "--config", str(recipe), "--out", str(out), "--strategy", "multiworker"]
    wait_all(start_workers(args, localhost_cluster(2), tmp_path), tmp_path)
    # the chief (worker 0) wrote the run folder; worker 1 only its scratch folder
    assert {"best.keras", "final.keras", "history.csv", "metrics.json", "tensorboard"} <= {
        p.name for p in out.iterdir()
    }
    scratch = out / ".worker-1"
    assert (scratch / "final.keras").is_file() and not (scratch / "metrics.json").exists()
    assert read_history(out / "history.csv")["epoch"] == [0.0, 1.0]
    for chief, worker in zip(weights(out / "final.keras"), weights(scratch / "final.keras")):
        np.testing.assert_array_equal(chief, worker)  # all-reduced updates: the same bits
    assert "the chief writes" in (tmp_path / "worker1.log").read_text()


@pytest.mark.heavy
def test_a_killed_worker_resumes_after_a_restart(workspace, tmp_path):
    recipe = write_recipe(workspace, tmp_path / "r.yaml", epochs=6)
    out = tmp_path / "run"
    args = ["train", "--config", str(recipe), "--out", str(out), "--strategy", "multiworker"]
    workers = start_workers(args, localhost_cluster(2), tmp_path)
    deadline = time.monotonic() + TIMEOUT
    while len(read_history(out / "history.csv").get("epoch", [])) < 1:  # epoch 1 finished
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), (
            "no epoch finished"
        )
        time.sleep(0.1)
    workers[1].send_signal(signal.SIGKILL)
    try:  # the chief's collectives fail without its peer: the cluster restarts as a whole
        workers[0].wait(timeout=60)
    except subprocess.TimeoutExpired:
        workers[0].kill()
    for w in workers:
        w.wait()
    done = read_history(out / "history.csv")["epoch"]
    assert len(done) < 6, "the run finished before the kill: nothing to resume"
    wait_all(start_workers(args, localhost_cluster(2), tmp_path, "-restart"), tmp_path, "-restart")
    assert read_history(out / "history.csv")["epoch"] == [
        float(e) for e in range(6)
    ]  # continued, not restarted
    restarted = (tmp_path / "worker0-restart.log").read_text()
    assert "Epoch 1/6" not in restarted and f"Epoch {len(done) + 1}/6" in restarted


@pytest.mark.heavy
def test_run_and_qat_export_with_the_recipe_strategy(workspace, tmp_path):
    """``distribute: {strategy: mirrored}`` drives ``lean-kd run`` and ``export --qat`` (no flag)."""
    recipe = write_recipe(
        workspace, tmp_path / "r.yaml", extra="distribute: {strategy: mirrored}\n"
    )
    run = tmp_path / "run"
    result = lean_kd(
        "run",
        "--config",
        str(recipe),
        "--out",
        str(run),
        "--until",
        "teacher",
        LEAN_KD_CPU_DEVICES="2",
    )
    assert "MirroredStrategy: 2 replica(s)" in (run / LOG_FILE).read_text()
    assert read_history(run / "teacher" / "history.csv")["epoch"] == [0.0, 1.0]
    out = tmp_path / "student_int8.tflite"
    result = lean_kd(
        "-v",
        "export",
        "--model",
        str(workspace / "student.keras"),
        "--quant",
        "int8",
        "--qat",
        "--config",
        str(recipe),
        "--teacher",
        str(run / "teacher" / "best.keras"),
        "--qat-epochs",
        "1",
        "--out",
        str(out),
        LEAN_KD_CPU_DEVICES="2",
    )
    assert "MirroredStrategy: 2 replica(s)" in result.stderr and out.is_file()
    assert read_history(tmp_path / "student_int8.qat" / "history.csv")["epoch"] == [0.0]


def test_lean_kd_run_refuses_multiworker(workspace, tmp_path):
    from lean_kd.errors import ConfigError
    from lean_kd.run.recipe import load_recipe
    from lean_kd.run.runner import run_pipeline

    recipe = load_recipe(
        write_recipe(workspace, tmp_path / "r.yaml", extra="distribute: {strategy: multiworker}\n")
    )
    with pytest.raises(ConfigError, match="multiworker is not supported by lean-kd run"):
        run_pipeline(recipe, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "prepare").exists()
