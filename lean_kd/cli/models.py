"""``lean-kd models list``: every registered model with its size, cost and expected input."""

from __future__ import annotations

import argparse
import json
from typing import Any

COLUMNS = ("model", "parameters", "MACs / s audio", "input", "description")


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="the model zoo")
    commands = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser(
        "list",
        help="build each model at its defaults; print parameters, MACs per second, input",
    )
    listing.add_argument(
        "names", nargs="*", metavar="NAME", help="only these models (default: all)"
    )
    listing.add_argument(
        "--num-classes", type=int, default=10, help="classes of the head (default: 10)"
    )
    listing.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    listing.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace) -> int:
    from lean_kd.models.registry import build, describe, entry, names

    selected = args.names or names()
    entries = [entry(name) for name in selected]  # unknown names fail before any build
    rows = []
    for model_entry in entries:
        # sizes and costs do not depend on the weights: never fetch pretrained ones here
        options = {"pretrained": False} if "pretrained" in model_entry.defaults() else {}
        info = describe(build(model_entry.name, args.num_classes, **options))
        rows.append({**info, "name": model_entry.name, "description": model_entry.description})
    print(format_rows(rows, args.format))
    return 0


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        row["name"],
        f"{row['parameters'] / 1e6:.2f} M",
        f"{row['macs_per_second'] / 1e6:.1f} M",
        row["input"],
        row["description"],
    ]


def format_rows(rows: list[dict[str, Any]], style: str) -> str:
    """Rows of ``describe`` (plus ``description``) as an aligned text table, Markdown or JSON."""
    if style == "json":
        return json.dumps(rows, indent=2)
    table = [list(COLUMNS)] + [_cells(row) for row in rows]
    if style == "markdown":
        lines = ["| " + " | ".join(cells) + " |" for cells in table]
        return "\n".join([lines[0], "|" + "---|" * len(COLUMNS), *lines[1:]])
    widths = [max(len(cells[i]) for cells in table) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(cells, widths, strict=False)), cells[-1]]
        ).rstrip()
        for cells in table
    )
