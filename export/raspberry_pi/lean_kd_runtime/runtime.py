"""Facts about the runtime and the host, the classifier wrapper and labels."""

from __future__ import annotations

import csv
import os
import platform
from pathlib import Path

import numpy as np

from .engines import cpu_flags, runtime_name
from .errors import ConfigError, ModelError


def is_emulated() -> bool:
    """True under qemu user-mode emulation: an ARM Python that sees an x86 host's /proc/cpuinfo."""
    if not platform.machine().lower().startswith(("aarch64", "arm")):
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "GenuineIntel" in cpuinfo or "AuthenticAMD" in cpuinfo


def device_name() -> str | None:
    """The board's name (``Raspberry Pi 4 Model B Rev 1.4``) from the device tree, if any."""
    try:
        return Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode() or None
    except OSError:
        return None


# CPU flags that decide which int8 kernels XNNPACK can use (dot products: VNNI on x86,
# asimddp / i8mm on ARM); /proc/cpuinfo spells them this way ("flags" on x86, "Features" on ARM).
INT8_CPU_FLAGS = (
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "avx512bw",
    "avx2",
    "asimddp",
    "i8mm",
    "sve2",
)


def cpu_int8_features() -> list[str] | None:
    """The :data:`INT8_CPU_FLAGS` this CPU has, or None where /proc/cpuinfo cannot be read."""
    flags = cpu_flags()
    return None if flags is None else [flag for flag in INT8_CPU_FLAGS if flag in flags]


def host_info(*, emulated: bool, engine: str = "interpreter") -> dict:
    """The ``host`` object of the report schema (its runtime names the engine)."""
    return {
        "cpu_int8_features": cpu_int8_features(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "runtime": _runtime_or_none(engine),
        "emulated": bool(emulated or is_emulated()),
        "device": device_name(),
    }


def _runtime_or_none(engine: str) -> str:
    try:
        return runtime_name(engine)
    except ModelError:
        return "none"


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a CSV with a ``display_name`` column.

    The CSV form reads YAMNet's ``yamnet_class_map.csv`` (index, mid, display_name).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: labels file not found")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or "display_name" not in rows[0]:
            raise ConfigError(f"{path}: a CSV labels file needs a display_name column")
        return [row["display_name"] for row in rows]
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"{path}: no class names (expected one per line)")
    return names


class Classifier:
    """Scores of one waveform window: picks the score output and averages any frame axis."""

    def __init__(self, model: object, *, num_classes: int | None, output_index: int | None) -> None:
        self.model = model  # a timing.LoadedModel
        outputs = model.engine.outputs
        self.output = _pick_output(
            outputs, model.path, num_classes=num_classes, output_index=output_index
        )
        self.num_classes = int(outputs[self.output]["shape"][-1])

    @property
    def window_samples(self) -> int:
        return int(self.model.input_shape[-1])

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """``[window_samples]`` float32 -> ``[num_classes]`` scores (mean over frames, if any)."""
        engine = self.model.engine
        # fused LSTM ops keep their state across invokes: every window starts fresh, as in Keras
        engine.reset()
        engine.write(window.reshape(self.model.input_shape))
        engine.invoke()
        scores = engine.read(self.output)  # [..., num_classes]
        return scores.reshape(-1, self.num_classes).mean(axis=0).astype(np.float32)


def _pick_output(
    outputs: list[dict], path: Path, *, num_classes: int | None, output_index: int | None
) -> int:
    """The position of the score output: the one asked for, the only one, or the only one with
    num_classes columns."""
    described = ", ".join(
        f"{i}: {o['name']} {[int(d) for d in o['shape']]}" for i, o in enumerate(outputs)
    )
    if output_index is not None:
        if not 0 <= output_index < len(outputs):
            raise ConfigError(
                f"--output-index {output_index} out of range; {path} has outputs {described}"
            )
        return output_index
    if len(outputs) == 1:
        return 0
    matching = [
        i
        for i, o in enumerate(outputs)
        if num_classes is not None and int(o["shape"][-1]) == num_classes
    ]
    if len(matching) != 1:
        raise ModelError(
            f"{path}: cannot tell which output holds the scores ({described}); "
            "pass --output-index or a labels file whose length matches one output"
        )
    return matching[0]
