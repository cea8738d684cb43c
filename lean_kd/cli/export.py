"""``lean-kd export``: a Keras model file -> TFLite with metadata, in one quantization mode.

``--qat`` first fine-tunes the model with quantization-aware training and the recipe's
distillation loss (teacher online with ``--teacher`` or from ``--cache``), then exports int8,
calibrated on the recipe's dataset unless ``--calibration-data`` is given::

    lean-kd export --model best.keras --quant int8 --qat --config RECIPE.yaml \\
        --teacher teacher.keras [--qat-epochs N] --out model.tflite
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_kd.cli.train import add_strategy
from lean_kd.export.modes import DFT_MODES, LSTM_MODES, QUANT_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="convert a Keras model to TFLite (waveform in, scores out, metadata for MediaPipe)",
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="Keras model: .keras, .h5 or SavedModel folder"
    )
    parser.add_argument(
        "--quant",
        choices=QUANT_MODES,
        default="float32",
        help="quantization mode: int8 = integer conv / dense trunk (calibrated); dynamic = int8 "
        "weights with float activations quantized on the fly, the official YAMNet file's form "
        "(faster than int8 on some CPUs: benchmarks/results/summary_xeon_amx.md)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output .tflite file (its folder must exist)"
    )
    parser.add_argument(
        "--labels",
        type=Path,
        help="class names, one per line (default: those saved with the checkpoint by "
        "lean-kd train/distill, else the calibration dataset's)",
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
    _add_int8_arguments(parser)
    parser.add_argument(
        "--multi-label", action="store_true", help="sigmoid scores (default: the model's spec)"
    )
    _add_qat_arguments(parser)
    parser.set_defaults(handler=run_export)


def _add_int8_arguments(parser: argparse.ArgumentParser) -> None:
    """How an int8 export treats the frontend, chosen ops, LSTMs and the DFT."""
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
        help="int8: TFLite op types to keep float, e.g. SOFTMAX",
    )
    parser.add_argument(
        "--no-equalize-channels",
        dest="equalize_channels",
        action="store_false",
        help="int8: skip the default rescaling of each BatchNorm -> ReLU channel and the weights "
        "that read it, which lets one activation scale fit every channel (same float function; "
        "see lean_kd/export/equalize.py)",
    )
    parser.add_argument(
        "--dynamic-layers",
        nargs="+",
        default=[],
        metavar="NAME",
        help="int8: layers, or blocks such as layer13 (all its layers), kept out of full int8: "
        "int8 weights, activations quantized on the fly (where one calibrated scale per tensor "
        "does not fit, e.g. YAMNet's last blocks on environmental sound)",
    )
    parser.add_argument(
        "--lstm",
        choices=LSTM_MODES,
        default="auto",
        help="int8 and dynamic: how LSTMs are exported: unrolled = batched input projection + "
        "unrolled recurrence on XNNPACK, hybrid = fused op with int8 weights and float "
        "activations, int8 = full integer, float; auto (default) = unrolled where XNNPACK's "
        "per-step copies of the recurrent weights stay small, else hybrid. For LiteRT's "
        "CompiledModel with XNNPACK's weight cache (lean-kd bench --engine compiled), where "
        "the steps share one copy, unrolled is LEAN's fastest form",
    )
    parser.add_argument(
        "--dft",
        choices=DFT_MODES,
        default="fft",
        help="int8 and dynamic: the log-mel frontend's DFT as fft (default): two float FFT stages "
        "in matrix products that XNNPACK runs (exact); rfft: RFFT2D + COMPLEX_ABS (exact, "
        "builtin kernels, slower); int8: one matrix product with int8 weights, as the official "
        "YAMNet's frontend (quantizes each frame to 8 bits; see "
        "benchmarks/results/latency_profile.md)",
    )


def _add_qat_arguments(parser: argparse.ArgumentParser) -> None:
    """``--qat`` and the recipe, teacher and schedule of the fine-tune."""
    qat = parser.add_argument_group(
        "quantization-aware training (--qat)",
        "fine-tune the student with fake-quantized conv/dense layers and the recipe's "
        "distillation loss, then export int8 (see lean_kd/training/qat.py)",
    )
    qat.add_argument(
        "--qat", action="store_true", help="QAT with distillation before the int8 export"
    )
    qat.add_argument(
        "--config", type=Path, help="recipe YAML: data, pipeline, loss, training (with --qat)"
    )
    qat.add_argument("--teacher", type=Path, help="teacher checkpoint (online teacher)")
    qat.add_argument("--cache", type=Path, help="teacher cache folder (instead of --teacher)")
    add_strategy(qat)
    qat.add_argument("--qat-epochs", type=int, default=3, help="fine-tune epochs (default 3)")
    qat.add_argument(
        "--qat-learning-rate",
        type=float,
        help="default: a tenth of the recipe's training.learning_rate",
    )
    qat.add_argument(
        "--qat-dir",
        type=Path,
        help="run folder of the fine-tune (checkpoints, history); default: OUT without its "
        "suffix + '.qat'",
    )


def run_export(args: argparse.Namespace) -> int:
    from lean_kd.errors import LeanKDError

    if args.qat:
        _check_qat_args(args)
    elif args.quant in ("int8", "int16x8") and not args.calibration_data:
        raise LeanKDError(
            f"--quant {args.quant} needs calibration audio: pass --calibration-data DATASET ROOT"
        )
    from lean_kd.export.checkpoint import export_checkpoint
    from lean_kd.export.loading import load_keras_model, model_sample_rate
    from lean_kd.export.tflite import check_output_path
    from lean_kd.models.contract import class_names
    from lean_kd.training.distribute import is_chief

    check_output_path(args.out)  # before a fine-tune, not after it
    strategy, recipe = _qat_strategy(args) if args.qat else (None, None)  # before TensorFlow starts
    model = load_keras_model(args.model)
    sample_rate = args.sample_rate or model_sample_rate(model)
    stored_labels = class_names(model)
    index = _calibration_index(args)
    if args.qat:
        model, recipe_index = _qat_model(args, recipe, strategy, model)
        index = recipe_index if index is None else index
        if not is_chief(strategy):
            print(f"Worker done: the chief exports {args.out}")
            return 0
    labels = _labels(args, stored_labels, index)
    result = export_checkpoint(
        model,
        quant=args.quant,
        out=args.out,
        index=index,
        labels=labels,
        sample_rate=sample_rate,
        calibration_count=args.calibration_count,
        keep_frontend_float=not args.frontend_int8,
        float_ops=tuple(args.float_ops),
        equalize_channels=args.equalize_channels,
        dynamic_layers=tuple(args.dynamic_layers),
        lstm=args.lstm,
        dft=args.dft,
        multi_label=True if args.multi_label else None,
    )
    print(
        f"Wrote {result.path}: {result.size_bytes} bytes ({result.size_mb:.2f} MB), {result.quant}"
    )
    print(f"Ops: {result.summary.format()}")
    if result.summary.float_ops and result.quant in ("int8", "int16x8"):
        print(f"Float ops: {', '.join(result.summary.float_ops)}")
    if result.lstm:
        print(f"LSTMs: {result.lstm} (--lstm), DFT: {result.dft or 'n/a'} (--dft)")
    return 0


def _labels(args: argparse.Namespace, stored: tuple[str, ...] | None, index) -> list[str]:
    """--labels, else the class names saved with the checkpoint, else the calibration data's."""
    from lean_kd.errors import LeanKDError
    from lean_kd_runtime.runtime import read_labels

    if args.labels:
        return read_labels(args.labels)
    if stored or index:
        return list(stored or index.class_names)
    raise LeanKDError(
        f"No class names: {args.model} carries none (lean-kd train and distill save them with "
        "each checkpoint); pass --labels FILE (or --calibration-data to use the dataset's)"
    )


def _check_qat_args(args: argparse.Namespace) -> None:
    from lean_kd.errors import ConfigError

    if args.quant != "int8":
        raise ConfigError(
            f"--qat trains for full int8: pass --quant int8 (got --quant {args.quant})"
        )
    if args.config is None:
        raise ConfigError(
            "--qat needs --config RECIPE.yaml (its data, loss and training settings drive the "
            "fine-tune)"
        )
    if args.teacher and args.cache:
        raise ConfigError("Pass either --teacher or --cache, not both")
    if args.qat_epochs <= 0:
        raise ConfigError(f"--qat-epochs must be > 0, got {args.qat_epochs}")


def _qat_strategy(args: argparse.Namespace):
    """The fine-tune's tf.distribute strategy and the recipe with its global batch."""
    from lean_kd.run.experiment import distributed_recipe
    from lean_kd.run.recipe import load_recipe

    return distributed_recipe(load_recipe(args.config), args.strategy)


def _qat_model(args: argparse.Namespace, recipe, strategy, student):
    """The QAT-fine-tuned student and the recipe's dataset index."""
    from lean_kd.run.experiment import qat_from_recipe

    run_dir = args.qat_dir or args.out.with_suffix(".qat")
    model, index = qat_from_recipe(
        recipe,
        student,
        run_dir,
        epochs=args.qat_epochs,
        learning_rate=args.qat_learning_rate,
        teacher_path=args.teacher,
        cache_dir=args.cache,
        strategy=strategy,
    )
    print(f"QAT fine-tune: checkpoints in {run_dir}")
    return model, index


def _calibration_index(args: argparse.Namespace):
    if not args.calibration_data:
        return None
    from lean_kd.data.adapters import load_index

    name, root = args.calibration_data
    return load_index(name, Path(root))
