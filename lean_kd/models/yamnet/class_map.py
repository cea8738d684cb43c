"""AudioSet class maps: index -> (mid, display name), read from YAMNet's CSV.

The package ships a copy of the official ``yamnet_class_map.csv`` (Apache-2.0), so class names
are available on a user machine without any download; another CSV in the same layout
(``index,mid,display_name``) can be named explicitly.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from importlib import resources
from pathlib import Path

import numpy as np

from lean_kd.errors import ModelError

_HEADER = ["index", "mid", "display_name"]
_PACKAGED_CSV = "yamnet_class_map.csv"


@dataclasses.dataclass(frozen=True)
class ClassMap:
    """Class ``i`` has AudioSet id ``mids[i]`` and name ``display_names[i]``."""

    mids: tuple[str, ...]
    display_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.mids)

    def index(self, name_or_mid: str) -> int:
        """Index of a class given its display name or its AudioSet mid (exact match)."""
        for table in (self.display_names, self.mids):
            if name_or_mid in table:
                return table.index(name_or_mid)
        raise ModelError(
            f"Unknown AudioSet class {name_or_mid!r}: not a display name or mid of this class map"
        )

    def top_k(self, scores: np.ndarray, k: int) -> list[tuple[int, str, float]]:
        """The ``k`` best classes of a ``[classes]`` score vector as (index, name, score)."""
        scores = np.asarray(scores)
        if scores.shape != (len(self),):
            raise ModelError(f"Expected a score vector of shape ({len(self)},), got {scores.shape}")
        best = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), self.display_names[i], float(scores[i])) for i in best]


def load_class_map(path: str | Path | None = None) -> ClassMap:
    """Read a class map CSV; ``None`` reads the copy shipped with lean_kd."""
    if path is None:
        return _packaged_class_map()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Class map {path} does not exist")
    return _parse(path.read_text(encoding="utf-8"), source=str(path))


@functools.lru_cache(maxsize=1)
def _packaged_class_map() -> ClassMap:
    text = resources.files(__package__).joinpath(_PACKAGED_CSV).read_text(encoding="utf-8")
    return _parse(text, source=f"lean_kd/models/yamnet/{_PACKAGED_CSV}")


def _parse(text: str, *, source: str) -> ClassMap:
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0] != _HEADER:
        raise ModelError(f"{source}: expected the header {','.join(_HEADER)}, got {rows[:1]}")
    mids, names = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 3 or row[0] != str(len(mids)):
            raise ModelError(
                f"{source} line {line}: expected 'index,mid,display_name' with index {len(mids)}, got {row}"
            )
        mids.append(row[1])
        names.append(row[2])
    if not mids:
        raise ModelError(f"{source}: the class map lists no classes")
    return ClassMap(mids=tuple(mids), display_names=tuple(names))
