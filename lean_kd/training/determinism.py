"""One switch for reproducible runs: seeds everywhere, deterministic TF ops and tf.data.

Training on CPU is otherwise not repeatable run to run with the same seed: parallel tf.data maps
may hand out elements in completion order and some kernels reduce in a thread-dependent order.
With ``pipeline.deterministic`` on (the default) two runs of the same recipe and seed on one
machine give identical weights; another CPU or TensorFlow build still gives other floats.
"""

from __future__ import annotations

import logging

from lean_kd._keras import keras, tf

logger = logging.getLogger(__name__)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow with ``seed``; with ``deterministic``, also make every
    TensorFlow op deterministic (``tf.config.experimental.enable_op_determinism``).

    Op determinism is process-wide: switching it off again matters for processes that run
    several recipes (tests, benchmarks) with different settings.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    elif _op_determinism_enabled():
        from tensorflow.python.framework import config  # no public disable_op_determinism

        config.disable_op_determinism()
        logger.debug("op determinism switched off")


def _op_determinism_enabled() -> bool:
    from tensorflow.python.framework import config

    return bool(config.is_op_determinism_enabled())
