"""MACs per inference from a TFLite file's ops: a converted model with hand-counted MACs, YAMNet, and op edge cases."""

from __future__ import annotations

from bench.tflite_testing import EXPECTED_MACS
from lean_kd.bench.macs import tflite_macs
from lean_kd_runtime.tflite_graph import Op, read_graph


def test_every_counted_op_of_a_converted_model_matches_the_hand_count(bench_model_tflite):
    macs = tflite_macs(read_graph(bench_model_tflite).ops)
    assert macs.by_op == EXPECTED_MACS
    assert macs.total == sum(EXPECTED_MACS.values()) == 1_710_960
    assert macs.uncounted == ()


def test_official_yamnet(yamnet_tflite):
    macs = tflite_macs(read_graph(yamnet_tflite).ops)
    # The MobileNet-v1 trunk: ~69 M multiply-adds per 0.96 s patch (68.6 M here: CONV_2D + depthwise)
    assert macs.by_op["CONV_2D"] + macs.by_op["DEPTHWISE_CONV_2D"] == 68_631_552
    # the frontend's DFT is two [96, 512] x [512, 257] matmuls; the mel matrix and the classifier add the rest
    assert macs.by_op["FULLY_CONNECTED"] == 2 * 96 * 512 * 257 + 96 * 257 * 64 + 1024 * 521
    assert macs.uncounted == ()


def test_lstm_without_input_gate_and_with_projection():
    weights = [(8, 16)] * 4 + [
        (8, 6)
    ] * 4  # input and recurrent weights, 8 units, 16 inputs, 6 outputs
    inputs = [(1, 10, 16), None, *weights[1:]] + [None] * 3 + [(8,)] * 4 + [(6, 8)] + [None] * 7
    op = Op("UNIDIRECTIONAL_SEQUENCE_LSTM", tuple(inputs), ((1, 10, 6),))
    assert tflite_macs([op]).total == 10 * (3 * 8 * 16 + 4 * 8 * 6 + 6 * 8)


def test_batch_matmul_with_adjoint_x():
    class Options:
        adjX, adjY = True, False

    op = Op("BATCH_MATMUL", ((2, 7, 5), (2, 7, 3)), ((2, 5, 3),), Options())
    assert tflite_macs([op]).total == 2 * 5 * 3 * 7


def test_transpose_conv_and_rfft():
    transpose = Op("TRANSPOSE_CONV", ((4,), (6, 3, 3, 2), (1, 10, 10, 2)), ((1, 20, 20, 6),))
    rfft = Op("RFFT2D", ((1, 5, 1, 256), (2,)), ((1, 5, 1, 129),))
    assert tflite_macs([transpose]).total == 10 * 10 * 2 * 3 * 3 * 6
    assert tflite_macs([rfft]).total == 5 * 256 * 9


def test_free_and_unknown_ops():
    ops = [Op("ADD", ((1, 4), (1, 4)), ((1, 4),)), Op("WHILE", (), ()), Op("CUSTOM", (), ())]
    macs = tflite_macs(ops)
    assert macs.total == 0 and macs.by_op == {}
    assert macs.uncounted == ("CUSTOM", "WHILE")
