"""FSD50K (Fonseca et al., 2022): 51k Freesound clips, 200 AudioSet classes, multi-label.

Layout::

    FSD50K.ground_truth/vocabulary.csv   no header: index, label, mid (defines the class ids)
    FSD50K.ground_truth/dev.csv          fname, labels, mids, split (train / val)
    FSD50K.ground_truth/eval.csv         fname, labels, mids
    FSD50K.dev_audio/{fname}.wav
    FSD50K.eval_audio/{fname}.wav

``labels`` is a comma-separated list of vocabulary labels (a quoted CSV field). The dev set's
own train/val split is kept (it avoids uploader overlap); the eval set becomes ``test``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lean_kd.data.adapters._common import Row, existing_dir, label_ids, read_rows
from lean_kd.data.index import DatasetIndex, Example, resolve_path
from lean_kd.errors import DataError

_VOCABULARY_COLUMNS = ("index", "label", "mid")
_DEV_SPLITS = ("train", "val")


def load_fsd50k(root: str | Path, *, include_eval: bool = True) -> DatasetIndex:
    """Multi-label index of FSD50K under ``root``; ``include_eval=False`` skips eval.csv."""
    root = existing_dir(root, dataset="fsd50k")
    truth = root / "FSD50K.ground_truth"
    vocabulary = truth / "vocabulary.csv"
    class_names = _read_vocabulary(vocabulary)
    lookup = {name: i for i, name in enumerate(class_names)}

    def examples(csv_name: str, audio_dir: str, split_of: Callable[[Row], str]) -> list[Example]:
        required = ("fname", "labels", "split") if split_of is _dev_split else ("fname", "labels")
        return [
            Example(
                path=resolve_path(root / audio_dir, f"{row.text('fname')}.wav"),
                labels=label_ids(
                    row, "labels", lookup=lookup, separator=",", vocabulary=str(vocabulary)
                ),
                split=split_of(row),
                example_id=row.text("fname"),
            )
            for row in read_rows(truth / csv_name, required=required)
        ]

    found = examples("dev.csv", "FSD50K.dev_audio", _dev_split)
    if include_eval:
        found += examples("eval.csv", "FSD50K.eval_audio", _eval_split)
    return DatasetIndex(
        name="fsd50k", class_names=class_names, examples=tuple(found), multi_label=True
    )


def _read_vocabulary(path: Path) -> tuple[str, ...]:
    rows = read_rows(path, required=_VOCABULARY_COLUMNS, fieldnames=_VOCABULARY_COLUMNS)
    for position, row in enumerate(rows):
        if row.integer("index") != position:
            raise DataError(
                f"{row.where()}: vocabulary index {row.text('index')}, expected {position} "
                "(indexes must count 0, 1, 2... in file order)"
            )
    return tuple(row.text("label") for row in rows)


def _dev_split(row: Row) -> str:
    return row.choice("split", _DEV_SPLITS)


def _eval_split(row: Row) -> str:
    return "test"
