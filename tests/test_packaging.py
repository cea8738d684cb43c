"""A non-editable install carries what the commands read at run time (package data).

The wheel is built from a copy of the sources, offline and without build isolation (the
setuptools already installed), so the check takes seconds and leaves the checkout untouched.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "lean_kd", "export/raspberry_pi", "models")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name,
                source / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--no-index", "-q", str(source), "-w", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("pip is not installed in this environment")
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = out.glob("lean_kd-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_the_demo_recipe_as_a_file(wheel):
    text = wheel.read("lean_kd/run/demo.yaml").decode("utf-8")
    assert text == (REPO / "models" / "recipes" / "demo.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["student"]["name"]  # the recipe itself, not a link


def test_wheel_ships_every_package_data_file(wheel):
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    patterns = config["options.package_data"]["lean_kd"].replace(",", " ").split()
    expected = {f"lean_kd/{p.relative_to(REPO / 'lean_kd')}" for pattern in patterns
                for p in (REPO / "lean_kd").glob(pattern)}  # fmt: skip
    assert expected and expected <= set(wheel.namelist())
    assert {"lean_kd_runtime/metrics.py", "lean_kd_pi/__main__.py"} <= set(wheel.namelist())
