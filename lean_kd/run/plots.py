"""Figures of the run report: training curves, per-class AP bars, confusion-matrix heatmap.

Each function takes plain Python data (what :mod:`lean_kd.run.report` read from the run folder)
and writes one PNG through :func:`lean_kd.bench.plots.save_figure` (matplotlib's Agg backend,
temporary file then rename), so a figure is either complete or absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from lean_kd.errors import DataError
from lean_kd.reporting.figures import plt, save_figure

# Above this many classes the AP chart shows the worst classes only (a 200-class chart of
# grouped bars is unreadable); the title says so.
MAX_AP_CLASSES = 60
# Confusion matrices up to this size get their counts written in the cells.
MAX_ANNOTATED_CLASSES = 20


def training_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], out: Path) -> Path:
    """Loss (train dashed, validation solid) and validation mAP per epoch, a colour per model.

    ``histories`` maps a model label to its history.csv columns (``loss``, ``val_loss``,
    ``val_map``; missing columns are left out, NaN values leave gaps).
    """
    if not histories:
        raise DataError("training_curves needs the history of at least one model")
    figure, (loss_axes, map_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for color, (label, history) in zip(_colors(len(histories)), histories.items()):
        for key, axes, style in (
            ("loss", loss_axes, "--"),
            ("val_loss", loss_axes, "-"),
            ("val_map", map_axes, "-"),
        ):
            if history.get(key):
                epochs = np.arange(1, len(history[key]) + 1)
                name = None if key == "loss" else label  # one legend entry per model and axes
                axes.plot(epochs, history[key], style, color=color, marker=".", label=name)
    loss_axes.set_title("loss (dashed: training, solid: validation)", fontsize=9)
    loss_axes.set_ylabel("loss per example (the recipe's loss)")
    map_axes.set_title("validation mAP", fontsize=9)
    map_axes.set_ylabel("mAP (0 to 1)")
    for axes in (loss_axes, map_axes):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return save_figure(figure, out)


def per_class_ap_bars(
    per_class_ap: Mapping[str, Mapping[str, float | None]],
    class_names: Sequence[str],
    out: Path,
    *,
    max_classes: int = MAX_AP_CLASSES,
) -> Path:
    """Grouped horizontal bars: the AP of every class for each model (None: no positives).

    With more than ``max_classes`` classes only the lowest-AP classes of the last model are
    drawn (the classes a reader wants to look at), and the title says how many are shown.
    """
    if not per_class_ap or not class_names:
        raise DataError("per_class_ap_bars needs at least one model and one class")
    table = np.array(
        [[_float(aps.get(name)) for name in class_names] for aps in per_class_ap.values()]
    )  # [models, classes], NaN where undefined
    shown = np.arange(len(class_names))
    title = "Average precision per class"
    if len(class_names) > max_classes:
        reference = np.nan_to_num(table[-1], nan=np.inf)  # undefined AP sorts last
        shown = np.sort(np.argsort(reference, kind="stable")[:max_classes])
        title += (
            f": the {max_classes} lowest of {len(class_names)} classes by {list(per_class_ap)[-1]}"
        )
    bar = 0.8 / len(table)
    figure, axes = plt.subplots(figsize=(10, 1.5 + 0.12 * len(shown) * len(table)))
    rows = np.arange(len(shown))
    for i, (color, label) in enumerate(zip(_colors(len(table)), per_class_ap)):
        axes.barh(rows + i * bar, np.nan_to_num(table[i, shown]), bar, color=color, label=label)
    axes.set_yticks(rows + bar * (len(table) - 1) / 2)
    axes.set_yticklabels([class_names[c] for c in shown], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("average precision (0 to 1)")
    axes.set_title(title, fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside: no overlap
    return save_figure(figure, out)


def confusion_heatmap(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], out: Path, *, title: str
) -> Path:
    """Rows = true class, columns = predicted; colour = row-normalised rate, cells = counts."""
    counts = np.asarray(matrix, dtype=np.int64)
    num_classes = len(class_names)
    if counts.shape != (num_classes, num_classes):
        raise DataError(
            f"Expected a confusion matrix of shape [{num_classes}, {num_classes}] (one row and "
            f"column per class), got {list(counts.shape)}"
        )
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # [C, C]
    side = min(4 + 0.3 * num_classes, 20)
    figure, axes = plt.subplots(figsize=(side + 1, side))
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = np.arange(num_classes)
    fontsize = 8 if num_classes <= MAX_ANNOTATED_CLASSES else 5
    axes.set_xticks(ticks)
    axes.set_xticklabels(class_names, rotation=90, fontsize=fontsize)
    axes.set_yticks(ticks)
    axes.set_yticklabels(class_names, fontsize=fontsize)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title, fontsize=9)
    if num_classes <= MAX_ANNOTATED_CLASSES:
        for (row, col), count in np.ndenumerate(counts):
            if count:
                color = "white" if rates[row, col] > 0.5 else "black"
                axes.text(col, row, str(count), ha="center", va="center", fontsize=7, color=color)
    return save_figure(figure, out)


def _colors(count: int) -> list:
    return [plt.get_cmap("tab10")(i % 10) for i in range(count)]


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
