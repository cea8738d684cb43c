"""``lean-kd evaluate``: mAP, accuracy and per-class AP of a Keras checkpoint or a TFLite file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="clip-level metrics of a .keras/.h5 checkpoint or a .tflite file (JSON report)",
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="a .keras or .h5 checkpoint, or a .tflite file"
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument(
        "--config", type=Path, help="recipe YAML: its dataset, splits and audio settings"
    )
    data.add_argument("--dataset", help="esc50, urbansound8k, fsd50k, fsdd, folder, csv")
    parser.add_argument(
        "--root",
        type=Path,
        help="the dataset's folder (required with --dataset; overrides data.root with --config)",
    )
    parser.add_argument("--split", default="test", help="train, val or test (default: test)")
    parser.add_argument(
        "--out", type=Path, help="report path (default: <model>.eval_<split>.json beside it)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on an unreadable audio file instead of skipping it",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from lean_kd.evaluation import evaluate_model, write_evaluation

    index, audio = _data(args)
    report = evaluate_model(
        args.model,
        index,
        split=args.split,
        audio=audio,
        progress=not args.no_progress,
        strict=args.strict,
    )
    out = args.out or args.model.with_name(f"{args.model.name}.eval_{args.split}.json")
    write_evaluation(report, out)
    accuracy = report["accuracy"]
    print(
        f"{report['model']} ({report['format']}, {report['size_bytes'] / 1e6:.2f} MB) on "
        f"{report['dataset']} {report['split']}: mAP {report['map']:.4f}"
        + ("" if accuracy is None else f", accuracy {accuracy:.4f}")
        + f", {report['num_clips']} clips, {report['num_windows']} windows"
    )
    print(f"Report: {out}")
    return 0


def _data(args: argparse.Namespace):
    """The dataset index, and the recipe's audio settings with --config (else None)."""
    from lean_kd.errors import ConfigError

    if args.config is None:
        if args.root is None:
            raise ConfigError("--dataset needs --root, the dataset's folder")
        from lean_kd.data.adapters import load_index

        return load_index(args.dataset, args.root), None
    from lean_kd.run.experiment import load_data
    from lean_kd.run.recipe import load_recipe

    overrides = {"data": {"root": str(args.root)}} if args.root else {}
    recipe = load_recipe(args.config, **overrides)
    return load_data(recipe), recipe.audio
