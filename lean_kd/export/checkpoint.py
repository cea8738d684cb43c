"""Export a trained model with the class names and calibration audio of its dataset.

This is the one path from a checkpoint to a TFLite file that ``lean-kd export``, the
``export`` stage of ``lean-kd run`` and the benchmark scripts share, so that a file exported
by any of them is calibrated and labelled the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lean_kd._keras import keras
from lean_kd.data.index import DatasetIndex
from lean_kd.errors import ConfigError
from lean_kd.export.loading import load_keras_model, model_sample_rate
from lean_kd.export.representative import representative_from_index
from lean_kd.export.tflite import ExportResult, export_tflite, input_samples


def export_checkpoint(
    model: keras.Model | str | Path,
    *,
    quant: str,
    out: str | Path,
    index: DatasetIndex | None = None,
    labels: Sequence[str] | None = None,
    sample_rate: int | None = None,
    calibration_count: int = 200,
    **options: Any,
) -> ExportResult:
    """Export ``model`` (a Keras model, or a checkpoint file to load) in mode ``quant``.

    ``labels`` default to ``index``'s class names and ``sample_rate`` to the model's own.
    int8 and int16x8 calibrate on up to ``calibration_count`` centre crops of ``index``'s
    train split (read lazily: other modes read no audio). ``options`` go to
    :func:`lean_kd.export.tflite.export_tflite` (frontend, float ops, LSTM and DFT modes,
    ``multi_label``). Raises ConfigError when neither ``labels`` nor ``index`` is given.
    """
    if not isinstance(model, keras.Model):
        model = load_keras_model(model)
    sample_rate = sample_rate or model_sample_rate(model)
    if labels is None:
        if index is None:
            raise ConfigError("Exporting needs the class names: pass labels or a dataset index")
        labels = index.class_names
    representative = None
    if index is not None:
        representative = representative_from_index(
            index,
            sample_rate=sample_rate,
            num_samples=input_samples(model),
            count=calibration_count,
        )
    return export_tflite(
        model,
        quant=quant,
        out=out,
        labels=list(labels),
        sample_rate=sample_rate,
        representative=representative,
        num_calibration=calibration_count,
        **options,
    )
