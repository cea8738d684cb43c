"""``lean-kd demo``: the whole pipeline on the embedded synthetic dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_kd.cli._console import log_to_run_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="synthesise the embedded dataset and run the whole pipeline on it (<= 10 min)"
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lean_kd.run.demo import run_demo

    log_to_run_folder(args.out)
    run_demo(args.out)
    return 0
