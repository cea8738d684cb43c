"""The audio facts of a .tflite file's metadata: sample rate, channels, label files.

The reader itself is ``lean_kd_runtime.tflite_metadata.audio_metadata`` (a few fields read with
:mod:`struct`, since neither TFLite runtime ships the metadata schema module); the Raspberry Pi
runner and lean_kd share it. This module adds the file handling and lean_kd's error.
"""

from __future__ import annotations

import struct
from pathlib import Path

from lean_kd.errors import ModelError
from lean_kd_runtime.tflite_metadata import audio_metadata


def read_audio_metadata(path: str | Path) -> dict:
    """``{"sample_rate_hz", "channels", "label_files"}`` of input 0 / output 0 of a file.

    Absent facts are None (``label_files``: []); a file that is not TFLite raises ModelError.
    """
    data = Path(path).read_bytes()
    try:
        return audio_metadata(data)
    except (struct.error, IndexError, UnicodeDecodeError, AttributeError) as exc:
        raise ModelError(f"{path}: unreadable TFLite metadata ({exc})") from None
