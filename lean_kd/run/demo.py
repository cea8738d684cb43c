"""``lean-kd demo``: the whole pipeline on the embedded synthetic dataset, timed stage by stage.

Synthesises the default dataset (:mod:`lean_kd.data.synth`) into ``<out>/data`` and runs
the demo recipe on it with :func:`lean_kd.run.runner.run_pipeline`, so the demo is
an ordinary resumable run: running it again skips what is done. Budget: 10 minutes on two
CPU cores without a GPU. Without pretrained YAMNet weights it says so in one line and goes on
with randomly initialised YAMNet branches (the report marks it).

The recipe is package data (``lean_kd/run/demo.yaml``, a link to ``models/recipes/demo.yaml``
in the repository that the wheel stores as a file), so ``lean-kd demo`` runs from any install.
"""

from __future__ import annotations

import time
from pathlib import Path

from lean_kd.run.runner import RunResult

DEMO_RECIPE = Path(__file__).with_name("demo.yaml")


def run_demo(out: Path, *, recipe_path: Path = DEMO_RECIPE) -> RunResult:
    """Synthesise the data, then run the demo recipe into ``out``; prints times and results."""
    from lean_kd.data.synth import synthesize
    from lean_kd.run.recipe import load_recipe
    from lean_kd.run.summary import run_with_summary

    out = Path(out)
    print("==> synthesise the embedded dataset", flush=True)
    start, cpu = time.perf_counter(), time.process_time()
    manifest = synthesize(out / "data")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"    {manifest} in {seconds:.1f} s (CPU {cpu:.1f} s)", flush=True)
    recipe = load_recipe(recipe_path, data={"root": str(manifest.parent)})
    return run_with_summary(
        recipe, out, recipe_path=str(recipe_path), extra_times={"synthesise": (seconds, cpu)}
    )
