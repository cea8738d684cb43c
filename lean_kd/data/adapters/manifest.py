"""Generic CSV manifest: the format of ``lean-kd data synth`` and of any custom dataset.

Files (``root`` is the folder holding ``manifest.csv``, or the CSV file itself)::

    manifest.csv   one row per audio file, with a header line
    classes.txt    optional, beside the manifest: one class name per line; line order
                   defines the class ids (blank lines are ignored)

Columns of ``manifest.csv``:

==========  ========  ===================================================================
column      required  meaning
==========  ========  ===================================================================
``path``    yes       audio file, relative to the manifest's folder (or absolute)
``labels``  yes       class names separated by ``;`` (``siren`` or ``siren;engine``)
``split``   no        ``train``, ``val`` or ``test``; empty or absent: ``train``
``fold``    no        integer cross-validation fold; empty or absent: 0 (no folds)
``id``      no        stable example id (validation split, caches); default: ``path``
==========  ========  ===================================================================

Example::

    path,labels,split,fold,id
    audio/siren_000.wav,siren,train,1,siren_000
    audio/mix_007.wav,siren;engine,test,2,mix_007

Without ``classes.txt`` the classes are the sorted unique labels of the manifest. With it, a
label that is not listed is an error ("unknown label"), never a new class. The dataset is
multi-label when any row has more than one label (``multi_label=`` forces either way).
"""

from __future__ import annotations

from pathlib import Path

from lean_kd.data.adapters._common import Row, label_ids, read_rows, split_labels
from lean_kd.data.index import SPLITS, DatasetIndex, Example, resolve_path
from lean_kd.errors import DataError

MANIFEST_NAME = "manifest.csv"
CLASSES_NAME = "classes.txt"
LABEL_SEPARATOR = ";"
REQUIRED_COLUMNS = ("path", "labels")
OPTIONAL_COLUMNS = ("split", "fold", "id")


def load_csv(
    root: str | Path, *, multi_label: bool | None = None, name: str = "csv"
) -> DatasetIndex:
    """Index of a CSV manifest (see the module docstring for the columns)."""
    manifest = _manifest_path(Path(root).expanduser())
    rows = read_rows(manifest, required=REQUIRED_COLUMNS)
    class_names, vocabulary = _class_names(manifest, rows)
    lookup = {label: i for i, label in enumerate(class_names)}
    examples = tuple(
        _example(row, folder=manifest.parent, lookup=lookup, vocabulary=vocabulary) for row in rows
    )
    if multi_label is None:
        multi_label = any(len(e.labels) > 1 for e in examples)
    return DatasetIndex(
        name=name, class_names=class_names, examples=examples, multi_label=multi_label
    )


def _manifest_path(root: Path) -> Path:
    if not root.exists():
        raise DataError(f"CSV manifest or dataset root {root} does not exist")
    manifest = root / MANIFEST_NAME if root.is_dir() else root
    if not manifest.is_file():
        raise DataError(f"Metadata file not found: {manifest}")
    return manifest


def _class_names(manifest: Path, rows: list[Row]) -> tuple[tuple[str, ...], str]:
    """Class list and where it came from (for "unknown label" messages)."""
    classes_file = manifest.parent / CLASSES_NAME
    if classes_file.is_file():
        lines = classes_file.read_text(encoding="utf-8-sig").splitlines()
        names = tuple(line.strip() for line in lines if line.strip())
        if not names:
            raise DataError(f"{classes_file}: no class names (expected one per line)")
        return names, str(classes_file)
    labels = {n for row in rows for n in split_labels(row, "labels", separator=LABEL_SEPARATOR)}
    return tuple(sorted(labels)), f"the labels of {manifest}"


def _example(row: Row, *, folder: Path, lookup: dict[str, int], vocabulary: str) -> Example:
    path = row.text("path")
    return Example(
        path=resolve_path(folder, path),
        labels=label_ids(
            row, "labels", lookup=lookup, separator=LABEL_SEPARATOR, vocabulary=vocabulary
        ),
        split=row.choice("split", SPLITS, default="train"),
        fold=row.integer("fold", default=0),
        example_id=row.text("id", default=path),
    )
