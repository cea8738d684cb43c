"""Distillation losses, each a registered class that recipes select by name.

Every loss is called as ``loss(y_true, student, teacher)`` where ``student`` and ``teacher`` are
model output dicts (the project's model contract: at least ``logits`` [B, C] and ``embeddings``
[B, D]) and returns a scalar float32 tensor, the mean over the batch. ``loss.terms(...)`` returns
the same value split into named, already weighted parts (their sum is the loss) for Keras
metrics; ``loss.term_names`` lists those names before any call. Under a ``tf.distribute``
strategy the value is the per-replica mean; the caller scales by ``1 / num_replicas_in_sync``.

Recipes are data (``yaml.safe_load``); :func:`build_loss` turns them into losses::

    loss:                         # a list is a weighted sum
      - {name: hinton_kd, weight: 1.0, temperature: 4, lambda: 0.5}
      - {name: pkt, weight: 2.0}

Unknown loss names and unknown or out-of-range options raise :class:`ConfigError` naming the
valid choices.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from lean_kd._keras import tf
from lean_kd.errors import ConfigError, DataError, ModelError

Outputs = Mapping[str, tf.Tensor]
L = TypeVar("L", bound="Loss")

_REGISTRY: dict[str, type[Loss]] = {}
WEIGHTED_SUM = "weighted_sum"


class Loss(abc.ABC):
    """Base of every loss: ``__call__`` sums :meth:`terms`."""

    name: ClassVar[str]
    needs_teacher: ClassVar[bool]
    teacher_outputs: ClassVar[tuple[str, ...]] = ()  # what terms() reads of the teacher
    term_names: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    def terms(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None
    ) -> dict[str, tf.Tensor]:
        """Named, weighted scalar parts of the loss (their sum is the loss)."""

    def __call__(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None = None
    ) -> tf.Tensor:
        return tf.add_n(list(self.terms(y_true, student, teacher).values()))

    def to_spec(self) -> dict[str, Any]:
        """The recipe entry that :func:`build_loss` turns back into this loss."""
        options = {_yaml_key(f.name): getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"name": self.name, **options}


def register_loss(name: str) -> Callable[[type[L]], type[L]]:
    """Class decorator: make a frozen-dataclass loss selectable by ``name`` in recipes."""

    def register(cls: type[L]) -> type[L]:
        if name in _REGISTRY or name == WEIGHTED_SUM:
            raise ConfigError(f"A loss named {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def loss_names() -> list[str]:
    """Every name a recipe may use, ``weighted_sum`` included."""
    return sorted([*_REGISTRY, WEIGHTED_SUM])


def _soft_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def _binary_cross_entropy(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))


@dataclasses.dataclass(frozen=True)
class _Supervised(Loss):
    """A loss on the labels only: its single term is ``criterion(y, z_s)``."""

    needs_teacher: ClassVar[bool] = False
    criterion: ClassVar[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]

    def terms(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None
    ) -> dict[str, tf.Tensor]:
        logits = _tensor(student, "logits", "student")
        return {self.term_names[0]: self.criterion(_labels(y_true, logits), logits)}


@register_loss("ce")
@dataclasses.dataclass(frozen=True)
class CrossEntropy(_Supervised):
    """Softmax cross-entropy on the labels (single-label baseline without a teacher).

    ``CE = -mean_b sum_c y[b, c] * log softmax(z_s)[b, c]``; ``y`` may be soft (mixup).

    YAML: ``loss: {name: ce}``
    """

    term_names: ClassVar[tuple[str, ...]] = ("ce",)
    criterion = staticmethod(_soft_cross_entropy)


@register_loss("bce")
@dataclasses.dataclass(frozen=True)
class BinaryCrossEntropy(_Supervised):
    """Sigmoid binary cross-entropy on the labels (multi-label baseline without a teacher).

    ``BCE = -mean_{b,c} [y log sigmoid(z_s) + (1 - y) log(1 - sigmoid(z_s))]``, as
    ``keras.losses.BinaryCrossentropy(from_logits=True)``.

    YAML: ``loss: {name: bce}``
    """

    term_names: ClassVar[tuple[str, ...]] = ("bce",)
    criterion = staticmethod(_binary_cross_entropy)


@register_loss("hinton_kd")
@dataclasses.dataclass(frozen=True)
class HintonKD(Loss):
    """Knowledge distillation for single-label classification.

    ``L = w * CE(y, softmax(z_s)) + lambda * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``,
    KL summed over classes and averaged over the batch; ``y`` may be soft (mixup). ``w``
    (``label_weight``, default 1) at 0 leaves the labels out: the student only matches the
    teacher's function on the views it is shown ("function matching", Beyer et al. 2022), so
    with few clips it cannot memorise their labels beyond what the teacher says. The seed's
    ``CE(sigma(z_s, T), sigma(z_t, T))`` differs from the KL by the teacher's entropy, a constant
    for the student: same gradients, but the KL is 0 when the student matches the teacher. T^2
    keeps the soft-target gradients on the scale of the hard-label ones as T grows.

    Paper: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015.

    Terms: ``ce`` (= w * CE) and ``kd`` (= lambda * T^2 * KL).

    YAML: ``loss: {name: hinton_kd, temperature: 4.0, lambda: 1.0, label_weight: 1.0}``
    """

    temperature: float = 4.0
    lambda_: float = 1.0
    label_weight: float = 1.0

    needs_teacher: ClassVar[bool] = True
    teacher_outputs: ClassVar[tuple[str, ...]] = ("logits",)
    term_names: ClassVar[tuple[str, ...]] = ("ce", "kd")

    def __post_init__(self) -> None:
        _set_float(self, "temperature", low=0.0, low_open=True)
        _set_float(self, "lambda_", low=0.0)
        _set_float(self, "label_weight", low=0.0)

    def terms(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None
    ) -> dict[str, tf.Tensor]:
        z_s, z_t = _student_teacher_logits(student, teacher, self.name)
        t = self.temperature
        log_p_t = tf.nn.log_softmax(z_t / t)  # [B, C]
        kl = tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - tf.nn.log_softmax(z_s / t)), axis=-1)
        return {
            "ce": self.label_weight * _soft_cross_entropy(_labels(y_true, z_s), z_s),
            "kd": self.lambda_ * t * t * tf.reduce_mean(kl),
        }


@register_loss("multilabel_kd")
@dataclasses.dataclass(frozen=True)
class MultiLabelKD(Loss):
    """Knowledge distillation for multi-label tagging (independent sigmoids), CMKD style.

    ``L = (1 - lambda) * BCE(y, sigmoid(z_s)) + lambda * KL_bin(q, sigmoid(z_s / T))`` with the
    teacher targets ``q = sigmoid(z_t / T)``.

    ``KL_bin(q, p) = q log(q / p) + (1 - q) log((1 - q) / (1 - p))`` per class, averaged over
    classes and batch like the BCE. It is ``BCE(q, p)`` minus the teacher's binary entropy (a
    constant for the student): the same gradients as the BCE with teacher targets that CMKD uses,
    but 0 when the student matches the teacher. No T^2 factor (as CMKD); with the default T = 1
    the question does not arise.

    Paper: Gong, Khurana, Rouditchenko, Glass, "CMKD: CNN/Transformer-Based Cross-Model
    Knowledge Distillation for Audio Classification", 2022.

    Terms: ``bce`` (= (1 - lambda) * BCE) and ``kd`` (= lambda * KL_bin).

    YAML: ``loss: {name: multilabel_kd, temperature: 1.0, lambda: 0.5}``
    """

    temperature: float = 1.0
    lambda_: float = 0.5

    needs_teacher: ClassVar[bool] = True
    teacher_outputs: ClassVar[tuple[str, ...]] = ("logits",)
    term_names: ClassVar[tuple[str, ...]] = ("bce", "kd")

    def __post_init__(self) -> None:
        _set_float(self, "temperature", low=0.0, low_open=True)
        _set_float(self, "lambda_", low=0.0, high=1.0)

    def terms(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None
    ) -> dict[str, tf.Tensor]:
        z_s, z_t = _student_teacher_logits(student, teacher, self.name)
        t = self.temperature
        q_t = tf.sigmoid(z_t / t)  # [B, C], teacher targets
        kl = _binary_cross_entropy(q_t, z_s / t) - _binary_cross_entropy(q_t, z_t / t)
        return {
            "bce": (1.0 - self.lambda_) * _binary_cross_entropy(_labels(y_true, z_s), z_s),
            "kd": self.lambda_ * kl,
        }


@register_loss("pkt")
@dataclasses.dataclass(frozen=True)
class PKT(Loss):
    """Probabilistic knowledge transfer between embeddings (any D_s, D_t).

    Within the batch: ``e_i <- e_i / (max(||e_i||, eps) + eps)``;
    ``K_ij = (e_i . e_j + 1) / 2`` (cosine similarity mapped to [0, 1], self-similarity
    included); ``P_ij = K_ij / sum_j K_ij`` for the teacher (``P^t``) and the student (``P^s``);
    ``L = mean_i sum_j P^t_ij * log((P^t_ij + eps) / (P^s_ij + eps))``.
    That is KL(teacher || student) of each row, averaged over rows. The authors' reference code
    averages over all B^2 entries instead, i.e. returns this value / B. The loss is invariant to
    the scale of either embedding and 0 when the student's similarities equal the teacher's.

    Paper: Passalis, Tefas, "Learning Deep Representations with Probabilistic Knowledge
    Transfer", ECCV 2018 (reference code: github.com/passalis/probabilistic_kt).

    Terms: ``pkt``.

    YAML: ``loss: [{name: hinton_kd}, {name: pkt, weight: 2.0}]``
    """

    eps: float = 1e-7

    needs_teacher: ClassVar[bool] = True
    teacher_outputs: ClassVar[tuple[str, ...]] = ("embeddings",)
    term_names: ClassVar[tuple[str, ...]] = ("pkt",)

    def __post_init__(self) -> None:
        _set_float(self, "eps", low=0.0, low_open=True, high=1e-2)

    def terms(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None
    ) -> dict[str, tf.Tensor]:
        teacher = _require_teacher(teacher, self.name)
        e_s = _tensor(student, "embeddings", "student")
        e_t = _tensor(teacher, "embeddings", "teacher")
        if not e_s.shape[:1].is_compatible_with(e_t.shape[:1]):
            raise ModelError(
                f"pkt: student and teacher embeddings have different batch sizes "
                f"({e_s.shape[0]} vs {e_t.shape[0]})"
            )
        p_s, p_t = self._similarities(e_s), self._similarities(e_t)  # [B, B] each
        ratio = tf.math.log((p_t + self.eps) / (p_s + self.eps))
        return {"pkt": tf.reduce_mean(tf.reduce_sum(p_t * ratio, axis=-1))}

    def _similarities(self, embeddings: tf.Tensor) -> tf.Tensor:
        """Row-normalised [0, 1] cosine similarities [B, B] of embeddings [B, D]."""
        # ||e|| floored at eps: equal to the reference for any non-degenerate embedding, and
        # an all-zero row (e.g. after ReLU) gets a finite gradient instead of NaN.
        squares = tf.reduce_sum(tf.square(embeddings), axis=-1, keepdims=True)  # [B, 1]
        unit = embeddings / (tf.sqrt(tf.maximum(squares, self.eps**2)) + self.eps)
        kernel = (tf.matmul(unit, unit, transpose_b=True) + 1.0) / 2.0  # [B, B]
        return kernel / tf.reduce_sum(kernel, axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class WeightedSum(Loss):
    """``L = sum_i weight_i * L_i`` of any registered losses.

    Terms: every member's terms times its weight; a name used twice gets a suffix (``ce_1``).

    YAML: ``loss: [{name: hinton_kd, weight: 1.0, temperature: 4, lambda: 0.5},
    {name: pkt, weight: 2.0}]`` (or ``{name: weighted_sum, losses: [...]}``)
    """

    losses: tuple[Loss, ...]
    weights: tuple[float, ...]

    name: ClassVar[str] = WEIGHTED_SUM

    def __post_init__(self) -> None:
        if not self.losses or len(self.losses) != len(self.weights):
            raise ConfigError(
                f"weighted_sum needs one weight per loss and at least one loss, got "
                f"{len(self.losses)} losses and {len(self.weights)} weights"
            )

    @property
    def needs_teacher(self) -> bool:  # type: ignore[override]
        return any(loss.needs_teacher for loss in self.losses)

    @property
    def teacher_outputs(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(name for loss in self.losses for name in loss.teacher_outputs))

    @property
    def term_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(key for keys in self._member_keys() for key in keys)

    def terms(
        self, y_true: tf.Tensor, student: Outputs, teacher: Outputs | None
    ) -> dict[str, tf.Tensor]:
        result = {}
        for loss, weight, keys in zip(self.losses, self.weights, self._member_keys()):
            values = loss.terms(y_true, student, teacher)
            for key, value in zip(keys, values.values()):
                result[key] = weight * value
        return result

    def to_spec(self) -> dict[str, Any]:
        members = [
            {**loss.to_spec(), "weight": weight} for loss, weight in zip(self.losses, self.weights)
        ]
        return {"name": WEIGHTED_SUM, "losses": members}

    def _member_keys(self) -> list[list[str]]:
        """Unique term names per member, in order: the first use keeps the plain name."""
        used: set[str] = set()
        keys = []
        for loss in self.losses:
            member = []
            for name in loss.term_names:
                key, suffix = name, 0
                while key in used:
                    suffix += 1
                    key = f"{name}_{suffix}"
                used.add(key)
                member.append(key)
            keys.append(member)
        return keys


def build_loss(spec: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> Loss:
    """Loss from a recipe entry: a mapping (one loss) or a list (weighted sum).

    Each mapping has ``name``, an optional ``weight`` (default 1) and the loss's options (see
    each class's docstring; YAML ``lambda`` fills ``lambda_``).
    """
    if isinstance(spec, Mapping) and spec.get("name") == WEIGHTED_SUM:
        _reject_unknown(spec, {"name", "losses"}, WEIGHTED_SUM)
        return build_loss(spec.get("losses", []))
    if isinstance(spec, Mapping):
        loss, weight = _build_member(spec)
        return loss if weight == 1.0 else WeightedSum((loss,), (weight,))
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        members = [_build_member(item) for item in spec]
        return WeightedSum(tuple(m[0] for m in members), tuple(m[1] for m in members))
    raise ConfigError(f"Expected a loss as a mapping or a list of mappings, got {spec!r}")


def _build_member(spec: Any) -> tuple[Loss, float]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"Expected a loss entry as a mapping with a 'name', got {spec!r}")
    name = spec.get("name")
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ConfigError(f"Unknown loss {name!r}; valid losses: {', '.join(loss_names())}")
    cls = _REGISTRY[name]
    options = {_yaml_key(f.name) for f in dataclasses.fields(cls)}
    _reject_unknown(spec, {"name", "weight", *options}, name)
    weight = spec.get("weight", 1.0)
    is_number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
    if not (is_number and math.isfinite(weight) and weight >= 0):
        raise ConfigError(f"{name}: weight must be a finite number >= 0, got {weight!r}")
    kwargs = {_field_name(k): v for k, v in spec.items() if k not in ("name", "weight")}
    return cls(**kwargs), float(weight)


def _reject_unknown(spec: Mapping[str, Any], valid: set[str], name: str) -> None:
    unknown = sorted(set(spec) - valid)
    if unknown:
        raise ConfigError(
            f"Unknown option(s) {unknown} for loss {name!r}; valid options: {sorted(valid)}"
        )


def _yaml_key(field_name: str) -> str:
    """Dataclass field -> recipe key (``lambda_`` -> ``lambda``, a Python keyword)."""
    return field_name.rstrip("_")


def _field_name(yaml_key: str) -> str:
    return "lambda_" if yaml_key == "lambda" else yaml_key


def _set_float(
    loss: Loss, field: str, *, low: float, high: float = math.inf, low_open: bool = False
) -> None:
    """Validate a numeric option (YAML may give an int) and store it as float."""
    value = getattr(loss, field)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    in_range = is_number and (value > low if low_open else value >= low) and value <= high
    if not in_range:
        bracket = "(" if low_open else "["
        raise ConfigError(
            f"{loss.name}: {_yaml_key(field)} must be a number in {bracket}{low}, {high}], "
            f"got {value!r}"
        )
    object.__setattr__(loss, field, float(value))


def _tensor(outputs: Outputs, key: str, who: str) -> tf.Tensor:
    """``outputs[key]`` as float32 [B, N] (models may compute in float16)."""
    if not isinstance(outputs, Mapping) or key not in outputs:
        present = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
        raise ModelError(f"Expected the {who} outputs to be a dict with {key!r}, got {present}")
    value = tf.cast(outputs[key], tf.float32)
    if value.shape.rank != 2:
        raise ModelError(f"Expected {who} {key} of shape [B, N], got {value.shape}")
    return value


def _require_teacher(teacher: Outputs | None, loss_name: str) -> Outputs:
    if teacher is None:
        raise ConfigError(f"Loss {loss_name!r} needs teacher outputs, got None")
    return teacher


def _student_teacher_logits(
    student: Outputs, teacher: Outputs | None, loss_name: str
) -> tuple[tf.Tensor, tf.Tensor]:
    z_s = _tensor(student, "logits", "student")
    z_t = _tensor(_require_teacher(teacher, loss_name), "logits", "teacher")
    if not z_s.shape.is_compatible_with(z_t.shape):
        raise ModelError(
            f"{loss_name}: teacher logits {z_t.shape} do not match student logits {z_s.shape}; "
            "teacher and student must have the same classes"
        )
    return z_s, z_t


def _labels(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    labels = tf.cast(y_true, tf.float32)
    if not labels.shape.is_compatible_with(logits.shape):
        raise DataError(
            f"Expected labels of shape {logits.shape} like the logits, got {labels.shape}"
        )
    return labels
