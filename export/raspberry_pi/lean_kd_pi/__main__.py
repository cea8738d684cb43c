"""``python -m lean_kd_pi bench|eval|stream``: the command line (see README.md for examples)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lean_kd_runtime.engines import ENGINES
from lean_kd_runtime.errors import ConfigError, RunnerError

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except RunnerError as exc:
        print(f"lean_kd_pi: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("lean_kd_pi: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lean_kd_pi", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="MODE", required=True)
    bench = commands.add_parser("bench", help="latency, memory and size (lean_kd's JSON report)")
    _common(bench)
    bench.add_argument(
        "--baseline", type=Path, help="a second .tflite measured in the same run, interleaved"
    )
    bench.add_argument(
        "--threads", type=_ints, default=[1], help="comma-separated thread counts (default: 1)"
    )
    bench.add_argument(
        "--runs", type=int, default=200, help="timed invokes per model and thread count"
    )
    bench.add_argument("--warmup-runs", type=int, default=10)
    bench.add_argument(
        "--block-runs", type=int, default=10, help="invokes per block when interleaving"
    )
    bench.add_argument(
        "--memory-repeats", type=int, default=3, help="fresh processes per memory figure"
    )
    bench.add_argument(
        "--no-memory", action="store_true", help="skip the memory probe (e.g. under qemu)"
    )
    bench.add_argument("--emulated", action="store_true", help="mark the report as emulated (qemu)")
    bench.add_argument("--json", type=Path, help="write the report here")
    bench.set_defaults(handler=run_bench)

    evaluate = commands.add_parser(
        "eval", help="mAP / accuracy over a folder or CSV manifest of WAV files"
    )
    _common(evaluate)
    _classifier_options(evaluate)
    evaluate.add_argument(
        "--data", type=Path, required=True, help="folder-per-class root, or manifest.csv"
    )
    evaluate.add_argument(
        "--split", choices=("train", "val", "test"), help="only this split (default: all)"
    )
    evaluate.add_argument("--json", type=Path, help="write per-clip scores and metrics here")
    evaluate.set_defaults(handler=run_eval)

    stream = commands.add_parser(
        "stream", help="classify a WAV file or the microphone, window by window"
    )
    _common(stream)
    _classifier_options(stream)
    source = stream.add_mutually_exclusive_group(required=True)
    source.add_argument("--wav", type=Path, help="an audio file")
    source.add_argument("--mic", action="store_true", help="the microphone (needs sounddevice)")
    stream.add_argument("--device", help="sounddevice input device name or number")
    stream.add_argument("--top-k", type=int, default=3)
    stream.add_argument("--max-windows", type=int, help="stop after this many windows (microphone)")
    stream.set_defaults(handler=run_stream)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="the .tflite file")
    parser.add_argument(
        "--sample-rate", type=int, default=16000, help="Hz, when the model has no metadata"
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="interpreter",
        help="interpreter: the classic TFLite Interpreter; compiled: LiteRT's CompiledModel with "
        "XNNPACK's weight cache (needs ai-edge-litert; for --lstm unrolled exports, whose steps "
        "then share one packed weight) (default: interpreter)",
    )


def _classifier_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels", type=Path, help="class names, one per line (or a CSV with display_name)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--hop-seconds", type=float, default=0.5, help="window hop (default: 0.5 s)"
    )
    parser.add_argument("--output-index", type=int, help="which model output holds the scores")
    parser.add_argument("--strict", action="store_true", help="refuse audio at another sample rate")


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 1,2,4, got {text!r}"
        ) from None


def run_bench(args: argparse.Namespace) -> int:
    from lean_kd_runtime.bench import measure_models as bench
    from lean_kd_runtime.bench import summary_lines

    models = [args.model] + ([args.baseline] if args.baseline else [])
    report = bench(
        models,
        threads=args.threads,
        runs=args.runs,
        warmup_runs=args.warmup_runs,
        block_runs=args.block_runs,
        sample_rate=args.sample_rate,
        memory_repeats=0 if args.no_memory else args.memory_repeats,
        emulated=args.emulated,
        engine=args.engine,
    )
    print(file=sys.stderr)  # ends the line of progress dots
    _write_json(args.json, report)
    print("\n".join(summary_lines(report)))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from lean_kd_runtime.runtime import host_info

    from .evaluate import evaluate, list_clips

    clips, dataset_classes = list_clips(args.data, split=args.split)
    classifier, rate, labels = _classifier(args, fallback_labels=dataset_classes)
    result = evaluate(
        classifier,
        clips,
        class_names=labels,
        sample_rate=rate,
        hop_seconds=args.hop_seconds,
        strict=args.strict,
    )
    result["model"] = str(args.model)
    result["host"] = host_info(emulated=False, engine=args.engine)
    _write_json(args.json, result)
    metrics = result["metrics"]
    shown_map = "n/a" if metrics["mAP"] is None else f"{metrics['mAP']:.4f}"
    print(f"{metrics['clips']} clips: mAP {shown_map}, top-1 accuracy {metrics['accuracy']:.4f}")
    return 0


def run_stream(args: argparse.Namespace) -> int:
    from lean_kd_runtime.audio import window_sizes

    from .stream import microphone_reader, stream_lines, wav_reader

    classifier, rate, labels = _classifier(args, fallback_labels=None)
    window, hop = window_sizes(
        window_samples=classifier.window_samples, hop_seconds=args.hop_seconds, sample_rate=rate
    )
    options = dict(
        window=window,
        hop=hop,
        sample_rate=rate,
        labels=labels,
        top_k=args.top_k,
        max_windows=args.max_windows,
    )
    if args.wav is not None:
        reader = wav_reader(args.wav, sample_rate=rate, window=window, hop=hop, strict=args.strict)
        for line in stream_lines(classifier, reader, **options):
            print(line, flush=True)
        return 0
    with microphone_reader(sample_rate=rate, device=args.device) as reader:
        for line in stream_lines(classifier, reader, **options):
            print(line, flush=True)
    return 0


def _classifier(args: argparse.Namespace, *, fallback_labels: list[str] | None):
    """The classifier, the sample rate and class names (--labels, else the model's, else fallback)."""
    from lean_kd_runtime.runtime import Classifier, read_labels
    from lean_kd_runtime.tflite_metadata import model_audio_facts
    from lean_kd_runtime.timing import check_threads, load_model

    if args.sample_rate <= 0:
        raise ConfigError(f"--sample-rate must be > 0, got {args.sample_rate}")
    (threads,) = check_threads([args.threads])
    rate, _, embedded = model_audio_facts(args.model, default_rate=args.sample_rate)
    labels = read_labels(args.labels) if args.labels else embedded
    model = load_model(args.model, threads=threads, sample_rate_hz=rate, engine=args.engine)
    classifier = Classifier(
        model, num_classes=len(labels) if labels else None, output_index=args.output_index
    )
    if labels is None and fallback_labels is not None:
        if len(fallback_labels) != classifier.num_classes:
            raise ConfigError(
                f"{args.model} has {classifier.num_classes} scores, no label file, and the dataset "
                f"has {len(fallback_labels)} classes: pass --labels"
            )
        logging.warning(
            "no labels in the model and no --labels: assuming the dataset's class order %s",
            fallback_labels[:5],
        )
        labels = fallback_labels
    labels = labels or [f"class {i}" for i in range(classifier.num_classes)]
    if len(labels) != classifier.num_classes:
        raise ConfigError(
            f"{len(labels)} class names for a model output of {classifier.num_classes} scores"
        )
    return classifier, rate, labels


def _write_json(path: Path | None, value: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
        logging.info("wrote %s", path)


if __name__ == "__main__":
    sys.exit(main())
