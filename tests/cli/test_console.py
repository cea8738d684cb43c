"""What a user sees on the console: no TensorFlow start-up lines, lean_kd's log in the run folder."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from lean_kd.cli._console import LOG_FILE, configure_console, log_to_run_folder

HANDLER_NAMES = ("lean_kd.console", "lean_kd.run_folder")


def test_a_tensorflow_command_prints_only_its_own_error(tmp_path):
    """Outside the Makefile (no TF_CPP_MIN_LOG_LEVEL): TensorFlow loads, the console stays clean."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    argv = ["export", "--model", str(tmp_path / "none.keras"), "--out", str(tmp_path / "m.tflite")]
    code = "import sys; from lean_kd.cli.main import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert result.stderr == f"lean-kd: error: {tmp_path / 'none.keras'}: model file not found\n"


def test_info_goes_to_the_run_folder_and_warnings_to_the_console(tmp_path, capsys):
    logger = logging.getLogger("lean_kd.test_console")
    try:
        configure_console(verbose=False)
        log_to_run_folder(tmp_path / "first")
        log_to_run_folder(tmp_path / "run")  # a second command in one process: one log file
        logger.info("an epoch finished")
        logger.warning("a file could not be read")
        assert capsys.readouterr().err == "WARNING lean_kd.test_console: a file could not be read\n"
        log = (tmp_path / "run" / LOG_FILE).read_text()
        assert "INFO lean_kd.test_console: an epoch finished" in log and "could not be read" in log
        assert (tmp_path / "first" / LOG_FILE).read_text() == ""
    finally:
        for owner in (logging.getLogger(), logging.getLogger("lean_kd")):
            for handler in [h for h in owner.handlers if h.get_name() in HANDLER_NAMES]:
                owner.removeHandler(handler)
                handler.close()
