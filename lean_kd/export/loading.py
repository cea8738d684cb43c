"""What the export command reads: a Keras model file, its sample rate, a label file.

Until the Distiller defines its checkpoint format, a model to export is any Keras model file
(``.keras``, ``.h5`` or a SavedModel folder) that follows the model contract.
"""

from __future__ import annotations

from pathlib import Path

from lean_kd._keras import keras
from lean_kd.audio.features import LogMelSpectrogram
from lean_kd.errors import ModelError
from lean_kd.models import registry
from lean_kd.models.contract import model_spec


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a Keras model without its optimizer; ModelError for a missing or unreadable file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    registry.names()  # imports every model module, registering their custom layers
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a loadable Keras model ({first_line})") from None


def model_sample_rate(model: keras.Model) -> int:
    """The model's sample rate: its contract spec, else its log-mel layer's config."""
    try:
        return model_spec(model).sample_rate
    except ModelError:
        pass
    rates = sorted(
        {m.config.sample_rate for m in model.submodules if isinstance(m, LogMelSpectrogram)}
    )
    if len(rates) != 1:
        raise ModelError(
            f"Model {model.name!r}: cannot tell its sample rate "
            f"(log-mel layers at {rates or 'none'}); "
            "pass --sample-rate"
        )
    return rates[0]
