"""Stage records: what a finished stage wrote, and a fingerprint of what went into it.

A stage is done when ``<stage>/stage.json`` exists, its fingerprint equals the one computed
from the current inputs, and every output it lists still exists. The record is written last
and atomically, so a stage killed half-way, or one whose write failed, is never marked done.
While a stage runs, ``<stage>/.pending.json`` holds the fingerprint it runs for: a rerun with
the same fingerprint resumes in the same folder (training continues from its last epoch,
the teacher cache from its last shard); a rerun with another fingerprint starts afresh.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lean_kd import files
from lean_kd.data.index import DatasetIndex

logger = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
PENDING_FILE = ".pending.json"


@dataclasses.dataclass(frozen=True)
class StageRecord:
    """The content of ``stage.json`` (see /tmp/run_layout.md, the run-folder contract)."""

    stage: str
    fingerprint: str
    inputs: Mapping[str, Any]
    seconds: float
    finished: str  # ISO time, UTC
    outputs: tuple[str, ...]  # paths relative to the stage folder

    @property
    def ref(self) -> dict[str, str]:
        """What a downstream stage's fingerprint takes from this one: a rerun here changes it."""
        return {"fingerprint": self.fingerprint, "finished": self.finished}


def fingerprint(inputs: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``inputs`` (sorted keys; tuples as lists)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Stage input {value!r} ({type(value).__name__}) is not JSON data")


def data_fingerprint(index: DatasetIndex) -> str:
    """The index's fingerprint plus each file's size and mtime: a re-recorded file counts."""
    stats = []
    for path in sorted({e.path for e in index.examples}):
        try:
            info = os.stat(path)
            stats.append((path, info.st_size, info.st_mtime_ns))
        except OSError:
            stats.append((path, -1, -1))  # unreadable: the prepare stage reports it
    return fingerprint({"index": index.fingerprint(), "files": stats})


def read_record(stage_dir: Path) -> StageRecord | None:
    """The stage's record, or None when there is none or it cannot be read (not done)."""
    path = Path(stage_dir) / STAGE_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        raw["outputs"] = tuple(raw["outputs"])
        return StageRecord(**raw)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.warning("%s is unreadable (%s); the stage will run again", path, exc)
        return None


def not_done_reason(record: StageRecord | None, expected: str, stage_dir: Path) -> str | None:
    """Why the stage must run (None: it is done and can be skipped)."""
    if record is None:
        return "not run yet"
    if record.fingerprint != expected:
        return "its inputs changed"
    missing = [name for name in record.outputs if not (stage_dir / name).exists()]
    if missing:
        return f"output {stage_dir / missing[0]} is missing (deleted?)"
    return None


def new_record(
    stage: str, fp: str, inputs: Mapping[str, Any], seconds: float, outputs: list[str]
) -> StageRecord:
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
    return StageRecord(stage, fp, dict(inputs), round(seconds, 3), finished, tuple(outputs))


def write_record(stage_dir: Path, record: StageRecord) -> None:
    """Write ``stage.json`` atomically (the last thing a stage does)."""
    data = dataclasses.asdict(record)
    data["outputs"] = list(record.outputs)
    write_json(Path(stage_dir) / STAGE_FILE, data)


def write_json(path: Path, data: Any) -> None:
    """JSON with dataclasses, paths and NumPy values made plain (see :func:`_plain`)."""
    files.write_json(path, data, default=_plain)


def pending_fingerprint(stage_dir: Path) -> str | None:
    """The fingerprint an interrupted run of this stage was running for (None: none)."""
    try:
        return json.loads((Path(stage_dir) / PENDING_FILE).read_text())["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
