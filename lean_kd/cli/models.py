"""``lean-kd models list`` and ``models show``: the model zoo, answered from the catalogue.

Both read :mod:`lean_kd.models.catalogue` and never import TensorFlow, so they return at once.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

COLUMNS = ("model", "parameters", "MACs / s audio", "input", "description")


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="the model zoo")
    commands = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser(
        "list", help="every model at its defaults: parameters, MACs per second, input"
    )
    listing.add_argument(
        "names", nargs="*", metavar="NAME", help="only these models (default: all)"
    )
    _num_classes(listing)
    listing.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    listing.set_defaults(handler=run_list)
    show = commands.add_parser(
        "show", help="one model: description, options with defaults, outputs, counts"
    )
    show.add_argument("name", metavar="NAME", help="a model name from `lean-kd models list`")
    _num_classes(show)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=run_show)


def _num_classes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--num-classes", type=int, default=10, help="classes of the head (default: 10)"
    )


def run_list(args: argparse.Namespace) -> int:
    from lean_kd.models.catalogue import catalogue_entry, load_catalogue

    catalogue = load_catalogue()
    entries = [catalogue_entry(name, catalogue) for name in args.names or catalogue]
    print(format_rows([e.row(args.num_classes) for e in entries], args.format))
    return 0


def run_show(args: argparse.Namespace) -> int:
    from lean_kd.models.catalogue import catalogue_entry

    model = catalogue_entry(args.name)
    row = {**model.row(args.num_classes), "options": model.options}
    print(json.dumps(row, indent=2) if args.format == "json" else format_details(row))
    return 0


def format_details(row: dict[str, Any]) -> str:
    """One model as readable text: what it is, its counts, outputs and options."""
    outputs = ", ".join(
        f"{key} {shape}".replace("None", "B") for key, shape in row["outputs"].items()
    )
    lines = [
        f"{row['name']}: {row['description']}",
        "",
        f"input       {row['input']}",
        f"outputs     {outputs} (logits: raw, {row['activation']} applied by losses and metrics)",
        f"parameters  {row['parameters']:,} ({row['trainable_parameters']:,} trainable), "
        f"{row['num_classes']} classes",
        f"MACs        {row['macs_per_second'] / 1e6:.1f} M per second of audio",
        "",
        "options (recipe: model: {name: ..., options: {...}}) and defaults:",
    ]
    width = max(len(key) for key in row["options"])
    lines += [f"  {key.ljust(width)}  {json.dumps(value)}" for key, value in row["options"].items()]
    return "\n".join(lines)


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        row["name"],
        f"{row['parameters'] / 1e6:.2f} M",
        f"{row['macs_per_second'] / 1e6:.1f} M",
        row["input"],
        row["description"],
    ]


def format_rows(rows: list[dict[str, Any]], style: str) -> str:
    """Catalogue rows as an aligned text table, Markdown or JSON."""
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
