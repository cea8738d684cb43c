"""The teacher's outputs over a training stream, recorded once and read by every student
trained on the same stream.

With mixup the teacher has to see the mixed clip its student hears (consistent teaching), which
the crop cache (:mod:`lean_kd.distill.teacher_cache`, unmixed crops) cannot give, so the teacher
normally runs at every training step. But the augmented stream depends only on the data, the
pipeline, audio and augmentation settings and the seeds (the pipeline's, paired by tf.data with
the global seed that ``training.seed`` sets), not on the student: students of any architecture
trained with the same settings and seed hear the same batches in the same order. A stream store keeps the
teacher's outputs on each batch under a key of everything the stream and the teacher depend
on, so the teacher runs once per key; a student whose settings differ gets a stream of its own,
never another's. Measured on the ESC-50 dev recipe: the online teacher is ~35 % of a LEAN
distillation step.

Layout: ``<store>/<key[:16]>/stream.json`` (key, inputs, steps, batch size, outputs; written
last) and ``stream.npz`` (``teacher_<output>``: ``[steps, batch, ...]``). Runs started side by
side (the benchmark's parallel workers) record a stream once: the recorder holds an exclusive
lock on ``recording.lock`` in the folder (``flock``: released by the system when a process
dies, so no stale lock is left behind), and the others wait for it, then read.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lean_kd._keras import keras, tf
from lean_kd.distill.teacher_cache import save_npz
from lean_kd.errors import DataError
from lean_kd.files import write_atomic

logger = logging.getLogger(__name__)

META_FILE, ARRAYS_FILE, LOCK_FILE = "stream.json", "stream.npz", "recording.lock"


def stream_folder(store: str | Path, key: str) -> Path:
    """Where the stream of ``key`` lives in ``store``."""
    return Path(store) / key[:16]


def teacher_stream(
    store: str | Path,
    key: str,
    *,
    teacher: keras.Model,
    batches: tf.data.Dataset,
    steps: int,
    outputs: Sequence[str],
    inputs: Mapping[str, Any],
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """The teacher's ``outputs`` on the first ``steps`` batches of ``batches``, as the
    ``teacher_<output>`` arrays :func:`with_teacher_stream` reads: from ``store`` when a stream
    of ``key`` holds them, else recorded now (``inputs``: what ``key`` was made of, kept for
    the reader)."""
    folder = stream_folder(store, key)
    found = _read(folder, key, steps, outputs)
    if found is None:
        with recording_lock(folder):  # another process recording this stream: wait, then read
            found = _read(folder, key, steps, outputs)
            if found is None:
                arrays = _record(teacher, batches, steps, outputs, progress)
                _save(folder, arrays, key=key, inputs=inputs, steps=steps, outputs=outputs)
                return arrays
    logger.info("Teacher stream: %d steps read from %s", steps, folder)
    return found


@contextlib.contextmanager
def recording_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder``'s recording, waiting while another process holds
    it. Where the system has no ``flock`` (Windows) nothing is locked: two runs started at the
    same moment may then both record (the same arrays)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is None:
        yield
        return
    with open(folder / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Teacher stream in %s: another run is recording it; waiting", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _save(folder: Path, arrays: Mapping[str, np.ndarray], **meta: Any) -> None:
    """The arrays, then the metadata that makes them readable (``key``, ``inputs``, ``steps``,
    ``outputs``)."""
    save_npz(folder / ARRAYS_FILE, dict(arrays))
    meta = {
        **meta, "inputs": dict(meta["inputs"]), "outputs": list(meta["outputs"]),
        "batch_size": int(next(iter(arrays.values())).shape[1]),
    }  # fmt: skip
    write_atomic(folder / META_FILE, json.dumps(meta, indent=1, default=str))
    logger.info("Teacher stream: %d steps recorded to %s", meta["steps"], folder)


def with_teacher_stream(
    batches: tf.data.Dataset, arrays: Mapping[str, np.ndarray]
) -> tf.data.Dataset:
    """``(x, labels)`` batches with the recorded teacher outputs of each step added to ``x``
    (``{"waveform": ..., "teacher_logits": ...}``); ends with the recording."""
    recorded = tf.data.Dataset.from_tensor_slices(dict(arrays))

    def merge(batch: tuple, teacher: dict[str, tf.Tensor]) -> tuple:
        x, labels = batch[0], batch[1]
        waveform = x["waveform"] if isinstance(x, Mapping) else x
        return ({"waveform": waveform, **teacher}, labels)

    return tf.data.Dataset.zip(batches, recorded).map(merge)


def _read(folder: Path, key: str, steps: int, outputs: Sequence[str]) -> dict | None:
    """The stored arrays when they are ``key``'s, cover ``steps`` and hold ``outputs``; None
    when there is nothing to read or too little (a longer run records again)."""
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise _unreadable(folder, exc) from None
    if meta.get("key") != key:
        raise DataError(
            f"{folder}: the teacher stream there was recorded for key {meta.get('key')!r}, "
            f"expected {key!r}; delete the folder to record it again"
        )
    if meta.get("steps", 0) < steps:
        logger.info(
            "Teacher stream in %s has %s steps, %d needed", folder, meta.get("steps"), steps
        )
        return None
    try:
        with np.load(folder / ARRAYS_FILE) as stored:
            return {f"teacher_{n}": stored[f"teacher_{n}"][:steps].copy() for n in outputs}
    except (OSError, ValueError, KeyError) as exc:
        raise _unreadable(folder, exc) from None


def _unreadable(folder: Path, exc: Exception) -> DataError:
    return DataError(
        f"{folder}: unreadable teacher stream ({exc}); delete the folder to record it again"
    )


def _record(
    teacher: keras.Model,
    batches: tf.data.Dataset,
    steps: int,
    outputs: Sequence[str],
    progress: bool,
) -> dict[str, np.ndarray]:
    predict = tf.function(lambda waveform: teacher(waveform, training=False))
    recorded: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    for x, _ in tqdm(
        batches.take(steps), total=steps, desc="teacher stream", unit="step", disable=not progress
    ):
        result = predict(x["waveform"] if isinstance(x, Mapping) else x)
        for name in outputs:
            recorded[name].append(result[name].numpy())
    sizes = {len(batch) for values in recorded.values() for batch in values}
    if len(recorded[outputs[0]]) < steps or len(sizes) != 1:
        raise DataError(
            f"The training stream gave {len(recorded[outputs[0]])} batches of sizes "
            f"{sorted(sizes)}; a teacher stream needs {steps} batches of one size (an endless "
            "stream of full batches)"
        )
    return {f"teacher_{name}": np.stack(values) for name, values in recorded.items()}
