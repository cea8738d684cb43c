"""Helpers shared by the adapters: metadata CSV rows that can name themselves in errors.

Adapters read metadata only (no audio), so a broken row must be reported with the CSV file and
line it came from; :class:`Row` carries both and parses its fields with that context.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from lean_kd.data.index import DatasetIndex, require_columns
from lean_kd.errors import DataError

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclasses.dataclass(frozen=True)
class Row:
    """One metadata CSV row and where it came from (file and 1-based line number)."""

    source: Path
    line: int
    values: Mapping[str, str | None]

    def where(self) -> str:
        return f"{self.source}, line {self.line}"

    def text(self, column: str, default: str | None = None) -> str:
        """The stripped value of ``column``; ``default`` (or an error) when it is empty."""
        value = (self.values.get(column) or "").strip()
        if value:
            return value
        if default is not None:
            return default
        raise DataError(f"{self.where()}: column {column!r} is empty")

    def integer(
        self, column: str, *, valid: range | None = None, default: int | None = None
    ) -> int:
        raw = self.text(column, None if default is None else str(default))
        try:
            value = int(raw)
        except ValueError:
            raise DataError(
                f"{self.where()}: column {column!r} is {raw!r}, expected an integer"
            ) from None
        if valid is not None and value not in valid:
            raise DataError(
                f"{self.where()}: {column} {value} outside {valid.start}..{valid.stop - 1}"
            )
        return value

    def choice(self, column: str, allowed: Sequence[str], *, default: str | None = None) -> str:
        value = self.text(column, default)
        if value not in allowed:
            raise DataError(f"{self.where()}: {column} {value!r}, expected one of {tuple(allowed)}")
        return value

    def boolean(self, column: str) -> bool:
        raw = self.text(column)
        if raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise DataError(f"{self.where()}: column {column!r} is {raw!r}, expected True or False")


def existing_dir(root: str | Path, *, dataset: str) -> Path:
    """``root`` as a Path, or DataError when it is not an existing folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{dataset}: dataset root {path} does not exist")
    if not path.is_dir():
        raise DataError(f"{dataset}: dataset root {path} is not a folder")
    return path


def read_rows(
    path: Path, *, required: Sequence[str], fieldnames: Sequence[str] | None = None
) -> list[Row]:
    """Rows of a metadata CSV after checking it exists and has the ``required`` columns.

    ``fieldnames`` names the columns of a CSV without a header line (FSD50K's vocabulary).
    """
    if not path.is_file():
        raise DataError(f"Metadata file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, fieldnames=fieldnames)
        require_columns(reader.fieldnames, required, source=path)
        rows = []
        for values in reader:
            if any(v and v.strip() for v in values.values() if isinstance(v, str)):
                rows.append(Row(source=path, line=reader.line_num, values=values))
    logger.debug("%s: %d rows", path, len(rows))
    return rows


def checked_class_id(
    row: Row, *, id_column: str, name_column: str, class_names: Sequence[str], item: str
) -> int:
    """The class id of a row whose metadata holds both the id and the name, checked to agree."""
    class_id = row.integer(id_column, valid=range(len(class_names)))
    name = row.text(name_column)
    if class_names[class_id] != name:
        raise DataError(
            f"{row.where()}: {item}: {name_column} {name!r} does not match "
            f"{id_column} {class_id} (expected {class_names[class_id]!r})"
        )
    return class_id


def label_ids(
    row: Row, column: str, *, lookup: Mapping[str, int], separator: str, vocabulary: str
) -> tuple[int, ...]:
    """Sorted class ids of a ``separator``-joined list of class names in ``column``."""
    names = split_labels(row, column, separator=separator)
    unknown = [n for n in names if n not in lookup]
    if unknown:
        raise DataError(f"{row.where()}: unknown label(s) {unknown} (not in {vocabulary})")
    return tuple(sorted({lookup[n] for n in names}))


def split_labels(row: Row, column: str, *, separator: str) -> list[str]:
    """Non-empty, stripped names of a ``separator``-joined label field (at least one)."""
    names = [n.strip() for n in row.text(column).split(separator) if n.strip()]
    if not names:
        raise DataError(f"{row.where()}: column {column!r} holds no label")
    return names


def audio_files(folder: Path, *, extensions: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """Visible files below ``folder`` (sorted), split into audio files and the others."""
    wanted = {e.lower() for e in extensions}
    audio, other = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        (audio if path.suffix.lower() in wanted else other).append(path)
    return audio, other


def report_skipped(skipped: Sequence[Path], *, dataset: str, why: str, strict: bool) -> None:
    """Warn about files an adapter left out (DataError when ``strict``): nothing goes silently."""
    if not skipped:
        return
    shown = ", ".join(str(p) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
    message = f"{dataset}: {len(skipped)} file(s) {why}: {shown}"
    if strict:
        raise DataError(message)
    warnings.warn(message + " (skipped)", stacklevel=3)


def missing_audio_files(index: DatasetIndex) -> list[str]:
    """Paths of the index that are not existing files (adapters never open the audio)."""
    return [e.path for e in index.examples if not Path(e.path).is_file()]


def require_examples(examples: Sequence[object], *, dataset: str, where: Path) -> None:
    if not examples:
        raise DataError(f"{dataset}: no examples found under {where}")
