"""Keras' progress bar with a known length from the first epoch.

The training pipeline drops clips whose audio cannot be read (a ``filter`` in tf.data), so its
cardinality is unknown and Keras shows ``1/Unknown`` for the whole first epoch. The pipeline
knows how many batches a pass should give; :class:`StepsProgbar` starts from that figure, and
after an epoch that gave another count (skipped files: fewer batches), takes the one Keras saw.
"""

from __future__ import annotations

from lean_kd._keras import keras


class StepsProgbar(keras.callbacks.ProgbarLogger):
    """``ProgbarLogger(count_mode="steps")`` that expects ``steps`` batches per epoch."""

    def __init__(self, steps: int) -> None:
        super().__init__(count_mode="steps")
        self.expected_steps = int(steps)

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        if self.target is None:  # the dataset's cardinality is unknown to Keras
            self.target = self.expected_steps

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.seen and self.seen != self.target:  # skipped files: fewer batches than expected
            self.target = self.seen
            if self.progbar is not None:
                self.progbar.target = self.seen
        super().on_epoch_end(epoch, logs)
