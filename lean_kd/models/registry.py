"""Model registry: ``build(name, num_classes, **options)`` for every lean_kd model.

A model module registers its models at import with one call per model::

    register("mobilenet_v2", build_mobilenet_v2, MobileNetV2Config, description="...")
    register("ast_tiny", build_ast, ASTConfig, description="...", fixed={"size": "tiny"})

A builder is ``builder(spec: ModelSpec, config, *, name: str) -> keras.Model`` and ``config``
is a frozen dataclass whose fields (all with defaults) are the model's options; ``fixed`` sets
fields that are not options under this name, extra keywords change the default of an option.
Every model also takes the options of :data:`SPEC_OPTIONS` and ``name``. Modules are imported
on first use from :data:`MODEL_MODULES`: a new module is one more line there.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lean_kd._keras import keras
from lean_kd.config import from_dict, to_dict
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.contract import ModelSpec, model_spec

MODEL_MODULES = (
    "lean_kd.models.cnn",
    "lean_kd.models.transformer",
    "lean_kd.models.mobilenet",
    "lean_kd.models.ensemble",
    "lean_kd.models.yamnet.teacher",
    "lean_kd.models.lean",
)
SPEC_OPTIONS = {"sample_rate": 16000, "clip_seconds": 1.0, "multi_label": False}
Builder = Callable[..., keras.Model]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it and which options it takes."""

    name: str
    builder: Builder
    config_cls: type
    fixed: Mapping[str, Any]
    overrides: Mapping[str, Any]
    description: str

    def defaults(self) -> dict[str, Any]:
        """Every option this model accepts, with its default value."""
        config = to_dict(self.config_cls(**self.fixed, **self.overrides))
        options = {k: v for k, v in config.items() if k not in self.fixed}
        return {**SPEC_OPTIONS, **options, "name": self.name}


_ENTRIES: dict[str, ModelEntry] = {}
_loaded = False


def register(
    name: str,
    builder: Builder,
    config_cls: type,
    *,
    description: str,
    fixed: Mapping[str, Any] | None = None,
    **defaults: Any,
) -> None:
    """Add a model to the registry (see the module docstring)."""
    new = ModelEntry(name, builder, config_cls, dict(fixed or {}), defaults, description)
    known = _ENTRIES.get(name)
    if known is not None and known != new:
        raise ConfigError(
            f"Model name {name!r} is already registered by {known.builder.__module__}"
        )
    new.defaults()  # a bad fixed or default value fails here, at registration
    _ENTRIES[name] = new


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True


def names() -> list[str]:
    """Registered model names, in registration order."""
    _load()
    return list(_ENTRIES)


def entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; unknown names are a ConfigError listing the valid ones."""
    _load()
    if name not in _ENTRIES:
        raise ConfigError(f"Unknown model {name!r}; expected one of {list(_ENTRIES)}")
    return _ENTRIES[name]


def build(name: str, num_classes: int, /, **options: Any) -> keras.Model:
    """Build registered model ``name`` for ``num_classes`` classes with ``options``."""
    model_entry = entry(name)
    valid = model_entry.defaults()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"Model {name!r}: unknown option(s) {unknown}; expected some of {sorted(valid)}"
        )
    spec = ModelSpec.from_seconds(
        num_classes, **{k: options.pop(k, v) for k, v in SPEC_OPTIONS.items()}
    )
    model_name = options.pop("name", name)
    values = {**model_entry.fixed, **model_entry.overrides, **options}
    config = from_dict(model_entry.config_cls, values, where=f"model {name!r}")
    return model_entry.builder(spec, config, name=model_name)


def build_from_recipe(section: Mapping[str, Any], num_classes: int) -> keras.Model:
    """Build from a recipe's model section ``{"name": ..., "options": {...}}``."""
    unknown = sorted(set(section) - {"name", "options"})
    if unknown or "name" not in section:
        raise ConfigError(
            f"Model recipe: expected keys 'name' and optionally 'options', got {sorted(section)}"
        )
    options = section.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"Model recipe {section['name']!r}: options must be a mapping, "
            f"got {type(options).__name__}"
        )
    return build(section["name"], num_classes, **options)


def describe(model: keras.Model) -> dict[str, Any]:
    """Size and cost of a contract model: parameters, MACs per second of audio, input, outputs."""
    from lean_kd.models.macs import count_macs

    spec = model_spec(model)
    macs = count_macs(model)
    trainable = sum(int(keras.backend.count_params(w)) for w in model.trainable_weights)
    return {
        "name": model.name,
        "parameters": int(model.count_params()),
        "trainable_parameters": trainable,
        "macs_per_example": macs,
        "macs_per_second": macs / spec.seconds,
        "input": spec.describe_input(),
        "num_classes": spec.num_classes,
        "activation": spec.activation,
        "outputs": {key: [None, *tensor.shape[1:]] for key, tensor in model.output.items()},
    }


def load_model(path: str | Path) -> keras.Model:
    """Load a model saved with ``model.save`` (``.keras`` or ``.h5``), lean_kd layers included.

    For ``.keras`` the weights are extracted to a temporary file first: tf_keras reads them in
    place inside the zip through small GFile reads (keras-team/keras#19793, fixed in Keras 3
    only), which took 35-50 s instead of ~4 s for EfficientNet-B0 on 2 cores. The model is
    returned uncompiled.
    """
    _load()  # registers every lean_kd custom layer
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist")
    try:
        if path.suffix != ".keras":
            return keras.models.load_model(path, compile=False)
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
            config = json.loads(archive.read("config.json"))
            config["compile_config"] = None
            model = keras.saving.deserialize_keras_object(config)
            model.load_weights(archive.extract("model.weights.h5", tmp))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"Cannot load model {path}: {first_line}") from None
    return model
