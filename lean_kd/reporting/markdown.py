"""Markdown tables and the way numbers appear in them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MIB = 1024 * 1024


def format_number(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    """``value / scale`` with ``digits`` decimals, or "n/a" for a missing (None) value."""
    return "n/a" if value is None else f"{value / scale:.{digits}f}"


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, align: str | None = None
) -> list[str]:
    """Lines of a Markdown table; ``align`` has one "l" or "r" per column (default all "l")."""
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"Expected align as {len(header)} of 'l'/'r', got {align!r}")
    rule = "".join("---|" if a == "l" else "---:|" for a in align)
    lines = ["| " + " | ".join(header) + " |", "|" + rule]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
