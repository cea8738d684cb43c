"""The runner's errors: one line for the user, exit code 2, never a traceback.

lean_kd uses these very classes (lean_kd/errors.py re-exports them, ``RunnerError`` as
``LeanKDError``), so code shared by both packages raises the same errors in each.
"""


class RunnerError(Exception):
    """Base class of every error the runner raises on purpose."""


class ConfigError(RunnerError, ValueError):
    """A parameter, option or recipe key is invalid (unknown key, out-of-range value)."""


class AudioInputError(RunnerError, ValueError):
    """An audio file or waveform cannot be used (missing, empty, corrupt, NaN, wrong rate under strict)."""


class DataError(RunnerError, ValueError):
    """A dataset folder or manifest is malformed (missing column, unknown label, no files)."""


class ModelError(RunnerError, ValueError):
    """A model cannot be built or loaded, or does not take a float32 waveform."""


class DeviceError(RunnerError, RuntimeError):
    """The microphone (or the sounddevice package) is not available."""
