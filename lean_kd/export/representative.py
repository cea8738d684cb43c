"""Calibration waveforms for full-integer quantization, checked before the converter sees them.

The converter pulls the representative dataset lazily and reports a wrong shape deep inside
calibration, if at all; a wrong sample rate it cannot see. So the waveforms are taken and
checked here first: each must be ``[samples]`` or ``[1, samples]`` at the model's length, and
an item that carries its rate (``(waveform, sample_rate)`` or ``{"waveform", "sample_rate"}``)
must be at the model's rate. Items are yielded as dicts keyed by the signature input name:
the converter matches dict keys to inputs, where a list could silently feed the wrong input.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from lean_kd.audio.io import load_audio
from lean_kd.audio.windows import fix_length
from lean_kd.data.index import DatasetIndex
from lean_kd.errors import ExportError

logger = logging.getLogger(__name__)

INPUT_NAME = "waveform"  # the exported signature's input (see lean_kd.models.contract)


def calibration_set(
    representative: Iterable[Any], *, num_samples: int, sample_rate: int, count: int
) -> list[np.ndarray]:
    """The first ``count`` items of ``representative`` as checked float32 ``[1, num_samples]``.

    Raises ExportError naming the item for a wrong shape, rate, dtype or non-finite samples,
    and for an empty dataset.
    """
    if count <= 0:
        raise ExportError(f"num_calibration must be > 0, got {count}")
    taken = itertools.islice(representative, count)
    items = [
        _check_item(item, i, num_samples=num_samples, sample_rate=sample_rate)
        for i, item in enumerate(_bar(taken, count, "calibration audio", "clip"))
    ]
    if not items:
        raise ExportError(
            "The representative dataset is empty; full-integer quantization needs waveforms"
        )
    if len(items) < count:
        logger.info("Calibrating with %d waveforms (%d requested)", len(items), count)
    return items


def dataset_fn(windows: list[np.ndarray]) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """The converter's ``representative_dataset``: a fresh generator of input dicts per call."""

    def generate() -> Iterator[dict[str, np.ndarray]]:
        for window in _bar(windows, len(windows), "calibrate", "window"):
            yield {INPUT_NAME: window}

    return generate


def _bar(items: Iterable[Any], total: int, desc: str, unit: str) -> Iterable[Any]:
    """``items`` with a progress bar of ``total`` steps on a terminal (none in logs and tests)."""
    return tqdm(items, total=total, desc=desc, unit=unit, leave=False, disable=None)


def representative_from_index(
    index: DatasetIndex,
    *,
    sample_rate: int,
    num_samples: int,
    count: int,
    split: str = "train",
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, int]]:
    """``(waveform, sample_rate)`` centre crops of up to ``count`` clips of ``split``.

    Clips are drawn in a seeded random order that cycles through the classes, so a small
    calibration set still sees every class.
    """
    examples = index.split(split)
    if not examples:
        raise ExportError(
            f"Dataset {index.name}: split {split!r} has no examples to calibrate with"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(examples))
    rank_in_class: dict[int, int] = {}
    keyed = []
    for position in order:
        label = examples[position].labels[0]
        rank_in_class[label] = rank_in_class.get(label, 0) + 1
        keyed.append((rank_in_class[label], position))
    for _, position in sorted(keyed)[:count]:
        waveform = load_audio(examples[position].path, sample_rate=sample_rate)
        yield fix_length(waveform, length=num_samples, mode="center"), sample_rate


def _check_item(item: Any, position: int, *, num_samples: int, sample_rate: int) -> np.ndarray:
    where = f"Representative dataset item {position}"
    waveform, rate = _unpack(item, where)
    if rate is not None and int(rate) != sample_rate:
        raise ExportError(f"{where}: expected sample_rate {sample_rate} Hz, got {rate} Hz")
    array = np.asarray(waveform)
    if array.shape not in ((num_samples,), (1, num_samples)):
        seconds = num_samples / sample_rate
        raise ExportError(
            f"{where}: expected shape [{num_samples}] or [1, {num_samples}] ({seconds:g} s at "
            f"{sample_rate} Hz), got {list(array.shape)}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise ExportError(f"{where}: expected float samples in [-1, 1], got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ExportError(f"{where}: contains NaN or Inf samples")
    return array.reshape(1, num_samples).astype(np.float32)


def _unpack(item: Any, where: str) -> tuple[Any, Any]:
    """``(waveform, sample_rate or None)`` of an array, a pair or a mapping."""
    if isinstance(item, Mapping):
        if INPUT_NAME not in item:
            raise ExportError(f"{where}: expected a {INPUT_NAME!r} key, got keys {sorted(item)}")
        return item[INPUT_NAME], item.get("sample_rate")
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ExportError(
                f"{where}: expected a (waveform, sample_rate) pair, got {len(item)} elements"
            )
        return item
    return item, None
