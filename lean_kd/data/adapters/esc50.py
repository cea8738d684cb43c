"""ESC-50 (Piczak, 2015): 2000 five-second clips, 50 classes, 5 cross-validation folds.

Layout: ``meta/esc50.csv`` (filename, fold, target, category, esc10, src_file, take) and the
clips under ``audio/``. Every example gets split ``train`` and its fold; recipes choose the test
fold with :meth:`DatasetIndex.with_folds`, as the official 5-fold protocol does.

The 50 category names are embedded in target order, so a subset of the dataset (a few
categories) still has the full class list with the official ids; each row's category is
checked against its target.
"""

from __future__ import annotations

from pathlib import Path

from lean_kd.data.adapters._common import checked_class_id, existing_dir, read_rows
from lean_kd.data.index import DatasetIndex, Example, resolve_path
from lean_kd.errors import DataError

ESC50_CLASSES = (
    # animals (targets 0-9)
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    # natural soundscapes and water (10-19)
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm",
    # human, non-speech (20-29)
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing",
    "brushing_teeth", "snoring", "drinking_sipping",
    # interior / domestic (30-39)
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening",
    "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    # exterior / urban (40-49)
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells",
    "airplane", "fireworks", "hand_saw",
)  # fmt: skip
# The ESC-10 subset (rows with esc10=True), in target order.
ESC10_TARGETS = (0, 1, 10, 11, 12, 20, 21, 38, 40, 41)
ESC50_FOLDS = range(1, 6)
_COLUMNS = ("filename", "fold", "target", "category")


def load_esc50(root: str | Path, *, esc10_only: bool = False) -> DatasetIndex:
    """Index of ESC-50 under ``root``; ``esc10_only`` keeps the ESC-10 rows with ids 0-9."""
    root = existing_dir(root, dataset="esc50")
    rows = read_rows(
        root / "meta" / "esc50.csv", required=_COLUMNS + (("esc10",) if esc10_only else ())
    )
    examples = []
    for row in rows:
        filename = row.text("filename")
        target = checked_class_id(
            row,
            id_column="target",
            name_column="category",
            class_names=ESC50_CLASSES,
            item=filename,
        )
        if esc10_only:
            if not row.boolean("esc10"):
                continue
            if target not in ESC10_TARGETS:
                raise DataError(
                    f"{row.where()}: {filename}: esc10 is True but {ESC50_CLASSES[target]!r} "
                    "is not an ESC-10 category"
                )
            target = ESC10_TARGETS.index(target)
        examples.append(
            Example(
                path=resolve_path(root / "audio", filename),
                labels=(target,),
                split="train",
                fold=row.integer("fold", valid=ESC50_FOLDS),
                example_id=Path(filename).stem,
                group=f"{row.text('fold')}-{row.text('src_file', default=filename)}",  # recording
            )
        )
    names = tuple(ESC50_CLASSES[t] for t in ESC10_TARGETS) if esc10_only else ESC50_CLASSES
    return DatasetIndex(
        name="esc10" if esc10_only else "esc50", class_names=names, examples=tuple(examples)
    )
