"""The one place that selects the Keras implementation.

tensorflow-model-optimization and tensorflow-hub only work with the Keras 2 API (tf_keras), so
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported
(:func:`lean_kd._environment.prepare_tensorflow_environment`). Every module that needs
TensorFlow or Keras imports them from here; a later move to Keras 3 touches only this file.
"""

from lean_kd._environment import prepare_tensorflow_environment

prepare_tensorflow_environment()

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
