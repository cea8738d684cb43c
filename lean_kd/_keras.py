"""The one place that selects the Keras implementation.

tensorflow-model-optimization and tensorflow-hub only work with the Keras 2 API (tf_keras), so
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported. Every module that needs
TensorFlow or Keras imports them from here; a later move to Keras 3 touches only this file.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
