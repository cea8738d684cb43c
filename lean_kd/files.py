"""Writing artefacts so that a failed or interrupted write never leaves a truncated file.

Every file lean_kd writes goes through here: bytes or text with :func:`write_atomic`, JSON
with :func:`write_json`, and files that a library writes by name (Keras checkpoints, WAV,
PNG, NumPy archives) inside :func:`atomic_path`. Each writes a temporary file beside the
target and renames it over the target, so readers see the old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lean_kd.errors import LeanKDError

FILE_MODE = 0o644  # mkstemp creates 0600; artefacts are meant to be shared


@contextlib.contextmanager
def atomic_path(path: str | Path, *, error: type[LeanKDError] = LeanKDError) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) to write to; renamed to ``path`` when the
    block ends without an exception, removed in every case.

    Raises ``error`` naming the file when the folder is not writable or the rename fails.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    except OSError as exc:
        raise error(
            f"Output folder {path.parent} is not writable ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        raise error(f"Cannot write {path} ({exc.strerror or exc}); nothing was written") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(
    path: str | Path, data: bytes | str, *, error: type[LeanKDError] = LeanKDError
) -> None:
    """``data`` (text as UTF-8) to ``path`` through a temporary file; see :func:`atomic_path`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, error=error) as tmp:
        tmp.write_bytes(payload)


def write_json(
    path: str | Path, data: Any, *, indent: int = 1, default: Callable[[Any], Any] | None = None
) -> None:
    """``data`` as JSON (NaN and infinity refused: they are not JSON) ending in a newline."""
    write_atomic(path, json.dumps(data, indent=indent, allow_nan=False, default=default) + "\n")
