"""The Distiller: a Keras model that trains a student from labels and a teacher.

``Distiller`` is a tf_keras ``Model`` with its own ``train_step`` / ``test_step``, so ``fit``,
``evaluate``, callbacks and ``tf.distribute`` strategies work as usual. The teacher is either a
frozen model run online on the same batch, or absent, in which case the batch must carry the
teacher's outputs read from the teacher cache (``x["teacher_logits"]``,
``x["teacher_embeddings"]``). Every term of the loss is reported as a Keras metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lean_kd._keras import keras, tf
from lean_kd.distill.losses import Loss
from lean_kd.errors import ConfigError, ModelError

TEACHER_KEYS = {"teacher_logits": "logits", "teacher_embeddings": "embeddings"}


class Distiller(keras.Model):
    """Trains ``student`` with ``loss`` against ``teacher`` (online) or cached teacher outputs.

    Both models follow the lean_kd contract: waveform in, dict with ``logits`` and
    ``embeddings`` out. Compile with an optimizer and student metrics (they receive the
    student's logits); ``fit`` on batches of ``({"waveform": ..., [teacher_*]}, labels)``.
    """

    def __init__(
        self, student: keras.Model, loss: Loss, teacher: keras.Model | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if teacher is not None:
            check_compatible(teacher, student)
            teacher.trainable = False
        self.student, self.teacher, self.distill_loss = student, teacher, loss
        self.term_trackers = {name: keras.metrics.Mean(name=name) for name in loss.term_names}
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.pretrained_optimizer: keras.optimizers.Optimizer | None = None
        self._pretrained_refs: set = set()

    def compile(
        self,
        *args: Any,
        pretrained_optimizer: keras.optimizers.Optimizer | None = None,
        pretrained_variables: Sequence[tf.Variable] = (),
        **kwargs: Any,
    ) -> None:
        """Keras ``compile``; ``pretrained_optimizer`` (if given) updates
        ``pretrained_variables`` instead of ``optimizer``: their own learning rate."""
        super().compile(*args, **kwargs)
        self.pretrained_optimizer = pretrained_optimizer
        self._pretrained_refs = (
            {v.ref() for v in pretrained_variables} if pretrained_optimizer else set()
        )

    @property
    def metrics(self) -> list:
        return [self.total_tracker, *self.term_trackers.values(), *super().metrics]

    def call(self, inputs: Any, training: bool = False) -> Mapping[str, tf.Tensor]:
        return self.student(_waveform(inputs), training=training)

    def teacher_outputs(self, inputs: Any) -> Mapping[str, tf.Tensor] | None:
        """Cached outputs when the batch carries them, else the online teacher's, else None."""
        if isinstance(inputs, Mapping) and "teacher_logits" in inputs:
            return {out: inputs[key] for key, out in TEACHER_KEYS.items() if key in inputs}
        if self.teacher is not None:
            return self.teacher(_waveform(inputs), training=False)
        if self.distill_loss.needs_teacher:
            raise ConfigError(
                "The loss needs a teacher, but the Distiller has none and the batch carries no "
                "cached teacher outputs (teacher_logits)"
            )
        return None

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        inputs, labels = data[0], data[1]
        teacher = self.teacher_outputs(inputs)
        with tf.GradientTape() as tape:
            student = self.student(_waveform(inputs), training=True)
            terms = self.distill_loss.terms(labels, student, teacher)
            total = tf.add_n(list(terms.values()))
            # Gradients are summed over replicas: scale the per-replica mean loss.
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.student.trainable_variables
        pairs = list(zip(tape.gradient(scaled, variables), variables))
        pretrained = [pair for pair in pairs if pair[1].ref() in self._pretrained_refs]
        self.optimizer.apply_gradients(
            [p for p in pairs if p[1].ref() not in self._pretrained_refs]
        )
        if pretrained:
            self.pretrained_optimizer.apply_gradients(pretrained)
        return self._update_metrics(labels, student, terms, total)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        inputs, labels = data[0], data[1]
        student = self.student(_waveform(inputs), training=False)
        terms = self.distill_loss.terms(labels, student, self.teacher_outputs(inputs))
        return self._update_metrics(labels, student, terms, tf.add_n(list(terms.values())))

    def _update_metrics(self, labels, student, terms, total) -> dict[str, tf.Tensor]:
        self.total_tracker.update_state(total)
        for name, value in terms.items():
            self.term_trackers[name].update_state(value)
        self.compiled_metrics.update_state(labels, student["logits"])
        return {m.name: m.result() for m in self.metrics}


def _waveform(inputs: Any) -> tf.Tensor:
    return inputs["waveform"] if isinstance(inputs, Mapping) else inputs


def check_compatible(teacher: keras.Model, student: keras.Model) -> None:
    """Teacher and student must predict the same classes from the same kind of input."""
    t_classes = teacher.output["logits"].shape[-1]
    s_classes = student.output["logits"].shape[-1]
    if t_classes != s_classes:
        raise ModelError(
            f"Teacher {teacher.name!r} predicts {t_classes} classes but student "
            f"{student.name!r} predicts {s_classes}; expected the same class count"
        )
    t_samples, s_samples = teacher.input_shape[-1], student.input_shape[-1]
    if t_samples != s_samples:
        raise ModelError(
            f"Teacher {teacher.name!r} takes {t_samples} samples but student {student.name!r} "
            f"takes {s_samples}; expected the same input length"
        )
