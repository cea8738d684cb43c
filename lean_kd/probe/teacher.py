"""A teacher from a frozen backbone: a linear head fitted on every window of every clip.

With a handful of clips per class, fine-tuning YAMNet end to end overfits, and the clip-pooled
probe (the floor) learns from one example per clip. Fitting the head on every window instead
(each window labelled with its clip's label; the same windows as evaluation, ``audio.window_*``)
gives it about nine examples per 5 s clip, and averaging window scores per clip, as every
lean_kd evaluation does, gives back the clip decision. On esc50-dev (4-fold CV) this raised
accuracy from 0.56 (clip-pooled embeddings) to 0.64 (benchmarks/results/esc50_dev.md).

The result is an ordinary Keras contract model, the recipe's teacher with its classifier set
from the regression (standardisation folded into the weights), so caching, distillation and
export treat it as any other teacher. It needs a teacher whose logits are one Dense layer
named ``classifier`` on its ``embeddings`` (``yamnet_teacher`` without ``hidden_units``), or
an ensemble of such members: each member's head is fitted on its own features, so members that
see different features (e.g. ``yamnet_blocks``: YAMNet cut at another depth) disagree where
one view alone is unsure, and the ensemble averages their logits.
"""

from __future__ import annotations

import logging

import numpy as np

from lean_kd._keras import keras
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.errors import ConfigError
from lean_kd.models.contract import model_spec
from lean_kd.probe.backbone import model_backbone
from lean_kd.probe.classifier import LinearProbe
from lean_kd.probe.windows import clip_key, clip_window_outputs

logger = logging.getLogger(__name__)

CLASSIFIER = "classifier"


def fit_linear_head(
    model: keras.Model,
    index: DatasetIndex,
    *,
    hop_fraction: float,
    C: float,
    splits: tuple[str, ...] = ("train",),
    strict: bool = False,
    progress: bool = False,
) -> list[LinearProbe]:
    """Fit ``model``'s classifier on the window embeddings of ``splits``; ``model`` is changed
    in place and its backbone stays as it is. An ensemble gets one regression per member, each
    on its member's own embeddings (their mean logit is the ensemble's). Returns the regressions
    in member order."""
    examples = [e for split in splits for e in index.split(split)]
    return [
        _fit_member_head(
            member,
            classifier,
            examples,
            index,
            hop_fraction=hop_fraction,
            C=C,
            strict=strict,
            progress=progress,
        )  # fmt: skip
        for member, classifier in linear_head_members(model)
    ]


def _fit_member_head(
    model: keras.Model,
    classifier: keras.layers.Dense,
    examples: list[Example],
    index: DatasetIndex,
    *,
    hop_fraction: float,
    C: float,
    strict: bool,
    progress: bool,
) -> LinearProbe:
    """One model's classifier set from the regression on its own window embeddings."""
    backbone = model_backbone(model, name=model.name, identity="in memory")  # not cached
    windows = clip_window_outputs(
        examples, backbone=backbone, hop_fraction=hop_fraction,
        strict=strict, progress=progress,
    )  # fmt: skip
    rows = [(windows[clip_key(e)], e) for e in examples if clip_key(e) in windows]
    features = np.concatenate([w.embeddings for w, _ in rows])  # [windows, D]
    labels = np.concatenate(
        [np.repeat(index.label_matrix([e]), len(w.embeddings), 0) for w, e in rows]
    )
    probe = LinearProbe.fit(features, labels, multi_label=index.multi_label, C=C)
    kernel = (probe.coef / probe.scale).T  # [D, C]: standardisation folded in
    bias = probe.intercept - probe.coef @ (probe.mean / probe.scale)
    if not index.multi_label:
        bias = np.where(probe.trained, bias, -1e4)  # a class never seen never wins
    classifier.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    logger.info(
        "Linear head of %s fitted on %d windows of %d clips", model.name, len(features), len(rows)
    )
    return probe


def linear_head_members(model: keras.Model) -> list[tuple[keras.Model, keras.layers.Dense]]:
    """``(model, classifier)``, or for an ensemble (lean_kd.models.ensemble) one pair per member."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if nested and "member_logits" in _output_names(model):
        return [(member, _classifier_on_embeddings(member)) for member in nested]
    return [(model, _classifier_on_embeddings(model))]


def _output_names(model: keras.Model) -> set[str]:
    return set(model.output) if isinstance(model.output, dict) else set()


def _classifier_on_embeddings(model: keras.Model) -> keras.layers.Dense:
    try:
        classifier = model.get_layer(CLASSIFIER)
    except ValueError:
        classifier = None
    embeddings = model.output.get("embeddings") if isinstance(model.output, dict) else None
    if (
        not isinstance(classifier, keras.layers.Dense)
        or embeddings is None
        or classifier.input.ref() != embeddings.ref()
    ):
        raise ConfigError(
            f"teacher_training.method 'linear_head' needs a teacher whose logits are one Dense "
            f"layer named {CLASSIFIER!r} on its embeddings (yamnet_teacher without hidden_units "
            f"or dropout); {model.name!r} is not"
        )
    if classifier.units != model_spec(model).num_classes:
        raise ConfigError(
            f"{model.name!r}: classifier has {classifier.units} units, expected one per class"
        )
    return classifier
