"""``lean-kd export``: a Keras model file -> TFLite with metadata, in one quantization mode."""

from __future__ import annotations

import argparse
from pathlib import Path

QUANT_CHOICES = (
    "float32",
    "float16",
    "dynamic",
    "int8",
    "int16x8",
)  # lean_kd.export.quantize.QUANT_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="convert a Keras model to TFLite (waveform in, scores out, metadata for MediaPipe)",
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="Keras model: .keras, .h5 or SavedModel folder"
    )
    parser.add_argument(
        "--quant", choices=QUANT_CHOICES, default="float32", help="quantization mode"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output .tflite file (its folder must exist)"
    )
    parser.add_argument(
        "--labels", type=Path, help="class names, one per line (default: the calibration dataset's)"
    )
    parser.add_argument(
        "--calibration-data",
        nargs=2,
        metavar=("DATASET", "ROOT"),
        help="dataset adapter name and folder whose train split calibrates int8 / int16x8",
    )
    parser.add_argument(
        "--calibration-count", type=int, default=200, help="calibration clips (default 200)"
    )
    parser.add_argument(
        "--sample-rate", type=int, help="default: the model's own (spec or log-mel layer)"
    )
    parser.add_argument(
        "--frontend-int8",
        action="store_true",
        help="int8: quantize the log-mel frontend too (default keeps it float; see "
        "benchmarks/results/export_frontend.md)",
    )
    parser.add_argument(
        "--float-ops",
        nargs="+",
        default=[],
        metavar="OP",
        help="int8: TFLite op types to keep float, e.g. UNIDIRECTIONAL_SEQUENCE_LSTM",
    )
    parser.add_argument(
        "--multi-label", action="store_true", help="sigmoid scores (default: the model's spec)"
    )
    parser.add_argument(
        "--qat", action="store_true", help="quantization-aware training before int8 export"
    )
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from lean_kd.errors import LeanKDError

    if args.qat:
        raise LeanKDError(
            "--qat is not yet available: quantization-aware training needs the Distiller "
            "(issue 6); export a post-training mode (--quant int8) for now"
        )
    if args.quant in ("int8", "int16x8") and not args.calibration_data:
        raise LeanKDError(
            f"--quant {args.quant} needs calibration audio: pass --calibration-data DATASET ROOT"
        )
    from lean_kd.export.loading import load_keras_model, model_sample_rate, read_labels
    from lean_kd.export.representative import representative_from_index
    from lean_kd.export.tflite import export_tflite, input_samples

    model = load_keras_model(args.model)
    sample_rate = args.sample_rate or model_sample_rate(model)
    index = _calibration_index(args)
    labels = read_labels(args.labels) if args.labels else list(index.class_names) if index else None
    if labels is None:
        raise LeanKDError(
            "No class names: pass --labels FILE (or --calibration-data to use the dataset's)"
        )
    representative = None
    if index is not None:
        representative = representative_from_index(
            index,
            sample_rate=sample_rate,
            num_samples=input_samples(model),
            count=args.calibration_count,
        )
    result = export_tflite(
        model,
        quant=args.quant,
        out=args.out,
        labels=labels,
        sample_rate=sample_rate,
        representative=representative,
        num_calibration=args.calibration_count,
        keep_frontend_float=not args.frontend_int8,
        float_ops=tuple(args.float_ops),
        multi_label=True if args.multi_label else None,
    )
    print(
        f"Wrote {result.path}: {result.size_bytes} bytes ({result.size_mb:.2f} MB), {result.quant}"
    )
    print(f"Ops: {result.summary.format()}")
    if result.summary.float_ops and result.quant in ("int8", "int16x8"):
        print(f"Float ops: {', '.join(result.summary.float_ops)}")
    return 0


def _calibration_index(args: argparse.Namespace):
    if not args.calibration_data:
        return None
    from lean_kd.data.adapters import load_index

    name, root = args.calibration_data
    return load_index(name, Path(root))
