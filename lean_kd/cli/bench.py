"""``lean-kd bench``: latency, memory, size and MACs of a TFLite model, optionally vs a baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_kd_runtime.engines import ENGINES


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="benchmark a .tflite model (latency percentiles, real-time factor, memory, size, MACs)",
        description="Time a waveform TFLite model with ai-edge-litert; with --baseline, time both "
        "in alternating blocks in the same run and report the ratios.",
    )
    bench.add_argument("--model", type=Path, required=True, help="the .tflite file to measure")
    bench.add_argument(
        "--baseline", type=Path, default=None, help="a .tflite to compare with (e.g. yamnet.tflite)"
    )
    bench.add_argument(
        "--threads",
        type=thread_list,
        default=(1,),
        help="comma-separated thread counts (default: 1)",
    )
    bench.add_argument(
        "--runs",
        type=int,
        default=200,
        help="timed invokes per model and thread count (default: 200)",
    )
    bench.add_argument(
        "--warmup-runs", type=int, default=10, help="untimed invokes first (default: 10)"
    )
    bench.add_argument(
        "--block-runs",
        type=int,
        default=10,
        help="invokes per block when interleaving (default: 10)",
    )
    bench.add_argument(
        "--sample-rate",
        type=int,
        default=16000,
        help="Hz, when the model has no AudioProperties metadata (default: 16000)",
    )
    bench.add_argument(
        "--memory-repeats", type=int, default=3, help="fresh processes per memory figure (median)"
    )
    bench.add_argument(
        "--engine",
        choices=ENGINES,
        default="interpreter",
        help="interpreter: LiteRT's classic Interpreter, as MediaPipe and most apps run models; "
        "compiled: LiteRT's CompiledModel with XNNPACK's weight cache, where ops reading one "
        "weight share its packed copy (an unrolled LSTM's steps; refuses fused LSTM ops) "
        "(default: interpreter)",
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="instead of the latency report: time each op and each run of ops on one kernel "
        "(XNNPACK or builtin) as models of their own; --runs invokes each",
    )
    bench.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    bench.add_argument("--markdown", type=Path, default=None, help="write the Markdown table here")
    bench.set_defaults(handler=run_bench)


def thread_list(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); values are range-checked by BenchConfig (a clear lean_kd error)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 1,2,4, got {text!r}"
        ) from None


def run_bench(args: argparse.Namespace) -> int:
    from lean_kd.bench.benchmark import BenchConfig, TimingConfig, run_benchmark
    from lean_kd.bench.report import to_markdown, write_bench_report

    if args.profile:
        return run_profile(args)
    if args.runs < 200:
        print(f"Note: --runs {args.runs} is below 200; p99 is unreliable with few invokes.")
    config = BenchConfig(
        threads=args.threads,
        timing=TimingConfig(
            runs=args.runs, warmup_runs=args.warmup_runs, block_runs=args.block_runs
        ),
        sample_rate_hz=args.sample_rate,
        memory_repeats=args.memory_repeats,
        engine=args.engine,
    )
    report = run_benchmark(args.model, baseline=args.baseline, config=config)
    write_bench_report(report, json_path=args.json, markdown_path=args.markdown)
    print(to_markdown(report), end="")
    return 0


def run_profile(args: argparse.Namespace) -> int:
    from lean_kd.bench.profile import profile_model
    from lean_kd.bench.profile_report import profile_markdown
    from lean_kd.bench.report import write_text

    paths = [args.model] + ([args.baseline] if args.baseline is not None else [])
    text = "".join(
        profile_markdown(
            profile_model(path, threads=threads, runs=args.runs, warmup_runs=args.warmup_runs)
        )
        + "\n"
        for threads in args.threads
        for path in paths
    )
    if args.markdown is not None:
        write_text(args.markdown, text)
    print(text, end="")
    return 0
