"""Markdown tables of a :class:`lean_kd.bench.profile.Profile`: op types, partitions, slowest ops."""

from __future__ import annotations

from pathlib import Path

from lean_kd.bench.profile import Profile
from lean_kd.reporting.markdown import format_number, markdown_table

SLOWEST_OPS = 8


def profile_markdown(profile: Profile) -> str:
    """The profile of one model at one thread count as a Markdown section."""
    pieces = sum(piece.ms for piece in profile.ops)
    builtin = sum(piece.ms for piece in profile.ops if piece.kernel == "builtin")
    lines = [
        f"### {Path(profile.path).name}, {profile.threads} thread(s)",
        "",
        f"Whole model {profile.whole_ms:.3f} ms (median, "
        f"{'CPU time' if profile.threads == 1 else 'wall time'}); ops timed one by one add up to "
        f"{pieces:.3f} ms, of which {_share(builtin, pieces)} on builtin kernels; "
        f"{profile.delegate_partitions} XNNPACK partition(s) when the interpreter is built as "
        "usual.",
        "",
        "By op type:",
        "",
        *markdown_table(
            ("op", "kernel", "count", "ms", "share", "MMAC", "GMAC/s"),
            [
                (name, kernel, count, f"{ms:.3f}", _share(ms, pieces), *_macs(macs, ms))
                for name, kernel, count, ms, macs in profile.by_type()
            ],
            align="llrrrrr",
        ),
        "",
        "Partitions in execution order (runs of ops on the same kernel, timed together):",
        "",
        *markdown_table(
            ("#", "kernel", "ops", "ms", "MMAC"),
            [
                (i, part.kernel, part.name, f"{part.ms:.3f}", _macs(part.macs, part.ms)[0])
                for i, part in enumerate(profile.partitions)
            ],
            align="rllrr",
        ),
        "",
        f"Slowest {SLOWEST_OPS} ops:",
        "",
        *markdown_table(
            ("op index", "op", "kernel", "ms", "MMAC"),
            [
                (
                    piece.ops[-1],
                    piece.name,
                    piece.kernel,
                    f"{piece.ms:.3f}",
                    _macs(piece.macs, piece.ms)[0],
                )
                for piece in sorted(profile.ops, key=lambda p: -p.ms)[:SLOWEST_OPS]
            ],
            align="rllrr",
        ),
    ]
    return "\n".join(lines) + "\n"


def _share(ms: float, total: float) -> str:
    return f"{100 * ms / total:.0f} %" if total > 0 else "n/a"


def _macs(macs: int, ms: float) -> tuple[str, str]:
    """(MMAC, GMAC/s) cells; "" for ops without counted MACs."""
    if not macs:
        return "", ""
    return format_number(macs, 1e6, 1), format_number(macs / ms / 1e6 if ms > 0 else None, 1, 0)
