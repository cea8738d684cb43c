"""The student's class biases refitted after distillation so that it agrees with its teacher.

Trained on mixtures (mixup), a student learns the class balance of mixed clips: the classes
that dominate a mixture, in the teacher's verdict on it, gain on the others. Scored on clean
clips, it then leans towards them where its teacher does not (on ESC-50 dev, a distilled LEAN
predicted some classes two or three times as often as its teacher on the test folds). Its
rankings within a class are unaffected, so the loss is in accuracy, not in mAP.

:func:`fit_output_bias` moves only the biases of the ``classifier`` Dense, one per class: it
minimises the cross-entropy between the teacher's and the student's window probabilities on
every window of the clean training clips (the windows evaluation uses), a convex problem in
the biases whatever the network. The student's other weights, its rankings within each
class, its size and its export are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from lean_kd._keras import keras
from lean_kd.data.index import DatasetIndex
from lean_kd.errors import ConfigError
from lean_kd.models.contract import SPEC_LAYER, model_spec
from lean_kd.probe.backbone import model_backbone
from lean_kd.probe.teacher import CLASSIFIER
from lean_kd.probe.windows import clip_key, clip_window_outputs

logger = logging.getLogger(__name__)

MAX_SHIFT = 20.0  # bound on a bias change, in logits: a class the teacher never names stays finite
PROBABILITY_FLOOR = 1e-7  # float32 probabilities back to logits without infinities


def fit_output_bias(
    students: Sequence[keras.Model],
    teacher: keras.Model,
    index: DatasetIndex,
    *,
    hop_fraction: float,
    splits: tuple[str, ...] = ("train",),
    strict: bool = False,
) -> list[np.ndarray]:
    """Shift each student's classifier biases (in place) so that its window probabilities on
    ``splits`` match ``teacher``'s as closely as biases can (the teacher is run once for all);
    returns the shifts ``[classes]`` in student order."""
    examples = [e for split in splits for e in index.split(split)]
    targets = _window_scores(teacher, examples, hop_fraction, strict)
    if not len(targets):
        raise ConfigError(f"No readable clip in the {'/'.join(splits)} split to fit biases on")
    shifts = []
    for student in students:
        classifier = logits_layer(student)
        multi_label = model_spec(student).multi_label
        scores = _window_scores(student, examples, hop_fraction, strict)
        shift = bias_shift(_logits(scores, multi_label), targets, multi_label)
        kernel, bias = classifier.get_weights()
        classifier.set_weights([kernel, (bias + shift).astype(bias.dtype)])
        logger.info(
            "Output biases fitted to the teacher on %d windows: mean |shift| %.3f, max %.3f",
            len(scores), float(np.abs(shift).mean()), float(np.abs(shift).max()),
        )  # fmt: skip
        shifts.append(shift)
    return shifts


def _window_scores(
    model: keras.Model, examples: list, hop_fraction: float, strict: bool
) -> np.ndarray:
    """``[windows, classes]`` probabilities of ``model`` on every window of ``examples``."""
    backbone = model_backbone(model, name=model.name, identity="in memory")  # not cached
    windows = clip_window_outputs(
        examples, backbone=backbone, hop_fraction=hop_fraction, strict=strict
    )
    found = [windows[clip_key(e)].scores for e in examples if clip_key(e) in windows]
    return np.concatenate(found) if found else np.zeros([0, 0], np.float32)


def bias_shift(logits: np.ndarray, targets: np.ndarray, multi_label: bool) -> np.ndarray:
    """The ``b`` minimising the mean cross-entropy of ``targets`` [N, K] (probabilities) under
    ``softmax(logits + b)`` (``sigmoid`` per class when ``multi_label``); convex in ``b``."""
    logits, targets = logits.astype(np.float64), targets.astype(np.float64)

    def loss_and_gradient(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = logits + b
        if multi_label:
            loss = np.logaddexp(0, z) - targets * z  # BCE(targets, sigmoid(z)) per class
            return float(loss.sum(1).mean()), (_sigmoid(z) - targets).mean(0)
        log_norm = np.logaddexp.reduce(z, axis=1, keepdims=True)
        loss = -(targets * (z - log_norm)).sum(1)
        return float(loss.mean()), (np.exp(z - log_norm) - targets).mean(0)

    bounds = [(-MAX_SHIFT, MAX_SHIFT)] * logits.shape[1]
    result = minimize(
        loss_and_gradient, np.zeros(logits.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds
    )
    shift = result.x
    return shift if multi_label else shift - shift.mean()  # softmax: only differences count


def logits_layer(model: keras.Model) -> keras.layers.Dense:
    """The Dense named ``classifier`` whose output is the model's logits."""
    try:
        layer = model.get_layer(CLASSIFIER)
        logits_input = model.get_layer(SPEC_LAYER).input
    except ValueError:
        layer = logits_input = None
    if (
        not isinstance(layer, keras.layers.Dense)
        or not layer.use_bias
        or logits_input is None
        or layer.output.ref() != logits_input.ref()
    ):
        raise ConfigError(
            f"training.output_bias 'teacher' needs a student whose logits come from a Dense "
            f"layer named {CLASSIFIER!r} with a bias; {model.name!r} has none"
        )
    return layer


def _logits(probabilities: np.ndarray, multi_label: bool) -> np.ndarray:
    """Logits up to a per-window constant (softmax) or exactly (sigmoid, within the floor)."""
    p = np.clip(probabilities.astype(np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(p) - np.log1p(-p) if multi_label else np.log(p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -z))
