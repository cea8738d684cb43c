"""``lean-kd data synth`` and ``lean-kd data inspect``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="make or inspect datasets")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    synth = commands.add_parser(
        "synth", help="write the embedded synthetic dataset (WAV files + CSV manifest)"
    )
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--clips-per-class", type=int, default=None, help="default: 40")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--multi-label", action="store_true", help="mix 1-3 events per clip")
    synth.set_defaults(handler=run_synth)

    inspect = commands.add_parser(
        "inspect", help="counts per split and class, durations, rates, unreadable files"
    )
    inspect.add_argument(
        "--dataset", required=True, help="esc50, urbansound8k, fsd50k, fsdd, folder, csv"
    )
    inspect.add_argument("--root", type=Path, required=True, help="the dataset's folder")
    inspect.add_argument("--headers-only", action="store_true", help="skip reading audio headers")
    inspect.set_defaults(handler=run_inspect)


def run_synth(args: argparse.Namespace) -> int:
    from lean_kd.data.synth import SynthConfig, synthesize

    options = {"seed": args.seed, "multi_label": args.multi_label}
    if args.clips_per_class is not None:
        options["clips_per_class"] = args.clips_per_class
    manifest = synthesize(args.out, SynthConfig(**options))
    print(f"Wrote {manifest}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from lean_kd.data.adapters import load_index
    from lean_kd.data.inspect import format_report, inspect_dataset

    index = load_index(args.dataset, args.root)
    report = inspect_dataset(index, sample_rate_probe=not args.headers_only)
    print(format_report(report))
    return 0
