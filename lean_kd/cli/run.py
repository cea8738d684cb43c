"""``lean-kd run``: a recipe through every stage, resumable (see lean_kd.run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_kd.cli._console import log_to_run_folder
from lean_kd.run import STAGE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="prepare -> probe -> teacher -> cache -> student -> distill -> export -> evaluate -> bench -> report",
        description="Run a recipe's whole pipeline into --out. Each stage records a fingerprint of "
        "its inputs; rerunning skips unchanged stages, reruns what a change affects and resumes "
        "an interrupted stage.",
    )
    run.add_argument("--config", type=Path, required=True, help="recipe YAML (models/recipes/...)")
    run.add_argument(
        "--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)"
    )
    run.add_argument("--data", type=Path, default=None, help="dataset root (overrides data.root)")
    run.add_argument(
        "--from", dest="from_stage", choices=STAGE_NAMES, help="rerun from this stage on"
    )
    run.add_argument("--until", choices=STAGE_NAMES, help="stop after this stage")
    run.set_defaults(handler=run_run)


def run_run(args: argparse.Namespace) -> int:
    from lean_kd.run.recipe import load_recipe
    from lean_kd.run.summary import run_with_summary

    overrides = {"data": {"root": str(args.data)}} if args.data else {}
    recipe = load_recipe(args.config, **overrides)
    out = args.out or Path("runs") / recipe.name
    log_to_run_folder(out)
    run_with_summary(
        recipe, out, from_stage=args.from_stage, until=args.until, recipe_path=str(args.config)
    )
    return 0
