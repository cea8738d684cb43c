"""Fit the probe on a dataset's training clips and measure it on the others.

:func:`run_probe` writes into ``out``:

- ``metrics.json``: the settings (backbone, features, C, fit splits, clip and feature counts)
  and, for every split the probe was not fitted on (val, test), the metrics of
  :func:`lean_kd_runtime.metrics.evaluate_scores` on its clips, as ``experiment.train`` reports them;
- ``probe.npz``: the fitted :class:`~lean_kd.probe.classifier.LinearProbe` (standardisation
  and weights, plus the settings as JSON).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd.config import ProbeSection
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.errors import DataError
from lean_kd.files import write_atomic
from lean_kd.probe.backbone import Backbone
from lean_kd.probe.classifier import LinearProbe
from lean_kd.probe.windows import (
    ClipWindows,
    clip_key,
    clip_window_outputs,
    pool_clips,
)
from lean_kd_runtime.metrics import evaluate_scores

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PROBE_FILE = "probe.npz"


def run_probe(
    index: DatasetIndex,
    out: str | Path,
    *,
    backbone: Backbone,
    settings: ProbeSection = ProbeSection(),
    cache_dir: str | Path | None = None,
    strict: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit on ``settings.fit_splits``, evaluate on val and test; returns metrics.json's content.

    ``cache_dir``: where window outputs are cached (:func:`clip_window_outputs`).
    """
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fit_examples = [e for split in settings.fit_splits for e in index.split(split)]
    eval_splits = [s for s in ("val", "test") if s not in settings.fit_splits and index.split(s)]
    if not fit_examples:
        raise DataError(
            f"Dataset {index.name}: no clips in {list(settings.fit_splits)} to fit the probe on"
        )
    wanted = fit_examples + [e for split in eval_splits for e in index.split(split)]
    windows = clip_window_outputs(
        wanted, backbone=backbone, cache_dir=cache_dir, strict=strict, progress=progress
    )
    features, labels = _pooled(index, fit_examples, windows, settings.features)
    probe = LinearProbe.fit(
        features, labels, multi_label=index.multi_label, C=settings.C, max_iter=settings.max_iter
    )
    report: dict[str, Any] = {
        "backbone": backbone.name,
        "backbone_identity": backbone.identity,
        "window_samples": backbone.window_samples,
        "sample_rate": backbone.sample_rate,
        "features": settings.features,
        "C": settings.C,
        "fit_splits": list(settings.fit_splits),
        "num_fit_clips": len(features),
        "feature_size": int(features.shape[1]),
        "class_names": list(index.class_names),
    }
    if not eval_splits:
        logger.warning("The probe was fitted on %s: no val or test clips left to measure it on",
                       list(settings.fit_splits))  # fmt: skip
    for split in eval_splits:
        x, y = _pooled(index, index.split(split), windows, settings.features)
        report[split] = evaluate_scores(probe.scores(x), y, multi_label=index.multi_label)
        logger.info("Probe on %s: %s", split, summary_line(report[split]))
    report["seconds"] = round(time.perf_counter() - start, 3)
    info = {key: report[key] for key in ("backbone", "features", "C", "class_names")}
    probe.save(out / PROBE_FILE, info=info)
    write_atomic(out / METRICS_FILE, json.dumps(report, indent=1, allow_nan=False))
    return report


def summary_line(metrics: dict[str, Any]) -> str:
    """``accuracy 0.600, mAP 0.712 (52 clips)`` (no accuracy for multi-label data)."""
    accuracy = metrics.get("accuracy")
    head = "" if accuracy is None else f"accuracy {accuracy:.3f}, "
    return f"{head}mAP {metrics['map']:.3f} ({metrics['num_examples']} clips)"


def _pooled(
    index: DatasetIndex, examples: list[Example], windows: dict[str, ClipWindows], features: str
) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, F], labels [N, C]) of the examples whose window outputs exist."""
    kept = [e for e in examples if clip_key(e) in windows]
    if not kept:
        raise DataError(f"Dataset {index.name}: none of {len(examples)} clips could be read")
    pooled = pool_clips([windows[clip_key(e)] for e in kept], features=features)
    return pooled, index.label_matrix(kept)


__all__ = ["METRICS_FILE", "PROBE_FILE", "run_probe", "summary_line"]
