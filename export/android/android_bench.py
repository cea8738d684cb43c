#!/usr/bin/env python3
"""Benchmark a TFLite model on an Android phone with adb and LiteRT's ``benchmark_model``.

Pushes ``benchmark_model`` (you supply the binary, built or downloaded for the phone's ABI)
and the model to the phone, runs it once per thread count and delegate (CPU with or without
XNNPACK, GPU, NNAPI), parses what the tool prints and writes lean_kd's benchmark report
(schema "lean_kd.bench" v1; see export/raspberry_pi/lean_kd_runtime/schema.py). Lines it parses::

    count=50 first=… curr=… min=… max=… avg=… std=… [p5=… median=… p95=…]   (last one: timed runs)
    Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): …
    Memory footprint delta from the start of the tool (MB): init=… overall=…
        (older releases: "Peak memory footprint (MB): init=… overall=…")
    Overall peak memory footprint (MB) via periodic monitoring: …

``benchmark_model`` gives a mean, min, max and standard deviation (and a median in recent
releases) but no p90/p99: those fields are null. Its "MB" are MiB (kB / 1024). The memory
object of a model comes from its first configuration (first thread count and delegate).
Standard library only (plus ai-edge-litert, if installed, to read the model's input length
for the real-time factor); it must not import TensorFlow or lean_kd.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

SCHEMA_NAME = "lean_kd.bench"  # copied from lean_kd_runtime/schema.py (a test compares)
SCHEMA_VERSION = 1
TOOL = "android_bench"
MIB = 1024 * 1024
DELEGATE_FLAGS = {
    "xnnpack": ["--use_xnnpack=true"],
    "cpu": ["--use_xnnpack=false"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
}
# copied from lean_kd_runtime/engines.py (a test compares): XNNPACK's cache without a file
IN_MEMORY_WEIGHT_CACHE = ":memory"
_NUMBER = r"([0-9.]+(?:[eE][+-]?[0-9]+)?)"
_TIMINGS = re.compile(
    rf"Inference timings in us: Init: {_NUMBER}, First inference: {_NUMBER}, "
    rf"Warmup \(avg\): {_NUMBER}, Inference \(avg\): {_NUMBER}"
)
_COUNT = re.compile(
    rf"count=(\d+) first={_NUMBER} curr={_NUMBER} min={_NUMBER} max={_NUMBER} avg={_NUMBER} std={_NUMBER}"
)
_MEDIAN = re.compile(rf"median={_NUMBER}")
_DELTA = re.compile(
    rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): init={_NUMBER} overall={_NUMBER}"
)
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUMBER}")
EXIT_ERROR = 2


class BenchError(Exception):
    """A problem the user can fix (no adb, no device, a missing file, unparsable output)."""


def parse_output(
    text: str, *, threads: int, delegate: str, runs: int, audio_seconds: float | None
) -> tuple[dict, dict]:
    """``(latency entry, memory object)`` of the report schema from benchmark_model's output.

    ``runs`` is the requested count, used when the output has no ``count=`` line.
    """
    timings = _TIMINGS.search(text)
    if timings is None:
        tail = " | ".join(text.strip().splitlines()[-3:]) or "no output"
        raise BenchError(
            f"benchmark_model printed no 'Inference timings' line ({delegate}, {threads} threads): {tail}"
        )
    init_us, first_us, warmup_us, mean_us = (float(v) for v in timings.groups())
    counts = [m for m in _COUNT.finditer(text) if m.start() < timings.start()]
    timed = counts[-1] if counts else None
    line_end = text.find("\n", timed.end()) if timed else -1
    median = (
        _MEDIAN.search(text, timed.end(), line_end if line_end >= 0 else len(text))
        if timed
        else None
    )
    p50 = float(median.group(1)) / 1e3 if median else None
    basis_ms, basis = (p50, "p50") if p50 is not None else (mean_us / 1e3, "mean")
    rtf = basis_ms / 1e3 / audio_seconds if audio_seconds else None
    entry = {
        "threads": threads,
        "delegate": delegate,
        "runs": int(timed.group(1)) if timed else runs,
        "p50_ms": p50,
        "p90_ms": None,
        "p99_ms": None,
        "mean_ms": mean_us / 1e3,
        "min_ms": float(timed.group(4)) / 1e3 if timed else None,
        "max_ms": float(timed.group(5)) / 1e3 if timed else None,
        "std_ms": float(timed.group(7)) / 1e3 if timed else None,
        "init_ms": init_us / 1e3,
        "first_inference_ms": first_us / 1e3,
        "warmup_mean_ms": warmup_us / 1e3,
        "real_time_factor": rtf,
        "real_time_factor_basis": basis if rtf is not None else None,
        "samples_ms": None,
    }
    return entry, parse_memory(text)


def parse_memory(text: str) -> dict:
    """The memory object: peak (periodic monitoring), overall and init deltas, in bytes."""
    delta, peak = _DELTA.search(text), _PEAK.search(text)
    return {
        "method": "benchmark_model --report_peak_memory_footprint (MiB reported by the tool; approximate)",
        "peak_rss_bytes": int(float(peak.group(1)) * MIB) if peak else None,
        "runtime_only_peak_rss_bytes": None,
        "model_delta_bytes": int(float(delta.group(2)) * MIB) if delta else None,
        "init_delta_bytes": int(float(delta.group(1)) * MIB) if delta else None,
        "tensor_arena_bytes": None,
    }


class Adb:
    """Thin wrapper over the adb command line (one device, picked by serial when given)."""

    def __init__(self, serial: str | None = None) -> None:
        self.executable = shutil.which("adb")
        if self.executable is None:
            raise BenchError("adb not found on PATH: install Android platform-tools")
        self.prefix = [self.executable] + (["-s", serial] if serial else [])

    def run(self, *args: str, timeout: float = 600) -> str:
        try:
            done = subprocess.run(
                [*self.prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"adb {' '.join(args[:2])} timed out after {timeout} s") from None
        if done.returncode != 0:
            raise BenchError(f"adb {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def check_device(self) -> str:
        """The phone's model name; BenchError unless exactly one device is ready."""
        state = self.run("get-state", timeout=30).strip()
        if state != "device":
            raise BenchError(
                f"adb device state is {state!r}, expected 'device' (connect and authorise the phone)"
            )
        return self.run("shell", "getprop", "ro.product.model", timeout=30).strip() or "unknown"

    def shell(self, command: list[str], timeout: float = 1800) -> str:
        return self.run("shell", " ".join(shlex.quote(c) for c in command), timeout=timeout)


def benchmark_command(
    binary: str,
    model: str,
    *,
    threads: int,
    delegate: str,
    runs: int,
    warmup_runs: int,
    weight_cache: bool = False,
) -> list[str]:
    """The benchmark_model command line run on the phone.

    ``weight_cache``: XNNPACK's weight cache in memory, so that ops reading one weight (the
    steps of an ``--lstm unrolled`` export) share one packed copy, as LiteRT's CompiledModel
    with ``xnnpack_weight_cache_path`` runs them in an app.
    """
    command = [
        binary,
        f"--graph={model}",
        f"--num_threads={threads}",
        f"--num_runs={runs}",
        f"--warmup_runs={warmup_runs}",
        "--report_peak_memory_footprint=true",
        *DELEGATE_FLAGS[delegate],
    ]
    if weight_cache and delegate == "xnnpack":
        command.append(f"--xnnpack_weight_cache_file_path={IN_MEMORY_WEIGHT_CACHE}")
    return command


def input_facts(model: Path, sample_rate: int) -> tuple[list[int] | None, float | None]:
    """The model's input shape and audio seconds, when a TFLite runtime is installed on the host."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None, None
    try:
        shape = [int(d) for d in Interpreter(model_path=str(model)).get_input_details()[0]["shape"]]
    except (ValueError, RuntimeError, IndexError):
        return None, None
    return shape, shape[-1] / sample_rate


def run(args: argparse.Namespace) -> dict:
    """Push, run every configuration, parse; the report dict."""
    for path, what in ((args.model, "model"), (args.benchmark_binary, "benchmark_model binary")):
        if not path.is_file():
            raise BenchError(f"{path}: {what} not found")
    bad = [t for t in args.threads if t < 1]
    if bad:
        raise BenchError(f"threads must be >= 1, got {bad[0]}")
    adb = Adb(args.serial)
    device = adb.check_device()
    remote_dir = args.device_dir.rstrip("/")
    binary, model = f"{remote_dir}/benchmark_model", f"{remote_dir}/{args.model.name}"
    adb.shell(["mkdir", "-p", remote_dir])
    adb.run("push", str(args.benchmark_binary), binary)
    adb.run("push", str(args.model), model)
    adb.shell(["chmod", "755", binary])
    shape, audio_seconds = input_facts(args.model, args.sample_rate)
    entries, memory = [], None
    for threads in args.threads:
        for delegate in args.delegates:
            command = benchmark_command(
                binary,
                model,
                threads=threads,
                delegate=delegate,
                runs=args.runs,
                warmup_runs=args.warmup_runs,
                weight_cache=args.weight_cache,
            )
            output = adb.shell(command)
            _save_raw(args.raw_dir, f"{args.model.stem}_{delegate}_{threads}t.txt", output)
            entry, found = parse_output(
                output,
                threads=threads,
                delegate=delegate,
                runs=args.runs,
                audio_seconds=audio_seconds,
            )
            entries.append(entry)
            memory = memory or found
    return _report(
        args,
        device=device,
        shape=shape,
        audio_seconds=audio_seconds,
        entries=entries,
        memory=memory,
    )


def _save_raw(folder: Path | None, name: str, text: str) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def _report(
    args: argparse.Namespace,
    *,
    device: str,
    shape,
    audio_seconds,
    entries: list[dict],
    memory: dict,
) -> dict:
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "tool": TOOL,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": {
            "machine": "android",
            "system": "Android",
            "cpu_count": None,
            "python": None,
            "runtime": "benchmark_model" + (", XNNPACK weight cache" if args.weight_cache else ""),
            "emulated": False,
            "device": device,
            "cpu_int8_features": None,
        },
        "settings": {
            "runs": args.runs,
            "warmup_runs": args.warmup_runs,
            "block_runs": None,
            "threads": list(args.threads),
            "input_seed": None,
        },
        "models": [
            {
                "role": "model",
                "path": str(args.model),
                "file_size_bytes": args.model.stat().st_size,
                "input_shape": shape,
                "input_dtype": "float32" if shape else None,
                "sample_rate_hz": args.sample_rate if shape else None,
                "sample_rate_source": "option" if shape else None,
                "audio_seconds": audio_seconds,
                "macs_per_inference": None,
                "macs_by_op": None,
                "uncounted_ops": None,
                "memory": memory,
                "latency": entries,
            }
        ],
        "ratios": None,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the .tflite file")
    parser.add_argument(
        "--benchmark-binary",
        type=Path,
        required=True,
        help="LiteRT benchmark_model for the phone's ABI",
    )
    parser.add_argument(
        "--serial", help="adb serial of the phone (adb devices), when several are attached"
    )
    parser.add_argument(
        "--threads", type=_ints, default=[1], help="comma-separated thread counts (default: 1)"
    )
    parser.add_argument(
        "--delegates",
        type=_delegates,
        default=["xnnpack"],
        help="comma-separated: xnnpack,cpu,gpu,nnapi",
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup-runs", type=int, default=10)
    parser.add_argument(
        "--sample-rate", type=int, default=16000, help="Hz, for the real-time factor"
    )
    parser.add_argument(
        "--weight-cache",
        action="store_true",
        help="XNNPACK's weight cache in memory (--xnnpack_weight_cache_file_path=:memory; "
        "a recent benchmark_model): for --lstm unrolled exports, as LiteRT's CompiledModel runs them",
    )
    parser.add_argument("--device-dir", default="/data/local/tmp/lean_kd")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--raw-dir", type=Path, help="keep benchmark_model's raw output here")
    return parser


def _ints(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _delegates(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [n for n in names if n not in DELEGATE_FLAGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"delegates must be among {sorted(DELEGATE_FLAGS)}, got {text!r}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"android_bench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for e in report["models"][0]["latency"]:
        print(
            f"{e['delegate']:8s} {e['threads']} thread(s): mean {e['mean_ms']:.2f} ms, init {e['init_ms']:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
