"""``lean-kd bench --profile``: kernel per op, pieces of the graph that run alone, the tables."""

from __future__ import annotations

import numpy as np
import pytest

from lean_kd.bench import submodel
from lean_kd.bench.profile import BUILTIN, XNNPACK, profile_model
from lean_kd.cli.main import main
from lean_kd.errors import ModelError
from lean_kd_runtime.tflite_graph import read_graph


@pytest.fixture(scope="module")
def bench_profile(bench_model_tflite):
    return profile_model(bench_model_tflite, runs=3, warmup_runs=1)


def test_kernels_of_known_ops(bench_profile):
    kernels = {piece.name: piece.kernel for piece in bench_profile.ops}
    # XNNPACK has no LSTM, RFFT2D or COMPLEX_ABS kernels; it takes convolutions
    assert kernels["UNIDIRECTIONAL_SEQUENCE_LSTM"] == BUILTIN
    assert kernels["RFFT2D"] == BUILTIN
    assert kernels["CONV_2D"] == XNNPACK == kernels["DEPTHWISE_CONV_2D"]


def test_every_op_timed_once_and_partitions_cover_the_graph(bench_profile, bench_model_tflite):
    count = len(read_graph(bench_model_tflite).ops)
    timed = sorted(i for piece in bench_profile.ops for i in piece.ops)
    assert timed == list(range(count))
    assert sorted(i for part in bench_profile.partitions for i in part.ops) == timed
    kernels = [part.kernel for part in bench_profile.partitions]
    assert all(a != b for a, b in zip(kernels, kernels[1:]))  # maximal runs
    assert bench_profile.whole_ms > 0 and all(p.ms > 0 for p in bench_profile.ops)
    macs = {p.name: p.macs for p in bench_profile.ops}
    assert macs["CONV_2D"] > 0 and macs.get("RESHAPE", 0) == 0


def test_a_piece_computes_what_the_whole_model_does(bench_model_tflite):
    """The CONV_2D cut out alone, fed its input from a full run, writes the same output."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = bench_model_tflite.read_bytes()
    model = submodel.load(data)
    whole = Interpreter(
        model_content=data,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    whole.allocate_tensors()
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 16000)).astype(np.float32)
    whole.set_tensor(whole.get_input_details()[0]["index"], wave)
    whole.invoke()
    (unit,) = [u for u in submodel.units(model) if u.name == "CONV_2D"]
    piece, inputs = submodel.extract(model, unit.ops)
    alone = Interpreter(model_content=piece)
    alone.allocate_tensors()
    for detail, original in zip(alone.get_input_details(), inputs):
        alone.set_tensor(detail["index"], whole.get_tensor(original))
    alone.invoke()
    expected = whole.get_tensor(model.subgraphs[0].operators[unit.ops[-1]].outputs[0])
    got = alone.get_tensor(alone.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)  # XNNPACK vs builtin sums


def test_cli_profile_writes_markdown(bench_model_tflite, tmp_path, capsys):
    out = tmp_path / "profile.md"
    argv = ["bench", "--profile", "--model", str(bench_model_tflite), "--runs", "2"]
    assert main(argv + ["--warmup-runs", "0", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    assert "### bench_model.tflite, 1 thread(s)" in text
    assert "| UNIDIRECTIONAL_SEQUENCE_LSTM | builtin | 1 |" in text


def test_not_a_model(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="bad.tflite"):
        profile_model(bad, runs=1)
