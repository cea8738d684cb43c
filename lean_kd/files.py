"""Writing artefacts so that a failed or interrupted write never leaves a truncated file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lean_kd.errors import LeanKDError


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """``data`` to a temporary file beside ``path``, then renamed to ``path``.

    Text is written as UTF-8. Raises :class:`LeanKDError` naming the file when the write fails.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise LeanKDError(f"Cannot write {path} ({exc.strerror or exc})") from None
