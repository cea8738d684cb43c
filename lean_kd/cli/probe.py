"""``lean-kd probe``: the floor, a linear probe on frozen pretrained YAMNet (or a checkpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_kd.config import PROBE_FEATURES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="linear probe on frozen pretrained YAMNet: the floor other models must beat",
        description="Pool a frozen model's window outputs per clip (mean and max over 0.975 s "
        "windows, 50 % hop), fit a standardised logistic regression on the recipe's training "
        "split and report val and test metrics (OUT/metrics.json) and the fitted probe "
        "(OUT/probe.npz). Settings default to the recipe's probe section.",
    )
    parser.add_argument(
        "--config", type=Path, required=True, help="recipe YAML: data and probe settings"
    )
    parser.add_argument("--data", type=Path, help="dataset root (overrides data.root)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--features", choices=PROBE_FEATURES, help="pooled outputs to use (probe.features)"
    )
    parser.add_argument("--C", type=float, help="inverse L2 strength (probe.C, default 1.0)")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="probe this lean_kd .keras/.h5 checkpoint (needs an 'embeddings' output) "
        "instead of the pretrained YAMNet",
    )
    parser.add_argument(
        "--cache", type=Path, help="window-output cache folder (default: OUT/window_outputs)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_probe_command)


def run_probe_command(args: argparse.Namespace) -> int:
    from lean_kd.probe import checkpoint_backbone, run_probe, yamnet_backbone
    from lean_kd.probe.evaluation import summary_line
    from lean_kd.run.experiment import load_data
    from lean_kd.run.recipe import load_recipe

    overrides = {"data": {"root": str(args.data)}} if args.data else {}
    probe = {k: v for k, v in (("features", args.features), ("C", args.C)) if v is not None}
    recipe = load_recipe(args.config, **overrides, **({"probe": probe} if probe else {}))
    backbone = checkpoint_backbone(args.model) if args.model else yamnet_backbone()
    report = run_probe(
        load_data(recipe),
        args.out,
        backbone=backbone,
        settings=recipe.probe,
        cache_dir=args.cache or args.out / "window_outputs",
        strict=recipe.pipeline.strict,
        progress=not args.no_progress,
    )
    print(
        f"Probe on {report['backbone']} ({report['features']}, C={report['C']:g}, "
        f"{report['num_fit_clips']} training clips)"
    )
    for split in ("val", "test"):
        if split in report:
            print(f"  {split}: {summary_line(report[split])}")
    print(f"Report: {args.out / 'metrics.json'}")
    return 0
