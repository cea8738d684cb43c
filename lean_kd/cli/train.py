"""``lean-kd train``, ``lean-kd cache-teacher`` and ``lean-kd distill`` (Keras fit from a recipe)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML (models/recipes/...)")
    parser.add_argument("--data", type=Path, default=None, help="dataset root (overrides data.root)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")


def add_strategy(parser: argparse._ActionsContainer) -> None:
    """``--strategy``: overrides the recipe's ``distribute.strategy`` (README "Scaling out")."""
    parser.add_argument(
        "--strategy",
        default=None,
        choices=("default", "mirrored", "multiworker"),
        help="tf.distribute strategy (default: the recipe's distribute.strategy); multiworker "
        "reads TF_CONFIG, mirrored on CPUs uses LEAN_KD_CPU_DEVICES logical CPUs",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="fine-tune a teacher or train a plain student (Keras fit)")
    _common(train)
    add_strategy(train)
    train.set_defaults(handler=run_train)

    cache = subparsers.add_parser("cache-teacher", help="run a teacher once and store its outputs")
    _common(cache)
    cache.add_argument("--teacher", type=Path, required=True, help="teacher checkpoint (.keras)")
    cache.set_defaults(handler=run_cache)

    distill = subparsers.add_parser("distill", help="distill the recipe's student from a teacher")
    _common(distill)
    distill.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (online teacher)")
    distill.add_argument("--cache", type=Path, default=None, help="teacher cache folder (instead of --teacher)")
    add_strategy(distill)
    distill.set_defaults(handler=run_distill)


def _recipe(args: argparse.Namespace):
    from lean_kd.recipe import load_recipe

    overrides = {"data": {"root": str(args.data)}} if args.data else {}
    return load_recipe(args.config, **overrides)


def run_train(args: argparse.Namespace) -> int:
    from lean_kd import experiment

    result = experiment.train(_recipe(args), args.out, strategy=args.strategy)
    print(f"Best checkpoint: {result.best_path} ({result.epochs_run} epochs); metrics in {args.out / 'metrics.json'}")
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from lean_kd import experiment

    cache = experiment.cache_teacher(_recipe(args), args.teacher, args.out)
    print(f"Teacher cache: {cache.directory} ({len(cache.meta.skipped)} unreadable files skipped)")
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from lean_kd import experiment

    result = experiment.distill(
        _recipe(args), args.out, teacher_path=args.teacher, cache_dir=args.cache, strategy=args.strategy
    )
    print(f"Best checkpoint: {result.best_path} ({result.epochs_run} epochs); metrics in {args.out / 'metrics.json'}")
    return 0
