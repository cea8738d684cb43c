"""One exception hierarchy for the whole toolkit.

Every error a user can cause (bad file, bad value, bad recipe) is a :class:`LeanKDError`, so
command-line entry points can print a one-line message instead of a traceback. The subclasses
also derive from the matching builtin so callers that expect ``ValueError`` still work.

The classes are those of the TensorFlow-free device runner (``lean_kd_runtime.errors``, which may
not import lean_kd): code shared with the runner raises the same classes in both packages.
"""

from lean_kd_runtime.errors import AudioInputError, ConfigError, DataError, DeviceError, ModelError
from lean_kd_runtime.errors import RunnerError as LeanKDError


class ExportError(LeanKDError, RuntimeError):
    """A model cannot be converted, quantized or written as TFLite."""


__all__ = [
    "AudioInputError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "ExportError",
    "LeanKDError",
    "ModelError",
]
