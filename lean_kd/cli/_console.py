"""What a ``lean-kd`` command shows: results, progress bars and warnings; the rest goes to a log.

Without ``-v`` the console shows lean_kd's warnings and errors only; its INFO records go to
``lean_kd.log`` in the run folder of the commands that have one (train, distill, cache-teacher,
run, demo). With ``-v`` everything, TensorFlow's start-up lines included, reaches the console.
"""

from __future__ import annotations

import logging
from pathlib import Path

LOG_FILE = "lean_kd.log"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_console(*, verbose: bool) -> None:
    """Console logging: warnings (default) or lean_kd's debug and everyone's info (``-v``)."""
    handler = logging.StreamHandler()  # sys.stderr at the time of each write
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root = logging.getLogger()
    _replace_handler(root, handler, "lean_kd.console")
    root.setLevel(logging.INFO)
    logging.getLogger("lean_kd").setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in ("tensorflow", "absl"):  # tf.distribute logs every all-reduce at INFO
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)


def log_to_run_folder(folder: Path) -> Path:
    """Append lean_kd's INFO records to ``folder/lean_kd.log`` (created with the folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.setLevel(logging.INFO)
    _replace_handler(logging.getLogger("lean_kd"), handler, "lean_kd.run_folder")
    return path


def _replace_handler(logger: logging.Logger, handler: logging.Handler, name: str) -> None:
    """Add ``handler`` under ``name``, closing the one a previous command in this process added."""
    for old in [h for h in logger.handlers if h.get_name() == name]:
        logger.removeHandler(old)
        old.close()
    handler.set_name(name)
    logger.addHandler(handler)
