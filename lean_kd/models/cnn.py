"""CNN teacher: EfficientNet-B0/B2 (keras.applications) on the log-mel, mean pooled (CMKD).

Graph: waveform -> log-mel ``[B, frames, 64]`` -> standardised image ``[B, frames, 64, C]``
(C = 1, or 3 copies for ImageNet weights) -> EfficientNet trunk ``[B, T', F', 1280]`` -> mean
over frequency (``sequence`` ``[B, T', 1280]``) -> mean over time (``embeddings``) -> dropout
-> Dense (``logits``).

Flat, not nested: ``keras.applications.EfficientNetB*`` is given our image tensor as
``input_tensor``, so it applies its layers directly to that tensor; we keep only its output
tensor and build our own functional model from the waveform, whose ``layers`` then list the
EfficientNet layers themselves (``stem_conv``, ``block1a_...``), as tfmot's QAT needs. The
application's own Model object is used only to load weights.

The application starts with ``Rescaling(1/255)`` and an RGB ``Normalization``. Our log-mel is
already standardised, so after building (and after loading ImageNet weights, which fill the
Normalization with ImageNet RGB statistics) the Normalization is set to undo the 1/255, making
both layers together an identity.

Initialisation (always logged): ``weights=None`` random; a file path: that ``*_notop.h5`` file;
``"imagenet"``: the Keras cache file (``~/.keras/models/efficientnetb0_notop.h5``, or under
``$KERAS_HOME``) if present, else random init with a warning (nothing is downloaded).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from lean_kd._keras import keras, tf
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    log_mel_image,
    pooled_outputs,
    waveform_input,
)
from lean_kd.models.registry import register

logger = logging.getLogger(__name__)

_VARIANTS = {f"b{i}": f"EfficientNetB{i}" for i in range(8)}
IMAGENET_URL = "https://storage.googleapis.com/keras-applications/"


@dataclasses.dataclass(frozen=True)
class EfficientNetConfig(FrontendOptions):
    """EfficientNet teacher options."""

    variant: str = "b0"  # b0 ... b7
    channels: int = 3  # log-mel copies fed as image channels (1 or 3; ImageNet weights need 3)
    weights: str | None = None  # None (random), "imagenet" (Keras cache only) or a *_notop.h5 path
    dropout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in _VARIANTS:
            raise ConfigError(
                f"Unknown EfficientNet variant {self.variant!r}; "
                f"expected one of {sorted(_VARIANTS)}"
            )
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.weights is not None and self.channels != 3:
            raise ConfigError(
                f"ImageNet weights ({self.weights!r}) need channels=3, got channels={self.channels}"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def weights_filename(self) -> str:
        return f"efficientnet{self.variant}_notop.h5"


def keras_cache_file(filename: str) -> Path:
    """Where ``keras.utils.get_file`` keeps an application weight file."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / filename


def resolve_weights(config: EfficientNetConfig) -> Path | None:
    """The weight file to load, or None for random init; logs which init is used."""
    if config.weights is None:
        logger.info("EfficientNet-%s: random init (weights=None)", config.variant.upper())
        return None
    if config.weights == "imagenet":
        path = keras_cache_file(config.weights_filename)
        if not path.is_file():
            logger.warning(
                "EfficientNet-%s: ImageNet weights not found at %s; using RANDOM init "
                "(download %s%s there, or pass its path as weights=, to use them)",
                config.variant.upper(),
                path,
                IMAGENET_URL,
                config.weights_filename,
            )
            return None
    else:
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise ModelError(
                f"EfficientNet weights file {path} does not exist; "
                f"expected a {config.weights_filename}"
            )
    logger.info("EfficientNet-%s: ImageNet init from %s", config.variant.upper(), path)
    return path


def efficientnet_trunk(image: tf.Tensor, config: EfficientNetConfig) -> tf.Tensor:
    """Apply EfficientNet's layers (no top): ``[B, T, F, C]`` -> ``[B, T/32, F/32, C']``."""
    application = getattr(keras.applications, _VARIANTS[config.variant])
    trunk = application(include_top=False, weights=None, input_tensor=image)
    path = resolve_weights(config)
    if path is not None:
        try:
            trunk.load_weights(str(path))
        except (ValueError, OSError) as exc:
            raise ModelError(
                f"Cannot load EfficientNet-{config.variant.upper()} weights from {path}: {exc}"
            ) from None
    _make_preprocessing_identity(trunk)
    return trunk.output


def _make_preprocessing_identity(trunk: keras.Model) -> None:
    """Set the RGB Normalization to ``x * 255`` so that ``Rescaling(1/255)`` + it = identity."""
    norms = [layer for layer in trunk.layers if isinstance(layer, keras.layers.Normalization)]
    if len(norms) != 1:
        raise ModelError(f"Expected one Normalization layer in {trunk.name}, found {len(norms)}")
    norm = norms[0]
    mean, variance, count = norm.get_weights()
    norm.set_weights([0 * mean, 0 * variance + (1 / 255.0) ** 2, count])
    norm.finalize_state()  # the layer caches mean/variance tensors


def build_efficientnet(
    spec: ModelSpec,
    config: EfficientNetConfig = EfficientNetConfig(),
    *,
    name: str = "efficientnet",
) -> keras.Model:
    """EfficientNet teacher following the model contract (see the module docstring)."""
    waveform = waveform_input(spec)
    image = log_mel_image(waveform, spec, config)  # [B, frames, mel, 1]
    if config.channels == 3:
        image = keras.layers.Concatenate(name="log_mel_rgb")(
            [image, image, image]
        )  # [B, frames, mel, 3]
    feature_map = efficientnet_trunk(image, config)  # [B, T', F', 1280]
    return keras.Model(
        waveform, pooled_outputs(feature_map, spec, dropout=config.dropout), name=name
    )


register(
    "efficientnet_b0",
    build_efficientnet,
    EfficientNetConfig,
    fixed={"variant": "b0"},
    description="CNN teacher: EfficientNet-B0 on log-mel, mean pooled (CMKD)",
)
register(
    "efficientnet_b2",
    build_efficientnet,
    EfficientNetConfig,
    fixed={"variant": "b2"},
    dropout=0.3,
    description="CNN teacher: EfficientNet-B2 on log-mel, mean pooled (CMKD)",
)
