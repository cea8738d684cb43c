"""Figures for benchmark reports: latency CDF, size/latency bars, mAP against size.

Each function takes benchmark reports (the dicts of :mod:`lean_kd.bench.schema`) or plain rows
and writes one PNG with matplotlib's Agg backend (no display needed, written atomically by
:func:`lean_kd.reporting.figures.save_figure`), so a script such as
``benchmarks/run_all.py`` can compare several models in a few calls. Models are labelled by
file name unless a ``names`` mapping (path -> label) is given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter

from lean_kd.errors import DataError
from lean_kd.reporting.figures import plt, save_figure
from lean_kd.reporting.markdown import MIB

logger = logging.getLogger(__name__)


def _label(model: Mapping, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(model["path"], Path(model["path"]).name)


def _entries(reports: Sequence[Mapping], threads: int) -> list[tuple[Mapping, Mapping]]:
    """(model, latency entry at ``threads``) of every model of every report, first seen wins."""
    found, seen = [], set()
    for report in reports:
        for model in report["models"]:
            entry = next((e for e in model["latency"] if e["threads"] == threads), None)
            if entry is not None and model["path"] not in seen:
                seen.add(model["path"])
                found.append((model, entry))
    if not found:
        raise DataError(f"No latency measured at {threads} thread(s) in the given reports")
    return found


def latency_cdf(
    reports: Sequence[Mapping],
    out: Path,
    *,
    threads: int = 1,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Empirical CDF of per-invoke latency (``samples_ms``) of each model at ``threads``."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for model, entry in _entries(reports, threads):
        if not entry["samples_ms"]:
            logger.warning("%s: no per-invoke samples; left out of the CDF", model["path"])
            continue
        samples = np.sort(np.asarray(entry["samples_ms"]))
        axes.step(
            samples,
            np.arange(1, samples.size + 1) / samples.size,
            where="post",
            label=_label(model, names),
        )
    axes.set_xlabel(f"latency per window (ms), {threads} thread(s)")
    axes.set_ylabel("fraction of invokes")
    axes.set_ylim(0, 1.01)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save_figure(figure, out)


def size_latency_bars(
    reports: Sequence[Mapping],
    out: Path,
    *,
    threads: int = 1,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Side-by-side bars: file size (MiB) and p50 latency (ms) of each model."""
    rows = _entries(reports, threads)
    labels = [_label(model, names) for model, _ in rows]
    figure, (size_axes, time_axes) = plt.subplots(1, 2, figsize=(9, 0.5 * len(rows) + 2))
    size_axes.barh(labels, [model["file_size_bytes"] / MIB for model, _ in rows], color="tab:blue")
    size_axes.set_xlabel("file size (MiB)")
    time_axes.barh(
        labels, [entry["p50_ms"] or entry["mean_ms"] for _, entry in rows], color="tab:orange"
    )
    time_axes.set_xlabel(f"p50 latency per window (ms), {threads} thread(s)")
    time_axes.set_yticklabels([])
    for axes in (size_axes, time_axes):
        axes.invert_yaxis()
        axes.grid(axis="x", alpha=0.3)
    return save_figure(figure, out)


MARKERS = "osD^vP*Xph"


def map_vs_size(rows: Sequence[tuple[str, int, float]], out: Path) -> Path:
    """Scatter of mAP against file size for ``(name, file_size_bytes, mAP)`` rows.

    Models are told apart by colour and marker in a legend beside the axes: name labels next to
    the points would print over each other where two models have the same size and mAP (a
    Keras checkpoint and its float32 TFLite file).
    """
    if not rows:
        raise DataError("map_vs_size needs at least one (name, size, mAP) row")
    figure, axes = plt.subplots(figsize=(8, 4))
    for i, (name, size, mean_ap) in enumerate(rows):
        marker = MARKERS[i % len(MARKERS)]
        axes.scatter(size / MIB, mean_ap, marker=marker, s=45, alpha=0.8, label=name)
    axes.set_xscale("log")
    axes.margins(0.08)  # markers at the edges stay whole
    axes.xaxis.set_major_formatter(FuncFormatter(_plain_number))
    axes.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    axes.set_xlabel("file size (MiB, log scale)")
    axes.set_ylabel("mAP (clip level)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    return save_figure(figure, out)


def _plain_number(value: float, _position: int | None = None) -> str:
    return f"{value:g}"


def _two_and_five(value: float, _position: int | None = None) -> str:
    """Minor log ticks: label 2 x and 5 x a power of ten only (never more than 3 per decade)."""
    leading = value / 10 ** np.floor(np.log10(value))
    return _plain_number(value) if round(leading, 6) in (2.0, 5.0) else ""
