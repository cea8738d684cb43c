"""Hybrid LSTMs: int8 weights written like TFLite's dynamic-range quantizer, float activations."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import export_helpers as h
from lean_kd.errors import ExportError
from lean_kd.export.hybrid import LSTM_WEIGHT_INPUTS, hybridize_lstms, symmetric_int8
from lean_kd.export.ops import FUSED_LSTM
from lean_kd.export.verify import keras_scores, tflite_scores
from lean_kd_runtime.tflite_graph import OP_NAMES

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`


def _unpack(model: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))


def _pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _lstm_ops(model: schema.ModelT) -> list[schema.OperatorT]:
    codes = [OP_NAMES[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in model.operatorCodes]
    return [op for op in model.subgraphs[0].operators if codes[op.opcodeIndex] == FUSED_LSTM]


def _weights(model: schema.ModelT, op: schema.OperatorT) -> dict[int, np.ndarray]:
    """Present weight inputs of ``op`` as arrays (float or int8, by tensor type)."""
    tensors, found = model.subgraphs[0].tensors, {}
    for i in LSTM_WEIGHT_INPUTS:
        if i < len(op.inputs) and op.inputs[i] >= 0:
            tensor = tensors[op.inputs[i]]
            dtype = "<f4" if tensor.type == schema.TensorType.FLOAT32 else np.int8
            found[i] = np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype)
    return found


def test_symmetric_int8_matches_hand_computed_values():
    quantized, scale = symmetric_int8(np.array([0.5, -1.27, 0.0, 0.004], np.float32))
    assert scale == pytest.approx(0.01)
    np.testing.assert_array_equal(quantized, [50, -127, 0, 0])
    zeros, unit = symmetric_int8(np.zeros(3, np.float32))
    assert unit == 1.0 and not zeros.any()


def test_float_lstm_weights_become_int8_with_max_abs_scale():
    float_lstms = _unpack(h.converted("lstm", "int8", lstm="float"))
    hybrid, count = hybridize_lstms(h.converted("lstm", "int8", lstm="float"))
    assert count == 2
    unpacked = _unpack(hybrid)
    for before, after in zip(_lstm_ops(float_lstms), _lstm_ops(unpacked)):
        assert after.builtinOptions.asymmetricQuantizeInputs
        originals, stored = _weights(float_lstms, before), _weights(unpacked, after)
        assert set(originals) == set(stored) == {1, 2, 3, 4, 5, 6, 7, 8}  # no peephole/projection
        for i, values in originals.items():
            tensor = unpacked.subgraphs[0].tensors[after.inputs[i]]
            scale = float(tensor.quantization.scale[0])
            assert scale == pytest.approx(np.abs(values).max() / 127, rel=1e-6)
            assert list(tensor.quantization.zeroPoint) == [0]
            np.testing.assert_allclose(stored[i] * scale, values, atol=scale / 2 + 1e-9)
        bias = unpacked.subgraphs[0].tensors[after.inputs[13]]
        assert bias.type == schema.TensorType.FLOAT32  # biases and states stay float
    assert (
        len(hybrid) < len(h.converted("lstm", "int8", lstm="float")) - 3 * 2 * 4 * 8 * 400
    )  # 3 bytes saved per input weight


def test_hybrid_scores_are_the_converted_default():
    windows = h.tone_windows(8, seed=5)[0]
    hybrid, _ = hybridize_lstms(h.converted("lstm", "int8", lstm="float"))
    np.testing.assert_allclose(
        tflite_scores(hybrid, windows),
        tflite_scores(h.converted("lstm", "int8"), windows),
        atol=1e-6,
    )
    expected = keras_scores(h.trained_model("lstm"), windows)
    assert np.abs(tflite_scores(hybrid, windows) - expected).max() <= 0.02


def test_models_without_float_lstms_are_returned_unchanged():
    plain = h.converted("plain", "int8")
    assert hybridize_lstms(plain) == (plain, 0)
    integer = h.converted("lstm", "int8", lstm="int8")
    assert hybridize_lstms(integer) == (integer, 0)


def test_weight_buffer_shared_with_another_tensor_is_refused():
    unpacked = _unpack(h.converted("lstm", "int8", lstm="float"))
    op = _lstm_ops(unpacked)[0]
    tensors = unpacked.subgraphs[0].tensors
    tensors[op.inputs[12]].buffer = tensors[op.inputs[2]].buffer  # a bias reads a weight's bytes
    with pytest.raises(ExportError, match=r"LSTM weight .* shares its buffer with \["):
        hybridize_lstms(_pack(unpacked))
