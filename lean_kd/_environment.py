"""The one place for process settings that must be made before TensorFlow is imported.

TensorFlow reads its environment once, at import: ``TF_USE_LEGACY_KERAS`` selects tf_keras (see
:mod:`lean_kd._keras`) and ``TF_CPP_MIN_LOG_LEVEL`` filters its C++ log. Some start-up lines
(``All log messages before absl::InitializeLog()``, oneDNN, "Could not find cuda drivers") are
written by the native libraries while they load, before any filter is read; the only way to keep
them off a user's console is to point the process's native stderr (file descriptor 2) elsewhere.
:func:`quiet_native_stderr` does that for the ``lean-kd`` command and keeps Python's own stderr
(tracebacks, warnings, progress bars) on the console. This module must not import TensorFlow.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import IO

QUIET_TF_LOG_LEVEL = "3"  # errors too: a CPU-only machine prints "failed call to cuInit"
LIBRARY_TF_LOG_LEVEL = "2"  # library use (tests, notebooks): warnings and info hidden
NOISY_PYTHON_LOGGERS = ("tensorflow", "absl", "h5py", "matplotlib")

_native_log: IO[bytes] | None = None


def prepare_tensorflow_environment() -> None:
    """Select tf_keras and a quiet C++ log, unless the user has chosen otherwise."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", LIBRARY_TF_LOG_LEVEL)


def quiet_native_stderr() -> None:
    """Silence native start-up output for the rest of this process (``lean-kd`` without -v).

    Python's ``sys.stderr`` keeps writing to the console through a duplicate of the original
    descriptor; what native code writes to descriptor 2 goes to an anonymous temporary file that
    :func:`native_output` reads back when a command fails. Call before TensorFlow is imported.
    """
    global _native_log
    if _native_log is not None:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_TF_LOG_LEVEL
    prepare_tensorflow_environment()
    for name in NOISY_PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    sys.stderr.flush()
    console = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
    _native_log = tempfile.TemporaryFile()
    os.dup2(_native_log.fileno(), 2)
    sys.stderr = console


def native_output(max_chars: int = 4000) -> str:
    """The end of what native code wrote since :func:`quiet_native_stderr` ("" before it)."""
    if _native_log is None:
        return ""
    _native_log.flush()
    size = _native_log.seek(0, os.SEEK_END)
    _native_log.seek(max(0, size - max_chars))
    text = _native_log.read().decode("utf-8", errors="replace")
    _native_log.seek(0, os.SEEK_END)
    return text
