"""Full int8 of LEAN: parity with its Keras model, scale repair, and the int8 sizes.

A lean_tiny briefly trained on the three test tones stands in for a trained LEAN: its BiLSTM
wave encoder, cross-attention and concatenations are where int8 went wrong (an int8 LSTM or
REVERSE_V2 output labelled with the scale the quantizer wanted for the CONCATENATION after it,
so its bytes were read at up to 8x their value; top-1 agreement 0.19 on a trained LEAN).
"""

from __future__ import annotations

import copy
import functools

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import export_helpers as h
from helpers import shifted_seed
from lean_kd._keras import keras
from lean_kd.export import tflite
from lean_kd.export.metadata import add_metadata, read_metadata
from lean_kd.export.ops import FUSED_LSTM, summarize_ops
from lean_kd.export.quantize import (
    LSTM_FLOAT_OPS,
    LSTM_HIDDEN_STATE_INPUT,
    int8_float_ops,
    repair_scales,
    share_quantization_vectors,
)
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd.models import registry
from lean_kd_runtime.metrics import mean_average_precision
from lean_kd_runtime.tflite_graph import OP_NAMES

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

MIB = 1 << 20


@functools.cache
def tiny_lean() -> keras.Model:
    """lean_tiny with two stacked BiLSTMs, as LEAN (random init), trained on the tones until
    it separates them."""
    keras.utils.set_random_seed(shifted_seed(0))
    model = registry.build("lean_tiny", len(h.LABELS), lstm_layers=2)
    windows, labels = h.tone_windows(60, seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    model.fit(windows, {"logits": labels}, epochs=8, batch_size=12, verbose=0)
    return model


@functools.cache
def tiny_lean_int8(lstm: str = "hybrid") -> bytes:
    return tflite.convert(tiny_lean(), quant="int8", calibration=h.calibration(30), lstm=lstm)


def _quantization(model: bytes, tensor: int) -> tuple[float, int]:
    q = schema.Model.GetRootAs(model, 0).Subgraphs(0).Tensors(tensor).Quantization()
    return float(q.Scale(0)), int(q.ZeroPoint(0))


def _ops_of(model: bytes, op_type: str) -> list[schema.Operator]:
    root = schema.Model.GetRootAs(model, 0)
    codes = [root.OperatorCodes(i) for i in range(root.OperatorCodesLength())]
    names = [OP_NAMES[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())] for c in codes]
    graph = root.Subgraphs(0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    return [op for op in ops if names[op.OpcodeIndex()] == op_type]


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("lstm", ["int8", "hybrid"])
def test_int8_lean_scores_match_keras_on_normal_input(lstm):
    windows, labels = h.tone_windows(30, seed=7)
    expected = keras_scores(tiny_lean(), windows)
    actual = tflite_scores(tiny_lean_int8(lstm), windows)
    one_hot = np.eye(len(h.LABELS))[labels]
    # the Keras model learned the tones: measured over seed offsets 0-5, accuracy 0.967-1.0
    assert np.mean(expected.argmax(1) == labels) >= 0.9
    assert np.abs(expected - actual).max() <= 0.04  # seeds 0-5: 0.004-0.018 (int8), 0.004-0.014
    # seed 0 on an AVX-512 VNNI CPU: int8 flips one window whose Keras top-2 margin is 0.035
    h.assert_top1_agrees(expected, actual, tolerance=0.04)
    keras_map, tflite_map = (mean_average_precision(s, one_hot) for s in (expected, actual))
    assert abs(keras_map - tflite_map) <= 0.01  # measured 0


# The error on quiet input has a heavy tail over seeds (offsets 0-5, max abs diff): int8 0.005,
# 0.009, 0.018, 0.093, 0.28, 0.36; hybrid 0.004, 0.004, 0.010, 0.029, 0.098, 0.15. The limits
# catch the failure they guard against (an int8 waveform and log: errors of 2 and more).
# unrolled (float recurrence, dynamically quantized products): 0.007 at offset 0; hybrid's limit.
@pytest.mark.parametrize("lstm, limit", [("int8", 0.5), ("hybrid", 0.3), ("unrolled", 0.3)])
def test_int8_lean_agrees_with_keras_on_quiet_input(lstm, limit):
    windows, _ = h.tone_windows(30, seed=8, peak_db=(-45.0, -35.0))
    expected = keras_scores(tiny_lean(), windows)
    actual = tflite_scores(tiny_lean_int8(lstm), windows)
    assert np.mean(expected.argmax(1) == actual.argmax(1)) >= 0.9  # seeds 0-5: 0.967-1.0
    assert np.abs(expected - actual).max() <= limit


def test_int8_lean_keeps_lstms_int8_and_concatenations_float():
    summary = summarize_ops(tiny_lean_int8("int8"))
    assert summary.ops.count(FUSED_LSTM) == 4 and FUSED_LSTM not in summary.float_ops
    assert "CONCATENATION" in summary.float_ops and "CONV_2D" not in summary.float_ops
    assert int8_float_ops(tiny_lean(), ("SOFTMAX",), "int8") == ("SOFTMAX", *LSTM_FLOAT_OPS)
    assert int8_float_ops(tiny_lean()) == (FUSED_LSTM, *LSTM_FLOAT_OPS)
    assert int8_float_ops(h.build_model("plain")) == ()


def test_hybrid_lean_has_int8_lstm_weights_and_int8_trunk():
    model = tiny_lean_int8("hybrid")
    summary = summarize_ops(model)
    assert summary.ops.count(FUSED_LSTM) == 4 and FUSED_LSTM in summary.float_ops
    assert "CONV_2D" not in summary.float_ops
    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    for op in _ops_of(model, FUSED_LSTM):
        weights = [graph.Tensors(op.Inputs(i)) for i in (2, 3, 4, 6, 7, 8)]
        assert {w.Type() for w in weights} == {schema.TensorType.INT8}
        assert graph.Tensors(op.Inputs(0)).Type() == schema.TensorType.FLOAT32


def test_lean_tiny_int8_is_about_1_5_mb():
    assert 1.3e6 <= len(tiny_lean_int8()) <= 1.6e6  # measured 1,502,288 bytes (3 classes)


def test_lstm_and_reverse_outputs_carry_the_scale_their_bytes_are_in():
    model = tiny_lean_int8("int8")
    for op in _ops_of(model, FUSED_LSTM):
        state = op.Inputs(LSTM_HIDDEN_STATE_INPUT)
        assert _quantization(model, op.Outputs(0)) == _quantization(model, state)
    for op in _ops_of(model, "REVERSE_V2"):
        assert _quantization(model, op.Outputs(0)) == _quantization(model, op.Inputs(0))
    assert repair_scales(model) == (model, [])  # nothing left to repair


def test_repair_scales_relabels_a_mislabelled_reverse_output():
    model = tiny_lean_int8("int8")
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    reverse = _ops_of(model, "REVERSE_V2")[0]
    source, target = reverse.Inputs(0), reverse.Outputs(0)
    tensor = unpacked.subgraphs[0].tensors[target]
    wrong = copy.deepcopy(tensor.quantization)
    wrong.scale, wrong.zeroPoint = [0.0611], [-26]  # what the quantizer wrote for LEAN
    tensor.quantization = wrong
    repaired, names = repair_scales(_pack(unpacked))
    assert names == [tensor.name.decode()]
    assert _quantization(repaired, target) == _quantization(model, source)
    np.testing.assert_allclose(  # the same scores as before the label was broken
        tflite_scores(repaired, h.tone_windows(3, seed=9)[0]),
        tflite_scores(model, h.tone_windows(3, seed=9)[0]),
        atol=1e-6,
    )


def test_sharing_quantization_vectors_keeps_scores_and_metadata(tmp_path):
    packed = add_metadata(tiny_lean_int8(), labels=h.LABELS, sample_rate=16000)
    shared = share_quantization_vectors(packed)
    assert len(shared) < len(packed) - 40_000  # 8 bytes per per-channel zero point
    (tmp_path / "m.tflite").write_bytes(shared)
    assert read_metadata(tmp_path / "m.tflite")["labels"] == h.LABELS
    windows = h.tone_windows(4, seed=9)[0]
    np.testing.assert_array_equal(tflite_scores(shared, windows), tflite_scores(packed, windows))


@pytest.mark.heavy
def test_default_lean_int8_fits_in_4_5_mib(tmp_path):
    """The LEAN paper's 4.5 MB footprint, read as MiB (4.5e6 bytes is below what the 4.37 M
    parameters take in int8 with per-channel scales; see benchmarks/results/export.md)."""
    model = registry.build("lean", 10, pretrained=False)
    result = tflite.export_tflite(
        model,
        quant="int8",
        out=tmp_path / "lean.tflite",
        labels=[f"class{i}" for i in range(10)],
        sample_rate=16000,
        representative=h.tone_windows(4, seed=3)[0],
    )
    assert result.size_bytes == (tmp_path / "lean.tflite").stat().st_size
    assert 4.3e6 <= result.size_bytes <= 4.5 * MIB  # measured 4,609,180 bytes (4.40 MiB)
