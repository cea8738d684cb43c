"""Teacher streams started side by side are recorded once: the others wait for the recorder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lean_kd.distill import teacher_stream as streams

# Holds the folder's recording lock, writes a finished stream of `key`, then releases it.
RECORDER = """
import fcntl, json, sys, time
from pathlib import Path
import numpy as np
folder, key = Path(sys.argv[1]), sys.argv[2]
folder.mkdir(parents=True, exist_ok=True)
with open(folder / "recording.lock", "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("recording", flush=True)
    time.sleep(1.5)
    np.savez(folder / "stream.npz", teacher_logits=np.full((4, 2, 3), 7.0, np.float32))
    meta = {"key": key, "inputs": {}, "steps": 4, "outputs": ["logits"], "batch_size": 2}
    (folder / "stream.json").write_text(json.dumps(meta))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")
def test_a_run_waits_for_the_recording_run_then_reads_its_stream(tmp_path, monkeypatch):
    key = "f" * 64
    folder = streams.stream_folder(tmp_path, key)

    def must_not_record(*args, **kwargs):
        raise AssertionError("recorded a stream another run was recording")

    monkeypatch.setattr(streams, "_record", must_not_record)
    recorder = subprocess.Popen(
        [sys.executable, "-c", RECORDER, str(folder), key], stdout=subprocess.PIPE, text=True
    )
    try:
        assert recorder.stdout.readline().strip() == "recording"
        # the stream is not there yet: only waiting for the recorder can give its arrays
        arrays = streams.teacher_stream(
            tmp_path, key, teacher=None, batches=None, steps=4, outputs=("logits",), inputs={}
        )
        assert recorder.wait(timeout=30) == 0
    finally:
        recorder.kill()
        recorder.stdout.close()
    np.testing.assert_array_equal(arrays["teacher_logits"], np.full((4, 2, 3), 7.0))


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")
def test_the_recording_run_holds_the_lock_while_it_records(tmp_path, monkeypatch):
    import fcntl

    key = "e" * 64
    folder = streams.stream_folder(tmp_path, key)

    def record(*args, **kwargs):
        with open(folder / streams.LOCK_FILE, "a") as other:  # another open file: another run
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return {"teacher_logits": np.zeros((4, 2, 3), np.float32)}

    monkeypatch.setattr(streams, "_record", record)
    streams.teacher_stream(
        tmp_path, key, teacher=None, batches=None, steps=4, outputs=("logits",), inputs={}
    )
    with open(folder / streams.LOCK_FILE, "a") as after:  # released once recorded
        fcntl.flock(after, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert (folder / streams.META_FILE).is_file()
