"""The ``lean-kd`` console script.

Each command group lives in its own module of ``lean_kd.cli`` with a ``register(subparsers)``
function, found automatically; modules import TensorFlow only inside their handlers so that
``lean-kd --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import lean_kd
import lean_kd.cli
from lean_kd import _environment
from lean_kd.cli._console import configure_console
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {lean_kd.__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show lean_kd's info and debug log and TensorFlow's start-up messages",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules():
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; ``argv`` None means the real command line, and this process is ours.

    Only then is native stderr silenced (see :mod:`lean_kd._environment`): a caller that passes
    ``argv`` (a test, another program) keeps its own process settings.
    """
    args = build_parser().parse_args(argv)
    if argv is None and not args.verbose:
        _environment.quiet_native_stderr()
    configure_console(verbose=args.verbose)
    try:
        return int(args.handler(args) or 0)
    except LeanKDError as exc:
        print(f"lean-kd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lean-kd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`lean-kd models list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        native = _environment.native_output()
        if native:
            print(f"lean-kd: TensorFlow's messages before the failure:\n{native}", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
