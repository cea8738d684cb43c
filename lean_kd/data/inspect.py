"""What is in a dataset, and which files cannot be read: the engine of ``lean-kd data inspect``.

:func:`inspect_dataset` reads every file's header (not its samples), so it runs over tens of
thousands of files in seconds to minutes, and it never stops at a broken file: each one is
listed with the reason, because training would otherwise skip it with only a count.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Mapping

from tqdm import tqdm

from lean_kd.audio.io import check_file, read_audio_info
from lean_kd.data.index import SPLITS, DatasetIndex
from lean_kd.errors import AudioInputError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class UnreadableFile:
    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class DurationStats:
    """Durations of the readable files, in seconds."""

    total_seconds: float
    min_seconds: float
    mean_seconds: float
    max_seconds: float


@dataclasses.dataclass(frozen=True)
class InspectReport:
    """Counts from the index and, when probed, what the file headers say."""

    dataset: str
    num_classes: int
    multi_label: bool
    num_examples: int
    num_files: int
    split_counts: Mapping[str, int]
    class_counts: Mapping[str, Mapping[str, int]]  # split -> class name -> examples
    fold_counts: Mapping[int, int]
    probed: bool  # False: headers not read, only existence and size checked
    durations: DurationStats | None  # None when nothing readable or not probed
    sample_rates_hz: Mapping[int, int]  # rate -> number of files
    channels: Mapping[int, int]  # channel count -> number of files
    unreadable: tuple[UnreadableFile, ...]

    @property
    def num_readable(self) -> int:
        return self.num_files - len(self.unreadable)


def inspect_dataset(
    index: DatasetIndex, *, sample_rate_probe: bool = True, progress: bool = True
) -> InspectReport:
    """Count examples per split and class and check every file of ``index``.

    With ``sample_rate_probe`` each file's header is read (duration, sample rate, channels);
    without it only existence and size are checked. Files that fail are collected, not raised.
    """
    paths = list(dict.fromkeys(e.path for e in index.examples))
    durations: list[float] = []
    rates: collections.Counter[int] = collections.Counter()
    channels: collections.Counter[int] = collections.Counter()
    unreadable = []
    for path in tqdm(paths, desc=f"inspect {index.name}", unit="file", disable=not progress):
        try:
            if not sample_rate_probe:
                check_file(path)
                continue
            seconds, rate, num_channels = _probe(path)
        except (AudioInputError, OSError) as exc:
            unreadable.append(UnreadableFile(path=path, reason=_reason(exc, path)))
            continue
        durations.append(seconds)
        rates[rate] += 1
        channels[num_channels] += 1
    if unreadable:
        logger.warning("%s: %d of %d file(s) unreadable", index.name, len(unreadable), len(paths))
    return InspectReport(
        dataset=index.name,
        num_classes=index.num_classes,
        multi_label=index.multi_label,
        num_examples=len(index.examples),
        num_files=len(paths),
        split_counts={s: len(index.split(s)) for s in SPLITS if index.split(s)},
        class_counts=index.summary(),
        fold_counts=dict(sorted(collections.Counter(e.fold for e in index.examples).items())),
        probed=sample_rate_probe,
        durations=_duration_stats(durations),
        sample_rates_hz=dict(sorted(rates.items())),
        channels=dict(sorted(channels.items())),
        unreadable=tuple(unreadable),
    )


def _probe(path: str) -> tuple[float, int, int]:
    """(seconds, sample rate, channels) from the header; AudioInputError for unusable files."""
    info = read_audio_info(path)
    if info.samplerate <= 0:
        raise AudioInputError(f"{path}: sample rate is {info.samplerate}, expected > 0")
    if info.frames <= 0:
        raise AudioInputError(f"{path}: the clip has zero samples")
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def _reason(exc: Exception, path: str) -> str:
    """The error message without the leading path (the report prints the path once)."""
    message = str(exc)
    return message[len(path) + 2 :] if message.startswith(f"{path}: ") else message


def _duration_stats(durations: list[float]) -> DurationStats | None:
    if not durations:
        return None
    return DurationStats(
        total_seconds=sum(durations),
        min_seconds=min(durations),
        mean_seconds=sum(durations) / len(durations),
        max_seconds=max(durations),
    )


def format_report(report: InspectReport) -> str:
    """Human-readable text of ``report``: what ``lean-kd data inspect`` prints."""
    kind = "multi-label" if report.multi_label else "single-label"
    lines = [
        f"Dataset {report.dataset}: {report.num_examples} examples, {report.num_files} files, "
        f"{report.num_classes} classes ({kind})",
        "Splits: " + ", ".join(f"{s} {n}" for s, n in report.split_counts.items()),
    ]
    if set(report.fold_counts) != {0}:
        lines.append("Folds: " + ", ".join(f"{f}: {n}" for f, n in report.fold_counts.items()))
    lines += _class_table(report.class_counts)
    lines += _file_lines(report)
    return "\n".join(lines) + "\n"


def _class_table(class_counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One row per class that has examples, one column per split."""
    splits = list(class_counts)
    names = list(next(iter(class_counts.values()), {}))
    used = [n for n in names if any(class_counts[s][n] for s in splits)]
    width = max([len("class")] + [len(n) for n in used])
    lines = ["", f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in splits)]
    lines += [
        f"{n:<{width}}  " + "  ".join(f"{class_counts[s][n]:>6}" for s in splits) for n in used
    ]
    if len(used) < len(names):
        lines.append(f"({len(names) - len(used)} classes without examples not shown)")
    return lines


def _file_lines(report: InspectReport) -> list[str]:
    lines = [""]
    if not report.probed:
        lines.append(f"Headers not read; {report.num_readable} of {report.num_files} files exist")
    elif report.durations is None:
        lines.append("Durations: no readable file")
    else:
        d = report.durations
        lines += [
            f"Durations ({report.num_readable} readable files): total {d.total_seconds:.1f} s, "
            f"min {d.min_seconds:.2f} s, mean {d.mean_seconds:.2f} s, max {d.max_seconds:.2f} s",
            "Sample rates: "
            + ", ".join(f"{r} Hz x {n}" for r, n in report.sample_rates_hz.items()),
            "Channels: " + ", ".join(f"{c} x {n}" for c, n in report.channels.items()),
        ]
    lines.append(f"Unreadable files: {len(report.unreadable)}")
    lines += [f"  {u.path}: {u.reason}" for u in report.unreadable]
    return lines


def _counts(counts: Mapping[int, int], *, unit: str = "") -> str:
    return ", ".join(f"{value}{unit} x {n}" for value, n in counts.items())
