"""Free Spoken Digit Dataset (FSDD): 8 kHz recordings of the digits 0-9 by several speakers.

Layout: ``recordings/{digit}_{speaker}_{index}.wav`` (``root`` may be the dataset folder or the
``recordings`` folder itself). The customary split puts recordings with index 0-4 in ``test``
and 5-49 in ``train``; a deterministic ``val_fraction`` of train moves to ``val``. Class names
are the digit strings "0".."9", so class id == digit.
"""

from __future__ import annotations

import re
from pathlib import Path

from lean_kd.data.adapters._common import (
    audio_files,
    existing_dir,
    report_skipped,
    require_examples,
)
from lean_kd.data.index import DatasetIndex, Example

FSDD_CLASSES = tuple(str(d) for d in range(10))
FSDD_TEST_INDEXES = range(0, 5)
_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[^_]+)_(?P<index>[0-9]+)\.wav$", re.IGNORECASE)


def load_fsdd(
    root: str | Path, *, val_fraction: float = 0.1, seed: int = 0, strict: bool = False
) -> DatasetIndex:
    """Index of FSDD; files not named ``{digit}_{speaker}_{index}.wav`` are warned about
    and skipped (DataError with ``strict=True``). ``val_fraction=0`` keeps no validation split.
    """
    root = existing_dir(root, dataset="fsdd")
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    found, others = audio_files(folder, extensions=(".wav",))
    examples, skipped = [], list(others)
    for path in found:
        match = _NAME.match(path.name)
        if match is None:
            skipped.append(path)
            continue
        index = int(match["index"])
        examples.append(
            Example(
                path=str(path),
                labels=(int(match["digit"]),),
                split="test" if index in FSDD_TEST_INDEXES else "train",
                example_id=path.stem,
            )
        )
    report_skipped(
        skipped, dataset="fsdd", why="not named {digit}_{speaker}_{index}.wav", strict=strict
    )
    require_examples(examples, dataset="fsdd", where=folder)
    index = DatasetIndex(name="fsdd", class_names=FSDD_CLASSES, examples=tuple(examples))
    return index.with_validation(fraction=val_fraction, seed=seed) if val_fraction else index
