"""Dataset adapters: one module per on-disk layout, each ``load_<name>(root, **options)``.

Adapters read metadata only (CSV files, file names), never the audio, so indexing a large
dataset takes seconds; :func:`missing_audio_files` and :mod:`lean_kd.data.inspect` check the
files themselves. ``load_index("esc50", root)`` is the one entry point recipes and the CLI use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lean_kd.data.adapters._common import missing_audio_files
from lean_kd.data.adapters.esc50 import load_esc50
from lean_kd.data.adapters.folder import load_folder
from lean_kd.data.adapters.fsd50k import load_fsd50k
from lean_kd.data.adapters.fsdd import load_fsdd
from lean_kd.data.adapters.manifest import load_csv
from lean_kd.data.adapters.urbansound8k import load_urbansound8k
from lean_kd.data.index import DatasetIndex
from lean_kd.errors import ConfigError, DataError

ADAPTERS: dict[str, Callable[..., DatasetIndex]] = {
    "esc50": load_esc50,
    "urbansound8k": load_urbansound8k,
    "fsd50k": load_fsd50k,
    "fsdd": load_fsdd,
    "folder": load_folder,
    "csv": load_csv,
}


def load_index(name: str, root: str | Path, /, **options: Any) -> DatasetIndex:
    """Index of dataset ``name`` (a key of :data:`ADAPTERS`) stored under ``root``.

    Raises DataError for an unknown name or a missing root and ConfigError for an option the
    adapter does not take, each naming what would have been accepted.
    """
    adapter = ADAPTERS.get(name.lower())
    if adapter is None:
        raise DataError(f"Unknown dataset {name!r}; known datasets: {sorted(ADAPTERS)}")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{name}: dataset root {path} does not exist")
    accepted = [p for p in inspect.signature(adapter).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"{name}: unknown option(s) {unknown}; accepted: {accepted}")
    return adapter(path, **options)


__all__ = [
    "ADAPTERS",
    "load_index",
    "missing_audio_files",
    "load_esc50",
    "load_urbansound8k",
    "load_fsd50k",
    "load_fsdd",
    "load_folder",
    "load_csv",
]
