"""Ensemble teacher: the mean of the logits of several contract models.

The members must share a :class:`~lean_kd.models.contract.ModelSpec` (sample rate, input
length, class count, single/multi-label). Outputs: ``logits`` = the mean of the members' logits
(an equal-weight logit average, as CMKD's ensembles); ``embeddings`` = the CONCATENATION of the
members' embeddings (their sizes usually differ, so they cannot be averaged; a student that
distils embeddings projects from this size); ``member_logits`` ``[B, members, C]`` for
specialist or per-teacher losses. There is no ``sequence``: members' time resolutions differ.

The members stay nested models inside the ensemble (they are separate networks that keep
their own layer names). An ensemble is a teacher: it is never quantization-aware trained,
which is what needs flat models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lean_kd._keras import keras
from lean_kd.errors import ConfigError, ModelError
from lean_kd.models.contract import ModelSpec, contract_outputs, model_spec, waveform_input
from lean_kd.models.registry import SPEC_OPTIONS, build, register


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """Members as registry names, or mappings ``{"model": name, **options}``."""

    members: tuple[Any, ...] = ("efficientnet_b0", "ast_tiny")

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        if len(self.members) < 2:
            raise ConfigError(f"An ensemble needs at least 2 members, got {len(self.members)}")
        for member in self.members:
            if not isinstance(member, str) and not (
                isinstance(member, Mapping) and "model" in member
            ):
                raise ConfigError(
                    "Expected an ensemble member as a model name or a mapping with 'model', "
                    f"got {member!r}"
                )


def ensemble(models: Sequence[keras.Model], *, name: str = "ensemble") -> keras.Model:
    """Combine already built contract models (see the module docstring)."""
    if len(models) < 2:
        raise ModelError(f"An ensemble needs at least 2 models, got {len(models)}")
    specs = [model_spec(m) for m in models]
    mismatched = [f"{m.name}: {s}" for m, s in zip(models, specs, strict=True) if s != specs[0]]
    if mismatched:
        raise ModelError(
            "Ensemble members must share sample rate, input length, classes and labelling; "
            f"expected {specs[0]} "
            f"(from {models[0].name}), got " + "; ".join(mismatched)
        )
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ModelError(
            f"Ensemble members need unique names, got {names}; build them with name=..."
        )
    spec = specs[0]
    waveform = waveform_input(spec)
    outputs = [m(waveform) for m in models]
    logits = [out["logits"] for out in outputs]
    stacked = keras.layers.Concatenate(axis=1, name="member_logits")(
        [
            keras.layers.Reshape((1, spec.num_classes), name=f"{n}_logits")(x)
            for n, x in zip(names, logits, strict=True)
        ]
    )  # [B, members, C]
    mean_logits = keras.layers.Average(name="mean_logits")(logits)  # [B, C]
    embeddings = keras.layers.Concatenate(name="embeddings")(
        [out["embeddings"] for out in outputs]
    )  # [B, sum D]
    return keras.Model(
        waveform,
        contract_outputs(spec, logits=mean_logits, embeddings=embeddings, member_logits=stacked),
        name=name,
    )


def build_ensemble(
    spec: ModelSpec, config: EnsembleConfig = EnsembleConfig(), *, name: str = "ensemble"
) -> keras.Model:
    """Build each member from the registry with ``spec``, then combine them."""
    members = []
    for index, member in enumerate(config.members):  # check every member before building any
        options = {"model": member} if isinstance(member, str) else dict(member)
        member_name = options.pop("model")
        fixed = sorted(set(options) & set(SPEC_OPTIONS))
        if fixed:
            raise ConfigError(
                f"Ensemble member {member_name!r} cannot set {fixed}; set them on the ensemble"
            )
        members.append((member_name, {"name": f"member{index}_{member_name}", **options}))
    shared = {
        "sample_rate": spec.sample_rate,
        "clip_seconds": spec.seconds,
        "multi_label": spec.multi_label,
    }
    models = [
        build(member_name, spec.num_classes, **shared, **options)
        for member_name, options in members
    ]
    return ensemble(models, name=name)


register(
    "ensemble",
    build_ensemble,
    EnsembleConfig,
    description="mean of the logits of registered models (members=[name | {model: name, ...}])",
)
