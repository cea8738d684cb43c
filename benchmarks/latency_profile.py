"""Where LEAN's and lean_tiny's int8 time goes, export by export, against the official YAMNet.

    python benchmarks/latency_profile.py [--runs 400] [--threads 1,2] [--out DIR]
        [--models NAME ...] [--markdown FILE]

Builds LEAN, lean_fast and lean_tiny with the registry's defaults, and lean_tiny as the ESC-50
dev benchmark trains it (``benchmarks/esc50_dev.py``: from YAMNet's first 6 blocks, or its
first 10 without the wave encoder and with 128 projection units), YAMNet branches from the official weights
(``LEAN_KD_YAMNET``; weights do not change latency, so nothing is trained), exports
each as int8 in the export forms compared here (``--lstm`` / ``--dft`` of ``lean-kd export``),
calibrated on synthetic tones and noise, then for every file:

- ``lean-kd bench``'s measurement interleaved with the official yamnet.tflite in the same run
  (p50 and the same-run ratio at each thread count, memory, size);
- ``lean-kd bench --profile`` at one thread (kernel and time per op type and partition).

Writes ``benchmarks/results/latency_profile.md`` (below its hand-written findings, which a rerun
keeps) with the CPU's int8 features and the load average before and after, so that a run on
another CPU (with or without AVX-512 VNNI or ARM dot products) prints the figures the latency
issue asks for.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from esc50_dev import DEEPER_PRETRAINED, NO_WAVE_ENCODER, SHALLOW_PRETRAINED, WIDE_PROJECTION
from lean_kd.bench.benchmark import BenchConfig, TimingConfig, run_benchmark
from lean_kd.bench.profile import profile_model
from lean_kd.bench.profile_report import profile_markdown
from lean_kd.bench.report import write_text
from lean_kd.export.tflite import export_tflite
from lean_kd.export.unrolled_lstm import packed_copies_bytes, resolve_lstm_mode
from lean_kd.models import registry
from lean_kd.reporting.markdown import markdown_table
from lean_kd_runtime.timing import load_model

HERE = Path(__file__).resolve().parent
DEFAULT_MARKDOWN = HERE / "results" / "latency_profile.md"
# name in this report -> (registry name, options): lean_tiny's ESC-50 dev forms under their own
# names (benchmarks/results/esc50_dev.md)
MODELS: dict[str, tuple[str, dict]] = {
    "lean": ("lean", {}),
    "lean_fast": ("lean_fast", {}),
    "lean_tiny": ("lean_tiny", {}),
    "lean_tiny_blocks6": ("lean_tiny", SHALLOW_PRETRAINED),
    "lean_tiny_blocks10_no_wave": (
        "lean_tiny",
        {**DEEPER_PRETRAINED[10], **NO_WAVE_ENCODER, **WIDE_PROJECTION},
    ),
}
# (model, lstm, dft, engine): the defaults (auto, fft, interpreter) and the alternatives; on the
# compiled engine (LiteRT's CompiledModel, XNNPACK's weight cache) the baseline runs there too
EXPORTS = (
    ("lean", "auto", "fft", "interpreter"),
    ("lean", "unrolled", "fft", "compiled"),
    ("lean", "auto", "rfft", "interpreter"),
    ("lean", "auto", "int8", "interpreter"),
    ("lean_fast", "auto", "fft", "interpreter"),
    ("lean_fast", "auto", "fft", "compiled"),
    ("lean_fast", "hybrid", "fft", "interpreter"),
    ("lean_fast", "auto", "int8", "interpreter"),
    ("lean_tiny", "auto", "fft", "interpreter"),
    ("lean_tiny", "auto", "fft", "compiled"),
    ("lean_tiny", "auto", "int8", "interpreter"),
    ("lean_tiny_blocks6", "auto", "fft", "interpreter"),
    ("lean_tiny_blocks6", "auto", "fft", "compiled"),
    ("lean_tiny_blocks10_no_wave", "auto", "fft", "interpreter"),
    ("lean_tiny_blocks10_no_wave", "auto", "fft", "compiled"),
)
CLASSES = 10


def calibration(count: int = 50, seed: int = 0):
    """Tones plus noise at levels from -40 to 0 dBFS: a stand-in for real audio."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    for _ in range(count):
        wave = np.sin(2 * np.pi * rng.uniform(100, 6000) * t) + rng.normal(0, 0.3, t.size)
        yield (wave / np.abs(wave).max() * 10 ** rng.uniform(-2, 0)).astype(np.float32)[None]


def export(name: str, lstm: str, dft: str, out: Path, *, again: bool) -> tuple[Path, str]:
    """The int8 file of model ``name`` (:data:`MODELS`) in this export form (reused when
    present, unless ``again``) and the LSTM form "auto" resolved to ("no LSTM" for a model
    without one)."""
    path = out / f"{name}_int8_lstm-{lstm}_dft-{dft}.tflite"
    registered, options = MODELS[name]
    model = registry.build(registered, CLASSES, **options)
    used = resolve_lstm_mode(model, lstm) if packed_copies_bytes(model) else "no LSTM"
    if path.exists() and not again:
        return path, used
    export_tflite(
        model,
        quant="int8",
        out=path,
        labels=[str(i) for i in range(CLASSES)],
        sample_rate=16000,
        representative=calibration(),
        num_calibration=50,
        lstm=lstm,
        dft=dft,
    )
    return path, used


def bench_rows(path: Path, label: str, baseline: Path, config: BenchConfig) -> list[list]:
    report = run_benchmark(path, baseline=baseline, config=config)
    model, base = report["models"]
    rows = []
    for mine, theirs, ratio in zip(model["latency"], base["latency"], report["ratios"]["latency"]):
        rows.append(
            [
                label,
                mine["threads"],
                f"{mine['p50_ms']:.2f}",
                f"{theirs['p50_ms']:.2f}",
                f"{ratio['p50']:.2f}",
                f"{model['file_size_bytes'] / 2**20:.2f}",
                f"{model['memory']['model_delta_bytes'] / 2**20:.1f}",
                f"{base['memory']['model_delta_bytes'] / 2**20:.1f}",
            ]
        )
    return rows, report["host"]


def cpu_time_ratio(path: Path, baseline: Path, runs: int, engine: str) -> tuple[float, float]:
    """Median CPU time (ms) of one invoke at one thread, for ``path`` and ``baseline``,
    interleaved in blocks of 10. The invoke runs on the calling thread, so its thread CPU
    time leaves out the time other processes hold the core: on a shared machine it tracks
    what an idle one would show better than wall time does."""
    models = [
        load_model(p, threads=1, sample_rate_hz=16000, engine=engine) for p in (path, baseline)
    ]
    for model in models:
        model.feed(0)
        for _ in range(10):
            model.engine.invoke()
    times: list[list[int]] = [[], []]
    while len(times[0]) < runs:
        for model, record in zip(models, times):
            for _ in range(10):
                start = time.thread_time_ns()
                model.engine.invoke()
                record.append(time.thread_time_ns() - start)
    mine, theirs = (float(np.median(t)) / 1e6 for t in times)
    return mine, theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "latency_profile")
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN)
    parser.add_argument("--export-again", action="store_true", help="re-export existing files")
    parser.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=list(MODELS),
        help="only these models' rows (write them to another --markdown: the report holds the rows "
        "of one run)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    baseline = Path(os.environ.get("LEAN_KD_YAMNET", "../shared/pretrained/yamnet/yamnet.tflite"))
    args.out.mkdir(parents=True, exist_ok=True)
    threads = tuple(int(t) for t in args.threads.split(","))
    load_before = os.getloadavg()
    rows, profiles, host, profiled = [], [], None, set()
    for name, lstm, dft, engine in (e for e in EXPORTS if e[0] in args.models):
        path, used = export(name, lstm, dft, args.out, again=args.export_again)
        label = f"{name} int8, --lstm {lstm} ({used}), --dft {dft}, {engine}"
        config = BenchConfig(
            threads=threads, timing=TimingConfig(runs=args.runs), memory_repeats=3, engine=engine
        )
        new_rows, host = bench_rows(path, label, baseline, config)
        mine, theirs = cpu_time_ratio(path, baseline, args.runs, engine)
        new_rows.append(
            [
                label,
                "1 (CPU time)",
                f"{mine:.2f}",
                f"{theirs:.2f}",
                f"{mine / theirs:.2f}",
                *new_rows[0][5:],
            ]
        )
        rows += new_rows
        if path not in profiled:  # the profile times ops on the interpreter, once per file
            profiled.add(path)
            profiles.append(profile_markdown(profile_model(path, threads=1, runs=200)))
        print(*("| " + " | ".join(map(str, r)) + " |" for r in new_rows), sep="\n", flush=True)
    profiles.append(profile_markdown(profile_model(baseline, threads=1, runs=200)))
    text = summary(rows, profiles, host, load_before, os.getloadavg(), args)
    write_text(args.markdown, kept_findings(args.markdown) + text)
    return 0


MARKER = "<!-- Everything below is written by benchmarks/latency_profile.py -->\n"


def kept_findings(path: Path) -> str:
    """The hand-written text above :data:`MARKER` in an existing report (kept on a rerun)."""
    text = path.read_text() if path.exists() else ""
    return text[: text.index(MARKER) + len(MARKER)] if MARKER in text else MARKER


def command(args) -> str:
    """The command line that made a report."""
    words = [
        "python benchmarks/latency_profile.py",
        f"--runs {args.runs}",
        f"--threads {args.threads}",
    ]
    if list(args.models) != list(MODELS):
        words += ["--models", *args.models]
    if args.markdown != DEFAULT_MARKDOWN:
        words += ["--markdown", os.path.relpath(args.markdown, HERE.parent)]
    return " ".join(words)


def summary(rows, profiles, host, before, after, args) -> str:
    features = " ".join(host["cpu_int8_features"] or []) or "none"
    header = (
        "export",
        "threads",
        "p50 ms",
        "YAMNet p50 ms",
        "ratio (same run)",
        "size MiB",
        "memory MiB",
        "YAMNet memory MiB",
    )
    return (
        "\n".join(
            [
                "## Measurements",
                "",
                f"Made by `{command(args)}` on {host['machine']} ({host['cpu_count']} CPUs, int8 "
                f"features: {features}, {host['runtime']}), {time.strftime('%Y-%m-%d %H:%M')}; load average "
                f"{before[0]:.2f} before, {after[0]:.2f} after (other jobs shared the cores: read the "
                "same-run ratios, not the absolute times). Models untrained (latency does not depend "
                "on the weights); LEAN's YAMNet branch holds the official weights. Rows '1 (CPU time)': "
                "median thread CPU time per invoke at one thread, interleaved with the baseline the same "
                "way; on a loaded machine a long invoke is preempted more often than a short one, which "
                "inflates its wall-time p50 and the ratio, and CPU time leaves that out.",
                "",
                *markdown_table(header, rows, align="lrrrrrrr"),
                "",
                "## Profiles at one thread (`lean-kd bench --profile`)",
                "",
                *profiles,
            ]
        )
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
