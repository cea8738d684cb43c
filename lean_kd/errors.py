"""One exception hierarchy for the whole toolkit.

Every error a user can cause (bad file, bad value, bad recipe) is a :class:`LeanKDError`, so
command-line entry points can print a one-line message instead of a traceback. The subclasses
also derive from the matching builtin so callers that expect ``ValueError`` still work.
"""


class LeanKDError(Exception):
    """Base class of every error lean_kd raises on purpose."""


class ConfigError(LeanKDError, ValueError):
    """A parameter, option or recipe key is invalid (unknown key, out-of-range value)."""


class AudioInputError(LeanKDError, ValueError):
    """An audio file or waveform cannot be used (missing, empty, corrupt, NaN, rate 0...)."""


class DataError(LeanKDError, ValueError):
    """A dataset's layout or metadata is wrong (missing column, unknown label, empty split)."""


class ModelError(LeanKDError, ValueError):
    """A model cannot be built or weights cannot be loaded onto it."""


class ExportError(LeanKDError, RuntimeError):
    """A model cannot be converted, quantized or written as TFLite."""
