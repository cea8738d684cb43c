"""Folder-per-class layout: ``root/<class>/*.{wav,flac,ogg}``.

When the top-level folders are exactly a subset of ``train``, ``val`` and ``test``, the layout
is ``root/<split>/<class>/...`` instead. Class names are the sorted folder names (the union over
splits), so ids are stable whatever the file order. Files below a class folder may sit in
sub-folders; files with other extensions, or outside any class folder, are warned about and
skipped (DataError with ``strict=True``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lean_kd.data.adapters._common import (
    AUDIO_EXTENSIONS,
    audio_files,
    existing_dir,
    report_skipped,
    require_examples,
)
from lean_kd.data.index import SPLITS, DatasetIndex, Example
from lean_kd.errors import DataError


def load_folder(
    root: str | Path,
    *,
    extensions: Iterable[str] = AUDIO_EXTENSIONS,
    val_fraction: float = 0.0,
    seed: int = 0,
    strict: bool = False,
    name: str = "folder",
) -> DatasetIndex:
    """Index of a folder-per-class dataset; ``val_fraction`` moves a share of train to val."""
    root = existing_dir(root, dataset=name)
    extensions = tuple(extensions)
    split_dirs = _split_dirs(root)
    class_names = sorted({d.name for folder in split_dirs.values() for d in _subdirs(folder)})
    if not class_names:
        raise DataError(f"{name}: no class folders under {root}; expected root/<class>/*.wav")
    examples, skipped = [], _loose_files({root, *split_dirs.values()})
    for split, folder in split_dirs.items():
        for class_dir in _subdirs(folder):
            found, others = audio_files(class_dir, extensions=extensions)
            skipped += others
            label = class_names.index(class_dir.name)
            examples += [
                Example(
                    path=str(path),
                    labels=(label,),
                    split=split,
                    example_id=path.relative_to(root).with_suffix("").as_posix(),
                )
                for path in found
            ]
    why = f"outside a class folder or not {extensions}"
    report_skipped(skipped, dataset=name, why=why, strict=strict)
    require_examples(examples, dataset=name, where=root)
    index = DatasetIndex(name=name, class_names=tuple(class_names), examples=tuple(examples))
    return index.with_validation(fraction=val_fraction, seed=seed) if val_fraction else index


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _loose_files(folders: Iterable[Path]) -> list[Path]:
    """Visible files that sit directly in the root or a split folder (not in a class folder)."""
    return sorted(
        p for f in folders for p in f.iterdir() if p.is_file() and not p.name.startswith(".")
    )


def _split_dirs(root: Path) -> dict[str, Path]:
    """``{split: folder}``: the split folders when the top level is only those, else all train."""
    top = {d.name: d for d in _subdirs(root)}
    if top and set(top) <= set(SPLITS):
        return {s: top[s] for s in SPLITS if s in top}
    return {"train": root}
