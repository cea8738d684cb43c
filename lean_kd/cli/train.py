"""``lean-kd train``, ``lean-kd cache-teacher`` and ``lean-kd distill`` (Keras fit from a recipe)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_kd.cli._console import log_to_run_folder


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="recipe YAML (models/recipes/...)"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="dataset root (overrides data.root)"
    )
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
    train = subparsers.add_parser(
        "train", help="fine-tune a teacher or train a plain student (Keras fit)"
    )
    _common(train)
    add_strategy(train)
    train.set_defaults(handler=run_train)

    cache = subparsers.add_parser("cache-teacher", help="run a teacher once and store its outputs")
    _common(cache)
    cache.add_argument("--teacher", type=Path, required=True, help="teacher checkpoint (.keras)")
    cache.add_argument(
        "--shard",
        type=_part,
        default=None,
        metavar="I/N",
        help="compute part I of N (0 <= I < N) into --out; the last part to finish writes the "
        "cache (all parts need the same --out folder, or copy their files into one and rerun "
        "without --shard)",
    )
    cache.set_defaults(handler=run_cache)

    distill = subparsers.add_parser("distill", help="distill the recipe's student from a teacher")
    _common(distill)
    distill.add_argument(
        "--teacher", type=Path, default=None, help="teacher checkpoint (online teacher)"
    )
    distill.add_argument(
        "--cache", type=Path, default=None, help="teacher cache folder (instead of --teacher)"
    )
    distill.add_argument(
        "--teacher-streams", type=Path, default=None, metavar="DIR",
        help="with --teacher: keep the teacher's outputs on the augmented training stream in "
        "DIR and read them from there when another student trains on the same stream (same "
        "data, pipeline, audio, augmentation and teacher): the teacher then runs once",
    )  # fmt: skip
    add_strategy(distill)
    distill.set_defaults(handler=run_distill)


def _recipe(args: argparse.Namespace):
    """The recipe with --data applied; lean_kd's log from here on also goes to --out."""
    from lean_kd.run.recipe import load_recipe

    log_to_run_folder(args.out)
    overrides = {"data": {"root": str(args.data)}} if args.data else {}
    return load_recipe(args.config, **overrides)


def run_train(args: argparse.Namespace) -> int:
    from lean_kd.run import experiment

    _report(experiment.train(_recipe(args), args.out, strategy=args.strategy), args.out)
    return 0


def _report(result, out: Path) -> None:
    if result.run_dir != out:  # a multi-worker run's non-chief worker
        print(f"Worker done: its copy is in {result.run_dir}; the chief writes {out}")
        return
    print(
        f"Best checkpoint: {result.best_path} ({result.epochs_run} epochs); metrics in {out / 'metrics.json'}"
    )


def _part(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N) with 0 <= I < N."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return int(index), int(count)


def run_cache(args: argparse.Namespace) -> int:
    from lean_kd.run import experiment

    cache = experiment.cache_teacher(_recipe(args), args.teacher, args.out, part=args.shard)
    if cache is None:
        print(
            f"Teacher cache part {args.shard[0]}/{args.shard[1]} written to {args.out}; other parts pending"
        )
        return 0
    print(f"Teacher cache: {cache.directory} ({len(cache.meta.skipped)} unreadable files skipped)")
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from lean_kd.run import experiment

    result = experiment.distill(
        _recipe(args),
        args.out,
        teacher_path=args.teacher,
        cache_dir=args.cache,
        teacher_streams=args.teacher_streams,
        strategy=args.strategy,
    )
    _report(result, args.out)
    return 0
