"""Full-int8 export: what keeping the log-mel frontend (and the LSTM) in float buys.

Trains two students briefly on the embedded synthetic dataset (a small log-mel CNN, and the
zoo's LEAN with 2 x BiLSTM(64) and the official YAMNet weights from ../shared when present;
the zoo's ``mobilenet_v2`` is left out because its batch norms give a constant output in
inference mode after so few steps), exports each as float32 and in full int8
with the frontend quantized, the frontend kept float (the default) and, for LEAN, the LSTMs
hybrid (the default), integer or float, then compares every TFLite file with its Keras model
on the test clips at their own level ("normal", peaks -24..-1 dBFS) and scaled to a -40 dBFS
peak ("quiet"):

- log-mel error: the LOG op's output in the TFLite graph (dequantized when int8) against the
  float reference ``log(mel + offset)`` of lean_kd.audio.features;
- score error: max and mean abs difference of the scores, top-1 agreement, accuracy of both.

    .venv/bin/python benchmarks/export_frontend.py [--clips-per-class 30] [--epochs 25]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from lean_kd._keras import keras
from lean_kd.audio.features import LogMelSpectrogram, log_mel
from lean_kd.audio.io import load_audio
from lean_kd.audio.windows import fix_length
from lean_kd.data.adapters import load_index
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.export.quantize import lstm_directions
from lean_kd.export.representative import calibration_set
from lean_kd.export.tflite import convert
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd.models.contract import (
    FrontendOptions,
    ModelSpec,
    contract_outputs,
    log_mel_image,
    waveform_input,
)
from lean_kd.models.lean import LEANConfig, build_lean
from lean_kd_runtime.tflite_graph import operator_name

RESULTS = Path(__file__).resolve().parent / "results" / "export_frontend.md"
SHARED_YAMNET = (
    Path(__file__).resolve().parents[2] / "shared" / "pretrained" / "yamnet" / "yamnet.tflite"
)
QUIET_PEAK_DB = -40.0
VARIANTS = {  # name -> (quant, keep_frontend_float, lstm)
    "float32": ("float32", True, "hybrid"),
    "int8, frontend int8": ("int8", False, "hybrid"),
    "int8, frontend float (default; LSTMs hybrid)": ("int8", True, "hybrid"),
    "int8, frontend float, integer LSTMs": ("int8", True, "int8"),
    "int8, frontend float, float LSTMs": ("int8", True, "float"),
}
LSTM_VARIANTS = ("int8, frontend float, integer LSTMs", "int8, frontend float, float LSTMs")


@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    variant: str
    size_bytes: int
    level: str
    log_mel_max: float
    log_mel_mean: float
    score_max_diff: float
    score_mean_diff: float
    top1_agreement: float
    keras_accuracy: float
    tflite_accuracy: float


def crops(index, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Centre 1 s crops ``[N, 16000]`` and class ids of one split."""
    examples = index.split(split)
    waves = [fix_length(load_audio(e.path, sample_rate=16000), length=16000) for e in examples]
    return np.stack(waves), np.array([e.labels[0] for e in examples])


def log_mel_cnn(spec: ModelSpec) -> keras.Model:
    """A small log-mel CNN without batch norm (learns in a few hundred steps)."""
    waveform = waveform_input(spec)
    x = log_mel_image(waveform, spec, FrontendOptions())  # [B, 98, 64, 1]
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, activation="relu")(x)
    x = keras.layers.AveragePooling2D(pool_size=(x.shape[1], 1))(x)  # [B, 1, F, 32]: time mean
    embeddings = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(x))
    logits = keras.layers.Dense(spec.num_classes)(embeddings)
    outputs = contract_outputs(spec, logits=logits, embeddings=embeddings)
    return keras.Model(waveform, outputs, name="log_mel_cnn")


def students(num_classes: int) -> dict[str, keras.Model]:
    """The CNN, and LEAN with 2 x BiLSTM(64): YAMNet weights from ../shared when present.

    Without pretrained weights the YAMNet branch's activations vanish (about 1e-18 at
    layer14 for a random init), so that LEAN's scores would not depend on the log-mel at all.
    """
    spec = ModelSpec(num_classes)
    small = {"lstm_units": 64, "projection_units": 64}
    if SHARED_YAMNET.is_file():
        lean = (
            "lean (pretrained YAMNet, 2 x BiLSTM(64))",
            LEANConfig(yamnet_weights=str(SHARED_YAMNET), **small),
        )
    else:
        lean = ("lean (random init, 2 x BiLSTM(64))", LEANConfig(pretrained=False, **small))
    return {
        "log-mel CNN (2 conv)": log_mel_cnn(spec),
        lean[0]: build_lean(spec, lean[1], name="lean"),
    }


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss={"logits": loss})
    model.fit(x, {"logits": y}, epochs=epochs, batch_size=16, verbose=0, shuffle=True)


def log_tensor(model_bytes: bytes) -> int:
    """Index of the first LOG op's output tensor (the frontend's log) in the main subgraph."""
    root = schema.Model.GetRootAs(model_bytes, 0)
    codes = [root.OperatorCodes(i) for i in range(root.OperatorCodesLength())]
    graph = root.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = codes[op.OpcodeIndex()]
        if operator_name(code) == "LOG":
            return op.Outputs(0)
    raise ValueError("the model has no LOG op")


def tflite_log_mel(model_bytes: bytes, windows: np.ndarray) -> np.ndarray:
    """The frontend's LOG output for each window, dequantized: ``[N, frames, mel_bins]``."""
    tensor = log_tensor(model_bytes)
    interpreter = Interpreter(
        model_content=model_bytes, num_threads=1, experimental_preserve_all_tensors=True
    )
    interpreter.allocate_tensors()
    (detail,) = [d for d in interpreter.get_tensor_details() if d["index"] == tensor]
    scale, zero = detail["quantization"]
    out = []
    for window in windows:
        interpreter.reset_all_variables()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], window[None])
        interpreter.invoke()
        value = interpreter.get_tensor(tensor)[0].astype(np.float32)
        out.append((value - zero) * scale if scale else value)
    return np.stack(out)


def measure(
    name: str, model: keras.Model, data: dict, calibration: list, variant: str
) -> list[Row]:
    quant, keep_float, lstm = VARIANTS[variant]
    model_bytes = convert(
        model,
        quant=quant,
        calibration=calibration if quant == "int8" else None,
        keep_frontend_float=keep_float,
        lstm=lstm,
    )
    (frontend,) = [m for m in model.submodules if isinstance(m, LogMelSpectrogram)]
    reference_config = dataclasses.replace(frontend.config, mean_normalize=False)
    rows = []
    for level, (x, y) in data.items():
        expected, actual = keras_scores(model, x), tflite_scores(model_bytes, x)
        mel_error = np.abs(tflite_log_mel(model_bytes, x) - log_mel(x, reference_config).numpy())
        rows.append(
            Row(
                name,
                variant,
                len(model_bytes),
                level,
                float(mel_error.max()),
                float(mel_error.mean()),
                float(np.abs(expected - actual).max()),
                float(np.abs(expected - actual).mean()),
                float(np.mean(expected.argmax(1) == actual.argmax(1))),
                float(np.mean(expected.argmax(1) == y)),
                float(np.mean(actual.argmax(1) == y)),
            )
        )
    return rows


def to_quiet(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x), axis=1, keepdims=True)
    return (x / np.maximum(peak, 1e-9) * 10 ** (QUIET_PEAK_DB / 20)).astype(np.float32)


def run(args: argparse.Namespace) -> tuple[list[Row], dict]:
    with tempfile.TemporaryDirectory() as folder:
        synthesize(Path(folder), SynthConfig(clips_per_class=args.clips_per_class), progress=False)
        index = load_index("csv", Path(folder))
        train_x, train_y = crops(index, "train")
        test_x, test_y = crops(index, "test")
    calibration = calibration_set(
        train_x, num_samples=16000, sample_rate=16000, count=args.calibration
    )
    data = {"normal": (test_x, test_y), "quiet": (to_quiet(test_x), test_y)}
    rows, seconds = [], {}
    for name, model in students(index.num_classes).items():
        start = time.perf_counter()
        train(model, train_x, train_y, args.epochs)
        for variant in VARIANTS:
            if variant in LSTM_VARIANTS and not lstm_directions(model):
                continue
            rows += measure(name, model, data, calibration, variant)
        seconds[name] = round(time.perf_counter() - start, 1)
    facts = {
        "train clips": len(train_x),
        "test clips": len(test_x),
        "calibration": len(calibration),
        "seconds": seconds,
    }
    return rows, facts


COLUMNS = (
    "model", "variant", "size (bytes)", "input", "log-mel max err", "log-mel mean err",
    "score max diff", "score mean diff", "top-1 agree", "acc Keras", "acc TFLite",
)  # fmt: skip


READING = (
    "How to read it: the log-mel columns show what int8 does to the frontend itself (under full "
    "int8 the mel energies are quantized with one scale before the LOG, so every band below "
    "one quantization step collapses to the same value, at any input level); the score columns "
    "show how much of that reaches the output. The exporter keeps the frontend float by default "
    "(`keep_frontend_float=True`, `lean-kd export --frontend-int8` to turn it off): it costs the "
    "frontend's float ops and mel matrix in size and nothing in accuracy. The LSTM rows compare "
    "`lstm='hybrid'` (the default: int8 weights, float activations), `'int8'` (integer "
    "kernel) and `'float'`. The waveform itself always reaches the frontend and the LSTM "
    "patches unquantized."
)


def markdown(rows: list[Row], facts: dict, args: argparse.Namespace) -> str:
    intro = (
        f"Made by `benchmarks/export_frontend.py` (see its docstring for the method). Synthetic "
        f"dataset, {args.clips_per_class} clips per class; {facts['train clips']} training crops "
        f"({args.epochs} epochs), {facts['test clips']} test crops of 1 s, "
        f"{facts['calibration']} calibration crops. 'quiet' = the test crops scaled to a "
        f"{QUIET_PEAK_DB:g} dBFS peak. Errors are against the Keras model (scores) and the float "
        f"log-mel reference (log-mel, natural log units). {platform.machine()}; seconds per "
        f"model (train + exports + evaluation): {facts['seconds']}."
    )
    lines = [
        "# Full-int8 export: frontend (and LSTM) in float or not",
        "",
        intro,
        "",
        READING,
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---:|---|" + "---:|" * (len(COLUMNS) - 4),
    ]
    for r in rows:
        cells = (
            r.model, r.variant, r.size_bytes, r.level, f"{r.log_mel_max:.2e}",
            f"{r.log_mel_mean:.2e}", f"{r.score_max_diff:.4f}", f"{r.score_mean_diff:.4f}",
            f"{r.top1_agreement:.3f}", f"{r.keras_accuracy:.3f}", f"{r.tflite_accuracy:.3f}",
        )  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-class", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--calibration", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rows, facts = run(args)
    args.out.write_text(markdown(rows, facts, args))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
