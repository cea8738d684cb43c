"""Load pretrained YAMNet weights onto the Keras model, from any of the official files.

Three formats, recognised by content (not only by suffix):

- the official TFLite release (int8, folded batch norm): :mod:`lean_kd.models.yamnet.tflite_weights`;
- the official Keras weights ``yamnet.h5`` (or any HDF5 file a Keras model with YAMNet's layer
  names wrote): datasets are matched to layers by name;
- a TF-Hub handle or a local SavedModel directory, loaded with tensorflow-hub: variables are
  matched to layers by name.

Every layer must get exactly its weights with the right shapes before any is assigned, so a
wrong or incomplete file raises :class:`ModelError` and leaves the model untouched.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import h5py
import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.errors import ModelError
from lean_kd.models.yamnet.narrow import narrow_weights
from lean_kd.models.yamnet.network import (
    HEAD_NAME,
    YAMNetConfig,
    build_yamnet,
    conv_layer_names,
    weighted_layers,
)
from lean_kd.models.yamnet.pretrained import resolve_yamnet_weights
from lean_kd.models.yamnet.tflite_weights import Weights, read_tflite_weights

logger = logging.getLogger(__name__)

HEAD_ALIASES = (HEAD_NAME, "dense")  # the official Keras model's head is an unnamed Dense
_SUFFIX = re.compile(r":\d+$")


def pretrained_yamnet(
    config: YAMNetConfig | None = None, *, weights: str | Path | None = None
) -> keras.Model:
    """:func:`build_yamnet` with the official AudioSet weights loaded (see :func:`load_yamnet_weights`)."""
    config = config or YAMNetConfig()
    model = build_yamnet(config)
    load_yamnet_weights(model, weights)
    return model


def load_yamnet_weights(model: keras.Model, source: str | Path | None = None) -> str:
    """Assign pretrained weights to every YAMNet layer of ``model``; returns the source used.

    ``source``: a ``.tflite`` or ``.h5`` file, a SavedModel directory or a TF-Hub handle;
    ``None`` resolves $LEAN_KD_YAMNET, the user cache, then a checked download.
    """
    source = resolve_yamnet_weights(source)
    layers = weighted_layers(model)
    if not layers:
        raise ModelError(
            f"Model {model.name!r} has no YAMNet layers (layer1/conv ... logits) to load weights into"
        )
    kind = weights_format(source)
    if kind == "tflite":
        weights = read_tflite_weights(source)
    elif kind == "h5":
        weights = match_named_weights(layers, _read_h5(Path(source)))
    else:
        weights = match_named_weights(layers, _read_saved_model(source))
    widths = {name: layer.weights[0].shape[-1] for name, layer in layers.items()}
    first = conv_layer_names()[0][0]
    if first in weights and widths.get(first, 0) < weights[first][0].shape[-1]:
        weights = narrow_weights(weights, widths)  # a width multiplier below 1
        logger.info("Narrowed the YAMNet weights to the model's width (strongest channels)")
    assign_weights(model, weights, source=source)
    logger.info("Loaded YAMNet weights for %d layers from %s", len(layers), source)
    return source


def weights_format(source: str) -> str:
    """``'tflite'``, ``'h5'`` or ``'saved_model'`` for a path or handle (by content where possible)."""
    if "://" in source:
        return "saved_model"
    path = Path(source)
    if path.is_dir():
        return "saved_model"
    if not path.is_file():
        raise ModelError(f"YAMNet weights {path} do not exist")
    with path.open("rb") as stream:
        head = stream.read(8)
    if head[4:8] == b"TFL3":
        return "tflite"
    if head == b"\x89HDF\r\n\x1a\n":
        return "h5"
    raise ModelError(f"{path}: not a TFLite file, an HDF5 weights file or a SavedModel directory")


def assign_weights(model: keras.Model, weights: Weights, *, source: str) -> None:
    """Set every YAMNet layer of ``model`` from ``weights`` (by layer name), all or nothing."""
    layers = weighted_layers(model)
    missing = sorted(set(layers) - set(weights))
    if missing:
        raise ModelError(
            f"{source}: no weights for {len(missing)} of {len(layers)} layers: {', '.join(missing[:6])}"
        )
    pairs = []
    for name, layer in layers.items():
        expected = [tuple(w.shape) for w in layer.weights]
        actual = [tuple(np.shape(a)) for a in weights[name]]
        if expected != actual:
            raise ModelError(
                f"{source}: layer {name} expects weight shapes {expected}, the file has {actual} "
                "(pretrained YAMNet needs width_multiplier=1.0 and 521 classes)"
            )
        pairs += zip(layer.weights, weights[name])
    unused = sorted(set(weights) - set(layers))
    if unused:
        logger.debug("%s: not loaded (the model has no such layers): %s", source, unused)
    keras.backend.batch_set_value(pairs)


def match_named_weights(
    layers: dict[str, keras.layers.Layer], named: list[tuple[str, np.ndarray]]
) -> Weights:
    """Pick each layer's weights from ``[('.../<layer>/<weight>:0', array), ...]`` by name suffix.

    The head also matches under its official name ``dense``. Layers with no match are left out
    (``assign_weights`` reports them); a name that matches twice is an error.
    """
    by_suffix: dict[str, list[int]] = {}
    for index, (full, _) in enumerate(named):
        parts = _SUFFIX.sub("", full).split("/")
        for start in range(len(parts)):
            by_suffix.setdefault("/".join(parts[start:]), []).append(index)
    weights: Weights = {}
    for name, layer in layers.items():
        aliases = HEAD_ALIASES if name == HEAD_NAME else (name,)
        for alias in aliases:
            keys = [f"{alias}/{_SUFFIX.sub('', w.name).rsplit('/', 1)[-1]}" for w in layer.weights]
            found = [by_suffix.get(key, []) for key in keys]
            if all(found):
                ambiguous = [[named[i][0] for i in hits] for hits in found if len(hits) > 1]
                if ambiguous:
                    raise ModelError(f"Weights for layer {name} are ambiguous: {ambiguous[0]}")
                weights[name] = [named[hits[0]][1] for hits in found]
                break
    return weights


def _read_h5(path: Path) -> list[tuple[str, np.ndarray]]:
    """Every dataset of a Keras HDF5 file by its full path (layer names nest as groups).

    A whole-model file keeps the weights under ``model_weights`` (optimizer state elsewhere).
    """
    named: list[tuple[str, np.ndarray]] = []

    def visit(name: str, item: h5py.HLObject) -> None:
        if isinstance(item, h5py.Dataset):
            named.append((name, item[()]))

    try:
        with h5py.File(path, "r") as h5:
            root = h5.get("model_weights", h5)
            root.visititems(visit)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable HDF5 weights file ({exc})") from None
    return named


def _read_saved_model(handle: str) -> list[tuple[str, np.ndarray]]:
    """The model variables of a SavedModel (directory or TF-Hub handle) by name.

    Uses the object's ``variables`` (Keras and TF-Hub models list their weights there, without
    optimizer slots); other objects are searched for every variable they hold.
    """
    import tensorflow_hub as hub  # after lean_kd._keras, so that hub picks tf_keras

    try:
        restored = hub.load(handle)
    except (OSError, ValueError, tf.errors.OpError) as exc:
        raise ModelError(f"{handle}: not a loadable SavedModel or TF-Hub handle ({exc})") from None
    variables = getattr(restored, "variables", None)
    if variables is None:
        variables = [
            t for t in tf.train.TrackableView(restored).descendants() if isinstance(t, tf.Variable)
        ]
    if not variables:
        raise ModelError(f"{handle}: the SavedModel holds no variables")
    return [(v.name, v.numpy()) for v in variables]
