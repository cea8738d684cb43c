"""The README as a new user reads it: its commands work as written and its CLI reference is current.

Every ```bash block carries a marker on the line before it:
``<!-- readme-test: run -->`` blocks are executed here, in a scratch folder that sees the
repository's ``models/``, ``export/`` and ``.venv`` (as a clone does); ``<!-- readme-test:
covered-by PATH[::TEST] ... -->`` blocks are too slow for a unit test and name what exercises
them (CI itself for ``make test``), which must exist. A block without a marker fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lean_kd.cli._reference import END, START, render

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?```bash\n(?P<body>.*?)```", re.S
)
LINKED = ("models", "export", "benchmarks", ".venv", "Makefile", "setup.cfg", "pyproject.toml")


def bash_blocks() -> list[tuple[str, str]]:
    return [(m["marker"] or "", m["body"]) for m in BLOCK.finditer(README.read_text())]


def test_every_bash_block_is_run_or_names_what_covers_it():
    blocks = bash_blocks()
    assert len(blocks) >= 4
    for marker, body in blocks:
        assert marker == "run" or marker.startswith("covered-by "), (
            f"no readme-test marker before:\n{body}"
        )
        for target in marker.split()[1:] if marker != "run" else []:
            path, _, test = target.partition("::")
            assert (REPO / path).exists(), f"{target} (covering a README block) does not exist"
            if test:
                assert f"def {test}(" in (REPO / path).read_text(), f"{target} does not exist"


@pytest.mark.heavy
def test_runnable_blocks_work_as_written(tmp_path):
    for name in LINKED:
        (tmp_path / name).symlink_to(REPO / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for marker, body in bash_blocks():
        if marker != "run":
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, f"README block failed:\n{body}\n{result.stderr[-3000:]}"


def test_cli_reference_is_current():
    text = README.read_text()
    assert START in text and END in text
    section = text.split(START, 1)[1].split(END, 1)[0]
    assert section.strip() == render().strip(), (
        "README CLI reference is stale: run python -m lean_kd.cli._reference --write README.md"
    )
