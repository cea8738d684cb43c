"""``eval``: clip-level mAP and accuracy over a folder-per-class dataset or a CSV manifest.

Datasets are read in lean_kd's generic formats (see lean_kd/data/adapters/folder.py and
manifest.py): ``root/<class>/*.wav`` (or ``root/<split>/<class>/...``), or a ``manifest.csv``
with columns ``path`` (relative to the CSV), ``labels`` (``;``-separated) and optional
``split``, with an optional ``classes.txt`` beside it. Each clip is cut into the model's
windows (1 s, 50 % overlap, last one zero-padded) and its score is the mean of the window
scores, as in lean_kd's evaluation. The per-clip scores go into the JSON output, so that they
can be compared with ``lean-kd evaluate`` directly.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path

import numpy as np

from lean_kd_runtime.audio import read_clip, split_windows, window_sizes
from lean_kd_runtime.errors import DataError
from lean_kd_runtime.metrics import per_class_average_precision, top1_hit_rate

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
SPLITS = ("train", "val", "test")
MANIFEST_NAME, CLASSES_NAME = "manifest.csv", "classes.txt"


@dataclasses.dataclass(frozen=True)
class Clip:
    """One labelled audio file."""

    path: Path
    labels: tuple[str, ...]
    split: str = "train"


def list_clips(data: str | Path, *, split: str | None = None) -> tuple[list[Clip], list[str]]:
    """The clips of ``data`` (of one split, if given) and the dataset's class names in lean_kd's order."""
    data = Path(data).expanduser()
    if not data.exists():
        raise DataError(f"{data}: dataset folder or manifest not found")
    if data.is_file() or (data / MANIFEST_NAME).is_file():
        clips, classes = _manifest_clips(data if data.is_file() else data / MANIFEST_NAME)
    else:
        clips, classes = _folder_clips(data)
    if split is not None:
        clips = [c for c in clips if c.split == split]
    if not clips:
        raise DataError(f"{data}: no audio clips" + (f" in split {split!r}" if split else ""))
    return clips, classes


def _manifest_clips(manifest: Path) -> tuple[list[Clip], list[str]]:
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("path", "labels") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{manifest}: missing column(s) {missing}; found {reader.fieldnames}")
        clips = [
            _manifest_clip(row, manifest, reader.line_num) for row in reader if any(row.values())
        ]
    classes_file = manifest.parent / CLASSES_NAME
    if classes_file.is_file():
        classes = [
            n.strip()
            for n in classes_file.read_text(encoding="utf-8-sig").splitlines()
            if n.strip()
        ]
    else:
        classes = sorted({label for clip in clips for label in clip.labels})
    return clips, classes


def _manifest_clip(row: dict, manifest: Path, line: int) -> Clip:
    labels = tuple(n.strip() for n in (row.get("labels") or "").split(";") if n.strip())
    split = (row.get("split") or "").strip() or "train"
    if not labels or split not in SPLITS:
        raise DataError(f"{manifest}, line {line}: need labels and a split in {SPLITS}, got {row}")
    path = Path(row["path"].strip())
    return Clip(path if path.is_absolute() else manifest.parent / path, labels, split)


def _folder_clips(root: Path) -> tuple[list[Clip], list[str]]:
    top = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    split_dirs = (
        {d.name: d for d in top}
        if top and {d.name for d in top} <= set(SPLITS)
        else {"train": root}
    )
    clips = []
    for split, folder in split_dirs.items():
        for class_dir in sorted(
            d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
        ):
            files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
            clips += [Clip(p, (class_dir.name,), split) for p in files]
    return clips, sorted({c.labels[0] for c in clips})


def evaluate(
    classifier,
    clips: list[Clip],
    *,
    class_names: list[str],
    sample_rate: int,
    hop_seconds: float,
    strict: bool,
) -> dict:
    """Per-clip scores and clip-level metrics; the ``eval`` JSON."""
    if len(class_names) != classifier.num_classes:
        raise DataError(
            f"{len(class_names)} class names for a model with {classifier.num_classes} scores"
        )
    lookup = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({label for clip in clips for label in clip.labels} - set(lookup))
    if unknown:
        raise DataError(
            f"dataset label(s) {unknown[:10]} are not among the model's {len(class_names)} classes"
        )
    window, hop = window_sizes(
        window_samples=classifier.window_samples, hop_seconds=hop_seconds, sample_rate=sample_rate
    )
    targets = np.zeros((len(clips), len(class_names)), dtype=np.float32)
    scores = np.zeros_like(targets)
    counts = []
    for row, clip in enumerate(clips):
        windows = split_windows(
            read_clip(clip.path, sample_rate=sample_rate, strict=strict), window=window, hop=hop
        )
        scores[row] = np.mean([classifier(w) for w in windows], axis=0)  # [windows, C] -> [C]
        targets[row, [lookup[label] for label in clip.labels]] = 1.0
        counts.append(len(windows))
        if (row + 1) % 100 == 0:
            logger.info("%d / %d clips", row + 1, len(clips))
    per_class = [
        None if np.isnan(ap) else float(ap) for ap in per_class_average_precision(scores, targets)
    ]
    defined = [ap for ap in per_class if ap is not None]
    return {
        "classes": list(class_names),
        "sample_rate_hz": sample_rate,
        "window_samples": window,
        "hop_samples": hop,
        "clips": [
            {"path": str(c.path), "labels": list(c.labels), "windows": n, "scores": s.tolist()}
            for c, n, s in zip(clips, counts, scores)
        ],
        "metrics": {
            "clips": len(clips),
            "mAP": float(np.mean(defined)) if defined else None,
            "accuracy": top1_hit_rate(scores, targets),
            "average_precision": dict(zip(class_names, per_class)),
        },
    }
