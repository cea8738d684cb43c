"""The ``lean-kd`` console script.

Each command group lives in its own module of ``lean_kd.cli`` with a ``register(subparsers)``
function, found automatically; modules import TensorFlow only inside their handlers so that
``lean-kd --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import lean_kd.cli

from lean_kd.errors import LeanKDError



def command_modules() -> list[str]:
    """Every module of lean_kd.cli except this one, in name order."""
    return [
        f"lean_kd.cli.{m.name}"
        for m in pkgutil.iter_modules(lean_kd.cli.__path__)
        if m.name != "main" and not m.name.startswith("_")
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lean-kd",
        description="Knowledge distillation for on-device audio classification.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules():
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("tensorflow", "absl"):  # tf.distribute logs every all-reduce at INFO
        logging.getLogger(chatty).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except LeanKDError as exc:
        print(f"lean-kd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lean-kd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
