"""UrbanSound8K (Salamon et al., 2014): 8732 clips of up to 4 s, 10 classes, 10 folds.

Layout: ``metadata/UrbanSound8K.csv`` (slice_file_name, fsID, start, end, salience, fold,
classID, class) and the clips at ``audio/fold{N}/{slice_file_name}``. Every example gets split
``train`` and its fold; the official protocol is 10-fold cross-validation over the predefined
folds (:meth:`DatasetIndex.with_folds`), never a random split.
"""

from __future__ import annotations

from pathlib import Path

from lean_kd.data.adapters._common import checked_class_id, existing_dir, read_rows
from lean_kd.data.index import DatasetIndex, Example, resolve_path

URBANSOUND8K_CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
URBANSOUND8K_FOLDS = range(1, 11)
_COLUMNS = ("slice_file_name", "fold", "classID", "class")


def load_urbansound8k(root: str | Path) -> DatasetIndex:
    """Index of UrbanSound8K under ``root``, class ids as in the ``classID`` column."""
    root = existing_dir(root, dataset="urbansound8k")
    examples = []
    for row in read_rows(root / "metadata" / "UrbanSound8K.csv", required=_COLUMNS):
        filename = row.text("slice_file_name")
        class_id = checked_class_id(
            row,
            id_column="classID",
            name_column="class",
            class_names=URBANSOUND8K_CLASSES,
            item=filename,
        )
        fold = row.integer("fold", valid=URBANSOUND8K_FOLDS)
        examples.append(
            Example(
                path=resolve_path(root / "audio" / f"fold{fold}", filename),
                labels=(class_id,),
                split="train",
                fold=fold,
                example_id=Path(filename).stem,
            )
        )
    return DatasetIndex(
        name="urbansound8k", class_names=URBANSOUND8K_CLASSES, examples=tuple(examples)
    )
