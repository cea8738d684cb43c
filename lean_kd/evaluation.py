"""``lean-kd evaluate``: clip-level metrics of a Keras checkpoint or a TFLite file, one code path.

Both formats go through the same steps, so their numbers differ only by the converted model's
own error: :meth:`AudioPipeline.windows` decodes the split and cuts each clip into windows of
the model's input length (1 s, 50 % hop by default); a scorer turns a window batch into
probabilities (Keras: softmax or sigmoid of the logits per the model spec, as
:func:`evaluate_keras` for a model in memory; TFLite: one invoke per window from reset variable
tensors, the scores the exported graph computes); :func:`lean_kd.models.inference.scored_windows`
averages each clip's windows and :func:`lean_kd_runtime.metrics.evaluate_scores` gives the metrics.

The report (:func:`evaluate_model`, JSON-ready): ``model`` (path), ``format`` ("keras" or
"tflite"), ``split``, ``dataset``, ``size_bytes`` (model file), ``sample_rate``,
``window_samples``, ``hop_samples``, ``num_clips``, ``num_windows``, ``skipped_files``
(unreadable audio left out), ``class_names``, every key of ``evaluate_scores`` (``map``,
``roc_auc``, ``d_prime``, ...) with ``accuracy`` None for multi-label data and ``per_class_ap``
as ``{class name: AP or None}``, and ``seconds`` (wall time).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lean_kd._keras import keras
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.index import DatasetIndex
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.errors import ConfigError, DataError, LeanKDError, ModelError
from lean_kd.export.metadata import read_metadata
from lean_kd.export.verify import classifier_io, invoke_windows, load_interpreter
from lean_kd.files import write_json
from lean_kd.models.contract import class_names, model_spec
from lean_kd.models.inference import ClipScores, keras_scorer, scored_windows
from lean_kd.models.registry import load_model
from lean_kd_runtime.metrics import evaluate_scores

logger = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5")
TFLITE_SUFFIX = ".tflite"
DEFAULT_SAMPLE_RATE = 16000  # assumed for a TFLite file without metadata and no AudioConfig


@dataclasses.dataclass(frozen=True)
class Scorer:
    """A loaded model reduced to what evaluation needs: its input and a batch scorer."""

    format: str  # "keras" or "tflite"
    sample_rate: int | None  # None: the model does not say (TFLite without metadata)
    num_samples: int  # window length the model takes
    num_classes: int
    labels: tuple[str, ...] | None  # class names the model carries (metadata, checkpoint)
    score: Callable[[np.ndarray], np.ndarray]  # [B, num_samples] -> probabilities [B, C]


@dataclasses.dataclass(frozen=True)
class SplitScores:
    """A model's clip scores on one split, and how they were obtained."""

    scorer: Scorer
    audio: AudioConfig  # sample rate and windows used
    scores: ClipScores  # clip and window scores, in the split's clip order
    labels: np.ndarray  # [clips, C] float32 targets
    skipped_files: tuple[str, ...]  # unreadable audio files left out (strict=False)


def evaluate_model(
    model: str | Path,
    index: DatasetIndex,
    *,
    split: str = "test",
    audio: AudioConfig | None = None,
    progress: bool = True,
    strict: bool = False,
) -> dict:
    """Metrics of the Keras checkpoint or TFLite file ``model`` on ``split`` of ``index``.

    Arguments as :func:`score_split`; returns the report of the module docstring.
    """
    start = time.perf_counter()
    path = Path(model)
    found = score_split(path, index, split=split, audio=audio, progress=progress, strict=strict)
    metrics = evaluate_scores(found.scores.clip_scores, found.labels, multi_label=index.multi_label)
    return {
        "model": str(path),
        "format": found.scorer.format,
        "split": split,
        "dataset": index.name,
        "size_bytes": path.stat().st_size,
        "sample_rate": found.audio.sample_rate,
        "window_samples": found.audio.window_samples,
        "hop_samples": found.audio.window_hop_samples,
        "num_clips": len(found.scores.clip_scores),
        "num_windows": len(found.scores.clip_index),
        "skipped_files": list(found.skipped_files),
        "class_names": list(index.class_names),
        **metrics,
        "accuracy": metrics.get("accuracy"),
        "per_class_ap": dict(zip(index.class_names, metrics["per_class_ap"])),
        "seconds": round(time.perf_counter() - start, 3),
    }


def evaluate_keras(model: keras.Model, pipeline: AudioPipeline, split: str) -> dict[str, Any]:
    """:func:`lean_kd_runtime.metrics.evaluate_scores` of a Keras ``model`` in memory on ``split``
    of ``pipeline``, with the windows and clip averaging of :func:`evaluate_model` (what
    training writes into ``metrics.json``)."""
    found, labels = scored_windows(keras_scorer(model), pipeline.windows(split))
    return evaluate_scores(found.clip_scores, labels, multi_label=pipeline.index.multi_label)


def score_split(
    model: str | Path,
    index: DatasetIndex,
    *,
    split: str = "test",
    audio: AudioConfig | None = None,
    progress: bool = True,
    strict: bool = False,
) -> SplitScores:
    """Clip scores of ``model`` (``.keras``, ``.h5`` or ``.tflite``) on ``split`` of ``index``.

    ``audio`` None takes the sample rate and window from the model (hop: half the window); a
    given one must agree with the model. ``strict`` fails on an unreadable audio file instead
    of skipping it. Raises ModelError / DataError / ConfigError for a missing or unreadable
    model, an unknown or empty split, or a model that does not fit the data.
    """
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (expected a .keras, .h5 or .tflite file)")
    if not index.split(split):
        raise DataError(f"Dataset {index.name}: split {split!r} has no examples")
    scorer = load_scorer(path)
    check_classes(scorer, index, path)
    audio = audio_config(scorer, audio, path)
    pipeline = AudioPipeline(
        index, audio=audio, features=None, pipeline=PipelineConfig(strict=strict)
    )
    batches = _with_progress(pipeline.windows(split), len(index.split(split)), progress, path)
    scores, labels = scored_windows(scorer.score, batches)
    if len(pipeline.broken):
        logger.warning("%s", pipeline.broken.summary())
    return SplitScores(scorer, audio, scores, labels, tuple(sorted(pipeline.broken.reasons)))


def write_evaluation(report: dict, path: str | Path) -> None:
    """Write ``report`` as JSON to ``path`` atomically (temporary file beside it, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the report's folder {path.parent} does not exist")
    write_json(path, report)


def load_scorer(path: Path) -> Scorer:
    """A :class:`Scorer` for a ``.tflite`` file, else for a Keras checkpoint."""
    if path.suffix.lower() == TFLITE_SUFFIX:
        return _tflite_scorer(path)
    if path.suffix.lower() in KERAS_SUFFIXES:
        return _keras_scorer(path)
    raise ModelError(
        f"{path}: unknown model format {path.suffix!r}; expected "
        f"{', '.join(KERAS_SUFFIXES + (TFLITE_SUFFIX,))}"
    )


def _keras_scorer(path: Path) -> Scorer:
    try:
        model = load_model(path)
    except LeanKDError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{path}: not a loadable Keras model ({first_line})") from None
    spec = model_spec(model)
    return Scorer(
        "keras",
        spec.sample_rate,
        spec.num_samples,
        spec.num_classes,
        class_names(model),
        keras_scorer(model),
    )


def _tflite_scorer(path: Path) -> Scorer:
    interpreter = load_interpreter(path)
    input_detail, output_detail = classifier_io(interpreter, source=str(path))
    try:
        metadata = read_metadata(path)
        sample_rate, labels = metadata["sample_rate"], tuple(metadata["labels"])
    except ModelError as exc:
        logger.info("No usable metadata (%s); the sample rate comes from the AudioConfig", exc)
        sample_rate, labels = None, None
    return Scorer(
        "tflite",
        sample_rate,
        int(input_detail["shape"][1]),
        int(output_detail["shape"][1]),
        labels,
        lambda windows: invoke_windows(interpreter, windows),
    )


def check_classes(scorer: Scorer, index: DatasetIndex, path: Path) -> None:
    """The model must score the dataset's classes: same count, and same order where named."""
    if scorer.num_classes != index.num_classes:
        raise DataError(
            f"{path} predicts {scorer.num_classes} classes but dataset {index.name} has "
            f"{index.num_classes} ({', '.join(index.class_names[:10])}"
            f"{', ...' if index.num_classes > 10 else ''}); evaluate it on the data it was "
            "trained for"
        )
    if scorer.labels is None or scorer.labels == index.class_names:
        return
    if sorted(scorer.labels) == sorted(index.class_names):
        raise DataError(
            f"{path}: the model's labels {list(scorer.labels)} are the dataset's classes in "
            f"another order ({list(index.class_names)}); the scores would be misattributed"
        )
    logger.warning(
        "%s: the model's labels %s differ from dataset %s's classes %s; scoring by position",
        path,
        list(scorer.labels),
        index.name,
        list(index.class_names),
    )


def audio_config(scorer: Scorer, audio: AudioConfig | None, path: Path) -> AudioConfig:
    """``audio`` checked against the model, or the model's own (window = input, hop = half)."""
    if audio is None:
        rate = scorer.sample_rate
        if rate is None:
            logger.warning(
                "%s has no sample rate in its metadata; assuming %d Hz", path, DEFAULT_SAMPLE_RATE
            )
            rate = DEFAULT_SAMPLE_RATE
        seconds = scorer.num_samples / rate
        return AudioConfig(
            sample_rate=rate,
            clip_seconds=seconds,
            window_seconds=seconds,
            window_hop_seconds=seconds / 2,
        )
    if scorer.sample_rate is not None and audio.sample_rate != scorer.sample_rate:
        raise ConfigError(
            f"Expected sample_rate {scorer.sample_rate} (the model's, {path}), "
            f"got {audio.sample_rate} in the audio config"
        )
    if audio.window_samples != scorer.num_samples:
        raise ConfigError(
            f"Expected window_seconds giving {scorer.num_samples} samples (the input of {path}), "
            f"got {audio.window_seconds} s = {audio.window_samples} samples"
        )
    return audio


def _with_progress(batches: Iterable, num_clips: int, enabled: bool, path: Path) -> Iterator:
    """``batches`` unchanged, with a progress bar over the split's clips."""
    with tqdm(
        total=num_clips, unit="clip", desc=f"evaluate {path.name}", disable=not enabled
    ) as bar:
        for inputs, labels in batches:
            yield inputs, labels
            bar.update(int(np.max(inputs["clip_index"])) + 1 - bar.n)


__all__ = [
    "Scorer",
    "SplitScores",
    "evaluate_keras",
    "evaluate_model",
    "load_scorer",
    "score_split",
    "write_evaluation",
]
