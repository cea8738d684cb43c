"""Export-time rewrites: unrolled LSTMs and the matrix-product DFT (same function, XNNPACK ops)."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import export_helpers as h
from lean_kd._keras import keras
from lean_kd.errors import ConfigError, ExportError
from lean_kd.export.hybrid import hybridize_weights
from lean_kd.export.ops import FUSED_LSTM, summarize_ops
from lean_kd.export.rewrite import export_copy
from lean_kd.export.unrolled_lstm import resolve_lstm_mode
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd_runtime.tflite_graph import OP_NAMES


def _sequence_model(units: int = 5, steps: int = 6, features: int = 7) -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((steps, features), batch_size=1)
    y = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True))(x)
    y = keras.layers.LSTM(3)(y)  # last state only
    return keras.Model(x, y)


def test_unrolled_copy_computes_the_keras_function():
    model = _sequence_model()
    copy = export_copy(model, unroll_lstms=True)
    assert not any(isinstance(m, keras.layers.LSTM) for m in copy.submodules)
    x = np.random.default_rng(0).normal(size=(1, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(copy(x).numpy(), model(x).numpy(), atol=1e-5)  # float rounding


def test_lstm_the_unrolled_form_cannot_reproduce_is_refused():
    x = keras.Input((4, 2), batch_size=1)
    model = keras.Model(x, keras.layers.LSTM(3, activation="relu", name="odd")(x))
    with pytest.raises(ExportError, match="'odd' cannot be exported unrolled; it needs activation"):
        export_copy(model, unroll_lstms=True)


def test_auto_unrolls_only_small_recurrent_kernels():
    # 39 packed copies of [2U, 8U] int8: U=8 -> 80 KB (unrolled); U=256 -> 80 MB (hybrid)
    assert resolve_lstm_mode(_sequence_model(units=8, steps=40), "auto") == "unrolled"
    assert resolve_lstm_mode(_sequence_model(units=256, steps=40), "auto") == "hybrid"
    assert resolve_lstm_mode(_sequence_model(units=256, steps=40), "int8") == "int8"


@pytest.fixture(scope="module")
def unrolled_int8() -> bytes:
    return h.converted("lstm", "int8", lstm="unrolled")


def test_unrolled_int8_has_no_fused_lstm_no_loop_and_int8_weights(unrolled_int8):
    summary = summarize_ops(unrolled_int8)
    assert FUSED_LSTM not in summary.ops and "WHILE" not in summary.ops
    assert summary.subgraph_count == 1
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(unrolled_int8, 0))
    graph = model.subgraphs[0]
    names = {
        code: OP_NAMES[max(c.builtinCode, c.deprecatedBuiltinCode)]
        for code, c in enumerate(model.operatorCodes)
    }
    fully_connected = [op for op in graph.operators if names[op.opcodeIndex] == "FULLY_CONNECTED"]
    float_outputs = [
        graph.tensors[op.outputs[0]].name.decode()
        for op in fully_connected
        if graph.tensors[op.inputs[1]].type != schema.TensorType.INT8
    ]
    assert len(fully_connected) > 8 and float_outputs  # the recurrence's weights are int8
    assert all("log_mel" in name for name in float_outputs), float_outputs  # FFT stages, mel
    assert not any(t.isVariable for t in graph.tensors)  # no state carried between invokes


def test_unrolled_int8_scores_match_keras_and_need_no_reset(unrolled_int8):
    windows, _ = h.tone_windows(12, seed=5)
    expected = keras_scores(h.trained_model("lstm"), windows)
    got = tflite_scores(unrolled_int8, windows)
    # int8 conv trunk + dynamically quantized LSTM products; hybrid LSTMs measure < 0.15 too
    assert np.abs(got - expected).max() < 0.15
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=unrolled_int8)
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    runs = []
    for window in (windows[0], windows[1], windows[0]):  # no reset_all_variables in between
        interpreter.set_tensor(source["index"], window[None])
        interpreter.invoke()
        runs.append(interpreter.get_tensor(target["index"]).copy())
    np.testing.assert_array_equal(runs[0], runs[2])


def test_dynamic_export_stores_trunk_weights_in_int8_and_keeps_the_frontend_float():
    flatbuffer = h.converted("lstm", "dynamic", lstm="unrolled")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flatbuffer, 0))
    graph = model.subgraphs[0]
    names = [OP_NAMES[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in model.operatorCodes]
    weighted = [  # (output name, weight type, weight size) of every conv / dense op
        (
            graph.tensors[op.outputs[0]].name.decode(),
            graph.tensors[op.inputs[1]].type,
            int(np.prod(graph.tensors[op.inputs[1]].shape)),
        )
        for op in graph.operators
        if names[op.opcodeIndex] in ("FULLY_CONNECTED", "CONV_2D")
        and model.buffers[graph.tensors[op.inputs[1]].buffer].data is not None
    ]
    int8 = [w for w in weighted if w[1] == schema.TensorType.INT8]
    floats = [w for w in weighted if w[1] == schema.TensorType.FLOAT32]
    assert len(int8) + len(floats) == len(weighted)
    assert len(int8) > 8  # the recurrence, the input projection, the dense layer
    assert not any("log_mel" in name for name, _, _ in int8)  # FFT stages and mel stay exact
    assert all("log_mel" in name or size < 1024 for name, _, size in floats), floats
    assert FUSED_LSTM not in summarize_ops(flatbuffer).ops
    windows, _ = h.tone_windows(12, seed=5)
    expected = keras_scores(h.trained_model("lstm"), windows)
    got = tflite_scores(flatbuffer, windows)
    assert np.abs(got - expected).max() < 0.15  # the unrolled int8 export's bound
    h.assert_top1_agrees(expected, got, tolerance=0.05)


def test_dynamic_export_refuses_integer_lstms():
    with pytest.raises(ConfigError, match="lstm 'int8' needs quant 'int8'"):
        h.converted("lstm", "dynamic", lstm="int8")


def test_hybridized_fully_connected_has_one_scale_per_row():
    float_model = h.converted("lstm", "int8", lstm="float")  # any float FULLY_CONNECTED will do
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(float_model, 0))
    graph = unpacked.subgraphs[0]
    names = [OP_NAMES[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in unpacked.operatorCodes]
    candidates = [
        op
        for op in graph.operators
        if names[op.opcodeIndex] == "FULLY_CONNECTED"
        and graph.tensors[op.inputs[1]].type == schema.TensorType.FLOAT32
    ]
    large = [op for op in candidates if np.prod(graph.tensors[op.inputs[1]].shape) >= 1024]
    small = [op for op in candidates if np.prod(graph.tensors[op.inputs[1]].shape) < 1024]
    if not (large and small):
        pytest.skip("the float-LSTM model lacks a large or a small float FULLY_CONNECTED")
    small_name = graph.tensors[small[0].outputs[0]].name.decode()
    assert hybridize_weights(float_model, outputs={small_name}) == (float_model, 0)  # too small
    op = large[0]
    weight = graph.tensors[op.inputs[1]]
    data = bytes(unpacked.buffers[weight.buffer].data)
    rows = np.frombuffer(data, "<f4").reshape(weight.shape[0], -1)
    out_name = graph.tensors[op.outputs[0]].name.decode()
    hybrid, count = hybridize_weights(float_model, outputs={out_name})
    assert count == 1
    after = schema.ModelT.InitFromObj(schema.Model.GetRootAs(hybrid, 0)).subgraphs[0]
    stored = after.tensors[op.inputs[1]]
    assert stored.type == schema.TensorType.INT8
    peaks = np.abs(rows).max(1)
    expected = np.where(peaks > 0, peaks / 127, 1.0)  # an all-zero row keeps scale 1 (zeros)
    np.testing.assert_allclose(stored.quantization.scale, expected, rtol=1e-6)


def test_matmul_dft_log_mel_matches_the_fft_one():
    from lean_kd.audio.features import YAMNET_PRESET, log_mel, log_mel_matmul

    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    for scale in (1.0, 1e-3):  # normal and quiet input
        np.testing.assert_allclose(
            log_mel_matmul(noise * scale, YAMNET_PRESET).numpy(),
            log_mel(noise * scale, YAMNET_PRESET).numpy(),
            atol=1e-4,  # float32 rounding of two DFT algorithms (measured 2.4e-6)
        )


@pytest.mark.parametrize(
    "dft, present, absent",
    [("fft", "TRANSPOSE", "RFFT2D"), ("int8", "FULLY_CONNECTED", "RFFT2D"), ("rfft", "RFFT2D", "")],
)
def test_int8_dft_mode_chooses_the_frontend_ops(dft, present, absent):
    from lean_kd.export.tflite import convert

    ops = summarize_ops(
        convert(h.trained_model("plain"), quant="int8", calibration=h.calibration(), dft=dft)
    ).ops
    assert present in ops and (not absent or absent not in ops)


def _fft_weights(flatbuffer: bytes) -> list[int]:
    """Tensor types of the constants the ops of the log-mel layer's ``fft`` scope read."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flatbuffer, 0))
    graph = model.subgraphs[0]
    types = []
    for op in graph.operators:
        if b"/fft/" not in graph.tensors[op.outputs[0]].name:
            continue
        for i in op.inputs:
            if i >= 0 and model.buffers[graph.tensors[i].buffer].data is not None:
                types.append(graph.tensors[i].type)
    return types


@pytest.mark.parametrize("keep_frontend_float", [True, False])
def test_fft_frontend_stays_float_and_scores_match_keras(keep_frontend_float):
    from lean_kd.export.tflite import convert

    model = h.trained_model("plain")
    flatbuffer = convert(
        model, quant="int8", calibration=h.calibration(), dft="fft",
        keep_frontend_float=keep_frontend_float,
    )  # fmt: skip
    types = _fft_weights(flatbuffer)
    assert schema.TensorType.FLOAT32 in types  # stage matrices and twiddle factors
    assert schema.TensorType.INT8 not in types and schema.TensorType.UINT8 not in types
    if keep_frontend_float:  # then the FFT frontend is the only change from RFFT2D's export
        rfft = convert(model, quant="int8", calibration=h.calibration(), dft="rfft")
        for seed, peak_db in ((5, (-20.0, -3.0)), (6, (-45.0, -35.0))):  # normal and quiet
            windows, _ = h.tone_windows(12, seed=seed, peak_db=peak_db)
            expected = keras_scores(model, windows)
            got, reference = tflite_scores(flatbuffer, windows), tflite_scores(rfft, windows)
            h.assert_top1_agrees(expected, got, tolerance=0.05)
            np.testing.assert_allclose(got, reference, atol=0.05)  # int8 rounding flips only


def test_int8_dft_scores_match_keras():
    from lean_kd.export.tflite import convert

    flatbuffer = convert(
        h.trained_model("plain"), quant="int8", calibration=h.calibration(), dft="int8"
    )
    windows, _ = h.tone_windows(12, seed=5)
    quiet, _ = h.tone_windows(12, seed=6, peak_db=(-45.0, -35.0))
    for batch in (windows, quiet):
        expected = keras_scores(h.trained_model("plain"), batch)
        got = tflite_scores(flatbuffer, batch)
        assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
