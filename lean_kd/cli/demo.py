"""``lean-kd demo``: run the main job on the embedded synthetic dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the embedded synthetic dataset")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lean_kd.demo import run_demo

    run_demo(args.out)
    return 0
