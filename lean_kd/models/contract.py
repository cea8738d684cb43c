"""The model contract: waveform in, a dict with ``logits`` and ``embeddings`` out.

Every lean_kd model (teacher or student) is a flat tf_keras functional model that

- takes one input named ``waveform``: ``[B, num_samples]`` float32 in [-1, 1] at the model's
  sample rate (the log-mel frontend is a layer inside the graph, so an exported TFLite file
  takes a waveform too);
- returns a dict with ``logits`` ``[B, num_classes]`` (raw: losses and metrics apply the
  sigmoid or softmax given by :attr:`ModelSpec.activation`), ``embeddings`` ``[B, D]`` (for
  relational distillation) and, where the model has a temporal embedding, ``sequence``
  ``[B, T, D']``.

The :class:`ModelSpec` travels inside the model as an identity layer named ``model_spec`` on
the logits path, so a reloaded model still knows its sample rate and activation
(:func:`model_spec`); the same layer carries the class names once training has set them
(:func:`set_class_names`, :func:`class_names`), so a checkpoint exports and evaluates
without a label file. Build a model with :func:`waveform_input` and :func:`contract_outputs`;
:func:`check_model` verifies the result.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.audio.features import YAMNET_PRESET, LogMelSpectrogram
from lean_kd.audio.io import valid_audio
from lean_kd.config import LogMelConfig, from_dict, to_dict
from lean_kd.errors import AudioInputError, ConfigError, ModelError

INPUT_NAME = "waveform"
SPEC_LAYER = "model_spec"
REQUIRED_OUTPUTS = ("logits", "embeddings")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model takes and predicts: the part of a model every other component relies on."""

    num_classes: int
    sample_rate: int = 16000
    num_samples: int = 16000
    multi_label: bool = False  # sigmoid per class (True) or softmax over classes (False)

    def __post_init__(self) -> None:
        for name in ("num_classes", "sample_rate", "num_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name} must be an integer > 0, got {value!r}")

    @classmethod
    def from_seconds(
        cls,
        num_classes: int,
        *,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        multi_label: bool = False,
    ) -> ModelSpec:
        """Spec for inputs of ``clip_seconds`` at ``sample_rate``."""
        if not clip_seconds > 0:
            raise ConfigError(f"clip_seconds must be > 0, got {clip_seconds}")
        return cls(num_classes, sample_rate, int(round(sample_rate * clip_seconds)), multi_label)

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def activation(self) -> str:
        """The output activation losses and metrics apply to the logits."""
        return "sigmoid" if self.multi_label else "softmax"

    def describe_input(self) -> str:
        rate = f"{self.sample_rate} Hz ({self.seconds:g} s)"
        return f"{INPUT_NAME} [B, {self.num_samples}] float32, {rate}"


@dataclasses.dataclass(frozen=True)
class FrontendOptions:
    """Log-mel frontend and its fixed standardisation, shared by the log-mel models.

    ``frontend=None`` means the YAMNet preset at the model's sample rate. The log-mel is
    mapped to ``(log_mel - mel_mean) / mel_std``; the defaults are typical of ESC-50 and FSDD
    with the YAMNet preset (mean -2.4..-3.1, std 2.7..2.8).
    """

    frontend: LogMelConfig | None = None
    mel_mean: float = -3.0
    mel_std: float = 3.0

    def __post_init__(self) -> None:
        if not self.mel_std > 0:
            raise ConfigError(f"mel_std must be > 0, got {self.mel_std}")


@keras.utils.register_keras_serializable(package="lean_kd")
class ModelSpecLayer(keras.layers.Layer):
    """Identity layer that keeps the model's :class:`ModelSpec` and class names in its config."""

    def __init__(
        self,
        spec: ModelSpec | Mapping[str, Any],
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec if isinstance(spec, ModelSpec) else from_dict(ModelSpec, spec)
        self.class_names = None if class_names is None else tuple(class_names)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.identity(inputs)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "spec": to_dict(self.spec)}
        if self.class_names is not None:
            config["class_names"] = list(self.class_names)
        return config


def waveform_input(spec: ModelSpec) -> tf.Tensor:
    """The model input: ``waveform`` ``[B, num_samples]`` float32."""
    return keras.Input(shape=(spec.num_samples,), dtype=tf.float32, name=INPUT_NAME)


def contract_outputs(
    spec: ModelSpec,
    *,
    logits: tf.Tensor,
    embeddings: tf.Tensor,
    sequence: tf.Tensor | None = None,
    **extra: tf.Tensor,
) -> dict[str, tf.Tensor]:
    """The outputs dict of a contract model; tags the logits with ``spec``."""
    outputs = {"logits": ModelSpecLayer(spec, name=SPEC_LAYER)(logits), "embeddings": embeddings}
    if sequence is not None:
        outputs["sequence"] = sequence
    return {**outputs, **extra}


def frontend_config(options: FrontendOptions, spec: ModelSpec) -> LogMelConfig:
    """The model's log-mel config: the given one or the YAMNet preset at the spec's rate."""
    config = options.frontend or dataclasses.replace(YAMNET_PRESET, sample_rate=spec.sample_rate)
    if config.sample_rate != spec.sample_rate:
        raise ConfigError(
            f"Expected the frontend sample_rate to equal the model sample_rate {spec.sample_rate}, "
            f"got {config.sample_rate}"
        )
    if config.num_frames(spec.num_samples) < 1:
        raise ConfigError(
            f"Expected at least {config.window_samples} samples for one log-mel frame, "
            f"got num_samples {spec.num_samples}"
        )
    return config


def log_mel_image(waveform: tf.Tensor, spec: ModelSpec, options: FrontendOptions) -> tf.Tensor:
    """Waveform ``[B, samples]`` -> standardised log-mel image ``[B, frames, mel_bins, 1]``."""
    config = frontend_config(options, spec)
    log_mel = LogMelSpectrogram(config, name="log_mel")(waveform)  # [B, frames, mel]
    scaled = keras.layers.Rescaling(
        1.0 / options.mel_std,
        offset=-options.mel_mean / options.mel_std,
        name="log_mel_standardize",
    )(log_mel)
    frames = config.num_frames(spec.num_samples)
    return keras.layers.Reshape((frames, config.mel_bins, 1), name="log_mel_image")(scaled)


def pooled_outputs(
    feature_map: tf.Tensor,
    spec: ModelSpec,
    *,
    dropout: float = 0.0,
    pool_tokens: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Feature map ``[B, T, F, C]`` -> contract outputs (mean pooling over time and frequency).

    ``sequence`` ``[B, T, C]`` is the mean over frequency, ``embeddings`` ``[B, C]`` its mean
    over time (= the mean over time and frequency, as CMKD's CNN) or, when given, the mean of
    ``pool_tokens`` ``[B, K, C]``; then dropout and one Dense give ``logits``.
    """
    _, frames, bins, channels = feature_map.shape
    x = keras.layers.AveragePooling2D(pool_size=(1, bins), name="frequency_mean")(
        feature_map
    )  # [B, T, 1, C]
    sequence = keras.layers.Reshape((frames, channels), name="sequence")(x)  # [B, T, C]
    pooled = sequence if pool_tokens is None else pool_tokens
    embeddings = keras.layers.GlobalAveragePooling1D(name="embeddings")(pooled)  # [B, C]
    x = keras.layers.Dropout(dropout, name="head_dropout")(embeddings) if dropout else embeddings
    logits = keras.layers.Dense(spec.num_classes, name="classifier")(x)  # [B, num_classes]
    return contract_outputs(spec, logits=logits, embeddings=embeddings, sequence=sequence)


def model_spec(model: keras.Model) -> ModelSpec:
    """The :class:`ModelSpec` stored in a contract model (also after save and reload)."""
    try:
        layer = model.get_layer(SPEC_LAYER)
    except ValueError:
        raise ModelError(
            f"Model {model.name!r} has no {SPEC_LAYER!r} layer; build it with "
            "lean_kd.models.contract.contract_outputs"
        ) from None
    return layer.spec


def set_class_names(model: keras.Model, names: Sequence[str]) -> None:
    """Store the names of the classes ``model`` predicts; they are saved with the model."""
    spec = model_spec(model)
    names = tuple(str(name) for name in names)
    if len(names) != spec.num_classes:
        raise ModelError(
            f"Model {model.name!r} predicts {spec.num_classes} classes, got {len(names)} class "
            f"names ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
        )
    model.get_layer(SPEC_LAYER).class_names = names


def class_names(model: keras.Model) -> tuple[str, ...] | None:
    """The class names stored in ``model`` (None: none set, e.g. a model not trained by lean_kd)."""
    return model.get_layer(SPEC_LAYER).class_names if _has_spec(model) else None


def _has_spec(model: keras.Model) -> bool:
    return any(layer.name == SPEC_LAYER for layer in model.layers)


# model -> names of its layers that start from pretrained weights. Only a freshly built model
# carries it (it is not saved): training reads it to give those layers their own learning rate.
_PRETRAINED_LAYERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def mark_pretrained(model: keras.Model, layer_names: Sequence[str]) -> None:
    """Record that ``layer_names`` of ``model`` were loaded from pretrained weights."""
    _PRETRAINED_LAYERS[model] = frozenset(layer_names)


def pretrained_variables(model: keras.Model) -> list[tf.Variable]:
    """The trainable variables of ``model``'s pretrained layers (see :func:`mark_pretrained`)."""
    names = _PRETRAINED_LAYERS.get(model, frozenset())
    return [v for layer in model.layers if layer.name in names for v in layer.trainable_variables]


def check_waveform(waveform: Any, spec: ModelSpec) -> np.ndarray:
    """Validate a waveform batch against ``spec``; returns it as float32 ``[B, num_samples]``."""
    array = np.asarray(waveform)
    expected = f"[batch, {spec.num_samples}] ({spec.seconds:g} s at {spec.sample_rate} Hz)"
    if array.ndim != 2:
        raise AudioInputError(
            f"Expected a waveform batch of rank 2 {expected}, "
            f"got rank {array.ndim} shape {array.shape}"
        )
    if array.shape[1] != spec.num_samples:
        raise AudioInputError(
            f"Expected a waveform batch {expected}, "
            f"got {array.shape[1]} samples (shape {array.shape})"
        )
    return valid_audio(array, source="waveform batch").astype(np.float32, copy=False)


def check_model(model: keras.Model, *, run: bool = True) -> ModelSpec:
    """Check that ``model`` follows the contract; ``run`` also checks a forward pass of zeros."""
    spec = model_spec(model)
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise ModelError(
            f"Model {model.name!r}: expected one input {INPUT_NAME!r}, got {len(model.inputs)}"
        )
    _expect_shape(model, "input", model.inputs[0].shape, [None, spec.num_samples])
    if model.input_names != [INPUT_NAME]:
        raise ModelError(
            f"Model {model.name!r}: expected the input to be named {INPUT_NAME!r}, "
            f"got {model.input_names}"
        )
    outputs = model.output
    if not isinstance(outputs, dict) or not set(REQUIRED_OUTPUTS) <= set(outputs):
        keys = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise ModelError(
            f"Model {model.name!r}: expected a dict of outputs with {list(REQUIRED_OUTPUTS)}, "
            f"got {keys}"
        )
    shapes = {key: outputs[key].shape for key in outputs}
    if run:
        result = model(np.zeros([2, spec.num_samples], np.float32), training=False)
        shapes = {key: tf.TensorShape([None, *value.shape[1:]]) for key, value in result.items()}
    _expect_shape(model, "logits", shapes["logits"], [None, spec.num_classes])
    _expect_rank(model, "embeddings", shapes["embeddings"], 2)
    if "sequence" in shapes:
        _expect_rank(model, "sequence", shapes["sequence"], 3)
    return spec


def _expect_shape(
    model: keras.Model, what: str, shape: tf.TensorShape, expected: list[int | None]
) -> None:
    if list(tf.TensorShape(shape).as_list()) != expected:
        raise ModelError(
            f"Model {model.name!r}: expected {what} shape {expected}, got {list(shape)}"
        )


def _expect_rank(model: keras.Model, what: str, shape: tf.TensorShape, rank: int) -> None:
    if len(shape) != rank:
        raise ModelError(
            f"Model {model.name!r}: expected {what} of rank {rank}, got shape {list(shape)}"
        )
