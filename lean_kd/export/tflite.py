"""Keras contract model -> TFLite file that takes a waveform and returns class scores.

The exported graph is a concrete function of the model with a fixed batch of one:
``waveform [1, samples] float32 -> scores [1, num_classes] float32`` (softmax, or sigmoid for
multi-label models, applied in the graph; the embeddings are not exported). Batch one is what
the converter needs to fuse LSTMs (tensorflow#62849) and what streaming device code feeds.
Only builtin ops are allowed (never SELECT_TF_OPS): a model that needs others fails with the
list of those ops. Every file carries the audio metadata of :mod:`lean_kd.export.metadata`
and is written atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.audio.features import LogMelSpectrogram
from lean_kd.errors import ConfigError, ExportError, ModelError
from lean_kd.export.equalize import equalize_channel_ranges, find_chains
from lean_kd.export.hybrid import hybridize_lstms, hybridize_weights
from lean_kd.export.metadata import ModelInfo, add_metadata
from lean_kd.export.modes import DFT_TRANSFORMS, LAYOUT_MODES
from lean_kd.export.ops import OpSummary, check_graph, summarize_ops, unsupported_ops
from lean_kd.export.quantize import (
    CALIBRATED_MODES,
    check_mode,
    configure,
    frontend_layers,
    int8_float_ops,
    int8_with_float_parts,
    layer_nodes,
    lstm_directions,
    repair_scales,
    share_quantization_vectors,
)
from lean_kd.export.representative import INPUT_NAME, calibration_set, dataset_fn
from lean_kd.export.rewrite import export_copy, transform_scopes, unrolled_layers
from lean_kd.export.unrolled_lstm import resolve_lstm_mode, shorten_names
from lean_kd.files import write_atomic
from lean_kd.models.contract import ModelSpec, model_spec

logger = logging.getLogger(__name__)

OUTPUT_NAME = "scores"
SHARED_VECTOR_MODES = ("dynamic", "int8", "int16x8")  # per-channel quantization parameters


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export_tflite` wrote and how long each step took."""

    path: Path
    size_bytes: int
    quant: str
    summary: OpSummary
    sample_rate: int
    num_samples: int
    labels: tuple[str, ...]
    multi_label: bool
    keep_frontend_float: bool  # int8 / dynamic: the log-mel frontend's ops stayed float
    float_ops: tuple[str, ...]  # int8 only: op types the converter kept float
    lstm: str  # int8 / dynamic with LSTMs: how they are exported (LSTM_MODES); "" otherwise
    dft: str  # int8 / dynamic with a log-mel frontend: its DFT's form (DFT_MODES); "" otherwise
    dynamic_layers: tuple[str, ...]  # int8: layers / blocks with on-the-fly activation quantization
    equalize_channels: bool  # int8 / int16x8: channel ranges equalized before calibration
    calibration_count: int  # waveforms used to calibrate (0 without calibration)
    timings_seconds: dict[str, float]

    @property
    def ops(self) -> tuple[str, ...]:
        return self.summary.ops

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def export_tflite(
    model: keras.Model,
    *,
    quant: str,
    out: str | Path,
    labels: list[str],
    sample_rate: int,
    representative: Iterable[Any] | None = None,
    num_calibration: int = 200,
    keep_frontend_float: bool = True,
    float_ops: tuple[str, ...] = (),
    lstm: str = "auto",
    dft: str = "fft",
    equalize_channels: bool = True,
    dynamic_layers: tuple[str, ...] = (),
    multi_label: bool | None = None,
    info: ModelInfo = ModelInfo(),
) -> ExportResult:
    """Convert ``model`` in mode ``quant``, add metadata, write ``out`` atomically.

    ``representative``: calibration waveforms for int8 / int16x8, the first ``num_calibration``
    used. int8 only: ``float_ops`` are op types kept float (besides those LSTM models always
    keep float); int8 and dynamic: ``lstm`` and ``dft`` how LSTMs and the DFT are stored
    (:mod:`.quantize`); int8 and int16x8: ``equalize_channels`` (default) rescales channel
    ranges first (:mod:`.equalize`); int8: ``dynamic_layers`` (names, or ``block`` for every
    ``block/...`` layer) stay out of full int8 with int8 weights and activations quantized on
    the fly, as a dynamic-range export runs them (:func:`dynamic_layer_names`).
    ``multi_label`` None takes the model's :class:`ModelSpec` (softmax without one). Raises
    ExportError (ConfigError for an unknown mode) before converting; never a partial ``out``.
    """
    out = Path(out)
    check_output_path(out)
    check_mode(quant, model, float_ops, lstm, dft)
    num_samples, spec = model_facts(model, labels=labels, sample_rate=sample_rate)
    lstm = resolve_lstm_mode(model, lstm)
    multi_label = (spec.multi_label if spec else False) if multi_label is None else multi_label
    options = dict(
        keep_frontend_float=keep_frontend_float, float_ops=tuple(float_ops), lstm=lstm, dft=dft,
        dynamic_layers=tuple(dynamic_layers),
    )  # fmt: skip
    equalize_channels = equalize_channels and quant in CALIBRATED_MODES
    timings: dict[str, float] = {}
    with _timed(timings, "calibration_data"):
        calibration = _calibration(quant, representative, num_samples, sample_rate, num_calibration)
    with _timed(timings, "convert"):
        flatbuffer = convert(
            model, quant=quant, calibration=calibration, multi_label=multi_label,
            equalize_channels=equalize_channels, **options,
        )  # fmt: skip
    with _timed(timings, "metadata_and_write"):
        packed = _write_model(
            flatbuffer, out, quant=quant, labels=labels, sample_rate=sample_rate, info=info
        )
    result = ExportResult(
        path=out,
        size_bytes=len(packed),
        quant=quant,
        summary=summarize_ops(flatbuffer),
        sample_rate=sample_rate,
        num_samples=num_samples,
        labels=tuple(labels),
        multi_label=multi_label,
        **_layout_facts(model, quant, **options),
        equalize_channels=equalize_channels,
        calibration_count=len(calibration or ()),
        timings_seconds=timings,
    )
    logger.info("Wrote %s (%s, %d bytes): %s", out, quant, len(packed), result.summary.format())
    return result


def _calibration(
    quant: str, representative: Iterable[Any] | None, num_samples: int, sample_rate: int, count: int
) -> list[np.ndarray] | None:
    """The checked calibration windows when ``quant`` calibrates and waveforms were given."""
    if quant not in CALIBRATED_MODES or representative is None:
        return None
    return calibration_set(
        representative, num_samples=num_samples, sample_rate=sample_rate, count=count
    )


def _write_model(
    flatbuffer: bytes,
    out: Path,
    *,
    quant: str,
    labels: list[str],
    sample_rate: int,
    info: ModelInfo,
) -> bytes:
    """Add the audio metadata, share per-channel vectors where the mode has them, write ``out``
    atomically; the bytes written."""
    packed = add_metadata(flatbuffer, labels=list(labels), sample_rate=sample_rate, info=info)
    if quant in SHARED_VECTOR_MODES:
        packed = share_quantization_vectors(packed)
    write_atomic(out, packed, error=ExportError)
    return packed


def _layout_facts(
    model: keras.Model,
    quant: str,
    *,
    keep_frontend_float: bool,
    float_ops: tuple[str, ...],
    lstm: str,
    dft: str,
    dynamic_layers: tuple[str, ...],
) -> dict[str, Any]:
    """The ExportResult fields that describe an int8 or dynamic export (empty for the others)."""
    if quant not in LAYOUT_MODES:
        return {
            "keep_frontend_float": False, "float_ops": (), "lstm": "", "dft": "",
            "dynamic_layers": (),
        }  # fmt: skip
    int8 = quant == "int8"
    return {
        "keep_frontend_float": (keep_frontend_float or not int8) and bool(frontend_layers(model)),
        "float_ops": int8_float_ops(model, float_ops, lstm) if int8 else (),
        "lstm": lstm if lstm_directions(model) else "",
        "dft": dft if _log_mels(model) else "",
        "dynamic_layers": dynamic_layers if int8 else (),
    }


def convert(
    model: keras.Model,
    *,
    quant: str,
    calibration: list[np.ndarray] | None = None,
    keep_frontend_float: bool = True,
    float_ops: tuple[str, ...] = (),
    lstm: str = "auto",
    dft: str = "fft",
    equalize_channels: bool = True,
    dynamic_layers: tuple[str, ...] = (),
    multi_label: bool = False,
) -> bytes:
    """The checked TFLite flatbuffer of ``model`` in mode ``quant`` (no metadata).

    ``calibration``: checked ``[1, samples]`` waveforms (:func:`calibration_set`), needed by
    the calibrated modes, which with ``equalize_channels`` first rescale a copy of the model
    (:func:`lean_kd.export.equalize.equalize_channel_ranges`). Raises ExportError listing ops that are not builtin, and when the
    graph has loops, several subgraphs or unfused LSTMs.
    """
    check_mode(quant, model, float_ops, lstm, dft)
    lstm = resolve_lstm_mode(model, lstm)
    if quant in CALIBRATED_MODES and not calibration:
        raise ExportError(
            f"Quantization mode {quant} needs a representative dataset (calibration waveforms)"
        )
    num_samples = input_samples(model)
    exported = _exported_graph(model, quant=quant, lstm=lstm, dft=dft)
    if equalize_channels and quant in CALIBRATED_MODES and find_chains(exported):
        exported = export_copy(exported) if exported is model else exported
        chains = equalize_channel_ranges(exported, calibration)
        logger.info("Equalized the channel ranges of %d normalisation -> ReLU chain(s)", chains)
    converter = _converter(
        exported, serving_function(exported, num_samples=num_samples, multi_label=multi_label)
    )
    dataset = dataset_fn(calibration) if calibration else None
    configure(converter, quant, dataset)
    layers = frontend_layers(exported) if quant == "int8" and keep_frontend_float else []
    recurrent, dft_ops = unrolled_layers(exported), transform_scopes(exported, "dft")
    fft_ops = transform_scopes(exported, "fft")  # float even when the frontend is quantized
    dynamic = dynamic_layer_names(exported, dynamic_layers) if quant == "int8" else []
    float_layers = layers + recurrent + fft_ops + dynamic if quant == "int8" else []
    float_ops = int8_float_ops(model, tuple(float_ops), lstm) if quant == "int8" else ()
    flatbuffer = _run_converter(converter, quant, dataset, layers=float_layers, float_ops=float_ops)
    if quant in CALIBRATED_MODES:
        flatbuffer, _ = repair_scales(flatbuffer)
    if quant in LAYOUT_MODES and lstm == "hybrid":
        flatbuffer, _ = hybridize_lstms(flatbuffer)
    if quant == "dynamic":  # every conv / dense weight but the frontend's (the int8 DFT's is)
        float_nodes = set(layer_nodes(flatbuffer, frontend_layers(exported)))
        float_nodes -= set(layer_nodes(flatbuffer, dft_ops))
        flatbuffer, _ = hybridize_weights(flatbuffer, keep_float=float_nodes)
    elif recurrent or dft_ops or dynamic:
        names = set(layer_nodes(flatbuffer, recurrent + dft_ops + dynamic))
        flatbuffer, _ = hybridize_weights(flatbuffer, outputs=names)
    if recurrent:
        flatbuffer = shorten_names(flatbuffer, set(layer_nodes(flatbuffer, recurrent)))
    check_graph(summarize_ops(flatbuffer), lstm_directions=lstm_directions(exported))
    return flatbuffer


def dynamic_layer_names(model: keras.Model, wanted: tuple[str, ...]) -> list[str]:
    """The model's layers named in ``wanted``, a name standing for itself and, as a block, for
    every layer under it (``layer13``: ``layer13/depthwise_conv``, ...). ConfigError for a name
    that matches no layer.

    Why: where a block's activations defeat one int8 scale per tensor (YAMNet's last blocks,
    whose channels and positions span hundreds of times each other's ranges on environmental
    sound), quantizing each input on the fly keeps them; the rest of the model stays int8."""
    names = [layer.name for layer in model.layers]
    missing = [w for w in wanted if not any(n == w or n.startswith(f"{w}/") for n in names)]
    if missing:
        raise ConfigError(f"dynamic_layers: no layer or block named {missing} in {model.name!r}")
    return [n for n in names if any(n == w or n.startswith(f"{w}/") for w in wanted)]


def _exported_graph(model: keras.Model, *, quant: str, lstm: str, dft: str) -> keras.Model:
    """The model the converter sees: under int8 and dynamic, a copy with unrolled LSTMs
    (``lstm`` "unrolled") and the DFT in matrix products (``dft`` "fft" or "int8");
    otherwise ``model`` itself."""
    unroll = quant in LAYOUT_MODES and lstm == "unrolled" and lstm_directions(model) > 0
    rewrite_dft = quant in LAYOUT_MODES and dft != "rfft" and _log_mels(model)
    if not (unroll or rewrite_dft):
        return model
    transform = DFT_TRANSFORMS[dft] if rewrite_dft else "rfft"
    return export_copy(model, unroll_lstms=unroll, transform=transform)


def _log_mels(model: keras.Model) -> bool:
    return any(isinstance(m, LogMelSpectrogram) for m in model.submodules)


def _run_converter(
    converter: tf.lite.TFLiteConverter,
    quant: str,
    dataset: Any,
    *,
    layers: list[str],
    float_ops: tuple[str, ...],
) -> bytes:
    """Convert, keeping ``layers`` and ``float_ops`` float; converter errors become ExportError."""
    try:
        with warnings.catch_warnings():  # calibration runs the deprecated tf.lite.Interpreter
            warnings.filterwarnings(
                "ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning
            )
            if layers or float_ops:
                return int8_with_float_parts(converter, dataset, layers=layers, ops=float_ops)
            return converter.convert()
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - ConverterError is not public; also RuntimeError
        raise _conversion_error(exc, quant) from None


def serving_function(model: keras.Model, *, num_samples: int, multi_label: bool) -> Any:
    """Concrete function ``waveform [1, num_samples] -> {"scores": [1, num_classes]}``."""

    @tf.function(input_signature=[tf.TensorSpec([1, num_samples], tf.float32, name=INPUT_NAME)])
    def serve(waveform: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(waveform, training=False)["logits"]  # [1, num_classes]
        scores = tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits)
        return {OUTPUT_NAME: scores}

    return serve.get_concrete_function()


def _converter(model: keras.Model, concrete: Any) -> tf.lite.TFLiteConverter:
    # The converter saves its trackable object as a SavedModel first. Given the Keras model,
    # that re-traces every layer's call for Keras serialisation (a small BiLSTM: ~2 min); a
    # bare module that only tracks the captured variables takes seconds and converts the same.
    holder = tf.Module()
    holder.model_variables = list(model.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)


def _conversion_error(exc: Exception, quant: str) -> ExportError:
    message = str(exc)
    ops = unsupported_ops(message)
    if ops:
        return ExportError(
            f"Cannot convert to builtin TFLite ops ({quant}); not supported: {', '.join(ops)}. "
            "Flex / SELECT_TF_OPS is not allowed: replace these ops in the model"
        )
    first_lines = " ".join(message.strip().splitlines()[:3])[:500]
    return ExportError(f"TFLite conversion failed ({quant}): {first_lines}")


def input_samples(model: keras.Model) -> int:
    """Samples of the model's single waveform input; ExportError unless it is ``[B, N]``."""
    if len(model.inputs) != 1:
        raise ExportError(
            f"Model {model.name!r}: expected one waveform input, got {len(model.inputs)}"
        )
    shape = model.inputs[0].shape.as_list()
    if len(shape) != 2 or shape[1] is None:
        raise ExportError(
            f"Model {model.name!r}: expected a waveform input [batch, samples] with fixed "
            f"samples, got {shape}"
        )
    return int(shape[1])


def model_facts(
    model: keras.Model, *, labels: list[str], sample_rate: int
) -> tuple[int, ModelSpec | None]:
    """Input samples and the model's spec (None without one), checked against the arguments."""
    num_samples = input_samples(model)
    outputs = model.output
    if not isinstance(outputs, dict) or "logits" not in outputs:
        raise ExportError(
            f"Model {model.name!r}: expected a dict of outputs with 'logits' (the model contract)"
        )
    num_classes = outputs["logits"].shape[-1]
    if len(labels) != num_classes:
        raise ExportError(
            f"Model {model.name!r} has {num_classes} classes, got {len(labels)} labels"
        )
    try:
        spec = model_spec(model)
    except ModelError:
        spec = None
    rates = {spec.sample_rate} if spec else set()
    rates |= {m.config.sample_rate for m in model.submodules if isinstance(m, LogMelSpectrogram)}
    if rates - {sample_rate}:
        raise ExportError(
            f"Expected sample_rate {sorted(rates)[0]} (the model's), got {sample_rate}"
        )
    return num_samples, spec


def check_output_path(path: Path) -> None:
    """Raise ExportError unless ``path``'s folder exists and accepts a new file."""
    folder = path.parent
    if not folder.is_dir():
        raise ExportError(f"Output folder {folder} does not exist; create it first")
    if path.is_dir():
        raise ExportError(f"Output path {path} is a folder; expected a .tflite file name")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lean_kd_probe."):
            pass
    except OSError as exc:
        raise ExportError(f"Output folder {folder} is not writable ({exc.strerror})") from None


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - start, 3)
