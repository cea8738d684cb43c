"""PNG figures with matplotlib's Agg backend (no display needed), written atomically.

Importing this module selects Agg; import ``plt`` from here, not from matplotlib.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

from lean_kd.files import atomic_path

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

logger = logging.getLogger(__name__)


def save_figure(figure: plt.Figure, out: Path) -> Path:
    """Write ``figure`` as PNG to ``out`` (parent folders created) atomically; close it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.tight_layout()
        with atomic_path(out) as tmp:
            figure.savefig(tmp, dpi=120)
    finally:
        plt.close(figure)
    logger.info("Wrote %s", out)
    return out
