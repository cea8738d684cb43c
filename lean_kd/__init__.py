"""lean_kd: knowledge distillation for on-device audio classification.

Importing the package is cheap: TensorFlow is loaded only by the modules that need it,
always through :mod:`lean_kd._keras` so that the Keras 2 API (tf_keras) is selected first.
"""

__version__ = "0.1.0"
