"""The dataset index: what every adapter produces and every pipeline consumes.

An index is a class list plus a list of :class:`Example` (file path, class ids, split, fold,
stable id). Label vectors are derived from the class ids, one-hot for single-label data and
multi-hot for multi-label data, so nothing downstream needs to know the dataset's layout.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lean_kd.errors import DataError

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Example:
    """One labelled audio file."""

    path: str
    labels: tuple[int, ...]
    split: str = "train"
    fold: int = 0  # 0: the dataset has no folds
    example_id: str = ""
    group: str = ""  # clips cut from one recording share a group; they stay in one split

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise DataError(f"{self.path}: split {self.split!r} is not one of {SPLITS}")
        if not self.labels:
            raise DataError(f"{self.path}: example has no label")


@dataclasses.dataclass(frozen=True)
class DatasetIndex:
    """Class names and examples of one dataset, as read from its own layout."""

    name: str
    class_names: tuple[str, ...]
    examples: tuple[Example, ...]
    multi_label: bool = False

    def __post_init__(self) -> None:
        if not self.class_names:
            raise DataError(f"Dataset {self.name}: the class list is empty")
        if len(set(self.class_names)) != len(self.class_names):
            dupes = [n for n, c in collections.Counter(self.class_names).items() if c > 1]
            raise DataError(f"Dataset {self.name}: duplicate class names {dupes}")
        for example in self.examples:
            bad = [i for i in example.labels if not 0 <= i < self.num_classes]
            if bad:
                raise DataError(
                    f"{example.path}: label id(s) {bad} outside 0..{self.num_classes - 1}"
                )
            if not self.multi_label and len(example.labels) != 1:
                raise DataError(
                    f"{example.path}: {len(example.labels)} labels in a single-label dataset"
                )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> list[Example]:
        """Examples of one split ('train', 'val' or 'test')."""
        if name not in SPLITS:
            raise DataError(f"Unknown split {name!r}; expected one of {SPLITS}")
        return [e for e in self.examples if e.split == name]

    def label_matrix(self, examples: Sequence[Example]) -> np.ndarray:
        """``[len(examples), num_classes]`` float32 one-hot / multi-hot targets."""
        matrix = np.zeros((len(examples), self.num_classes), dtype=np.float32)
        for row, example in enumerate(examples):
            matrix[row, list(example.labels)] = 1.0
        return matrix

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        """Number of examples carrying each class (in one split, or all)."""
        counts = collections.Counter(
            i for e in self.examples if split is None or e.split == split for i in e.labels
        )
        return {name: counts.get(i, 0) for i, name in enumerate(self.class_names)}

    def with_folds(
        self, *, test_folds: Iterable[int], val_folds: Iterable[int] = ()
    ) -> DatasetIndex:
        """Reassign splits by fold (ESC-50, UrbanSound8K cross-validation)."""
        test, val = set(test_folds), set(val_folds)
        folds = {e.fold for e in self.examples}
        missing = sorted((test | val) - folds)
        if missing:
            raise DataError(f"Dataset {self.name}: fold(s) {missing} not in {sorted(folds)}")

        def split_of(e: Example) -> str:
            return "test" if e.fold in test else "val" if e.fold in val else "train"

        return dataclasses.replace(
            self, examples=tuple(dataclasses.replace(e, split=split_of(e)) for e in self.examples)
        )

    def with_validation(self, *, fraction: float, seed: int = 0) -> DatasetIndex:
        """Move a deterministic ``fraction`` of the training examples to 'val'.

        Used for datasets without a validation split (the seeds hold out 10 %). The choice
        depends only on the example ids (or groups: clips of one recording move together, so
        validation never hears a recording seen in training) and the seed, not on the file order.
        """
        if not 0 < fraction < 1:
            raise DataError(f"Validation fraction must be in (0, 1), got {fraction}")

        def score(e: Example) -> float:
            digest = hashlib.sha1(f"{seed}:{e.group or e.example_id or e.path}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2**64

        def split_of(e: Example) -> str:
            return "val" if e.split == "train" and score(e) < fraction else e.split

        return dataclasses.replace(
            self, examples=tuple(dataclasses.replace(e, split=split_of(e)) for e in self.examples)
        )

    def fingerprint(self) -> str:
        """sha256 of the class list and examples: detects a cache or index from other data."""
        payload = {
            "classes": list(self.class_names),
            "multi_label": self.multi_label,
            "examples": [dataclasses.astuple(e) for e in self.examples],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def summary(self) -> dict[str, dict[str, int]]:
        """Per-split class counts, for reports and ``lean-kd data inspect``."""
        return {s: self.class_counts(s) for s in SPLITS if self.split(s)}


def resolve_path(root: Path, value: str) -> str:
    """Absolute path of a file named relative to ``root`` (absolute paths kept)."""
    path = Path(value)
    return str(path if path.is_absolute() else (root / path))


def require_columns(columns: Iterable[str], required: Iterable[str], *, source: Path) -> None:
    """Raise DataError naming the missing columns of a metadata CSV."""
    missing = [c for c in required if c not in set(columns or ())]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {list(columns or [])}")
