"""The two engines of lean_kd_runtime: the classic Interpreter and LiteRT's CompiledModel with
XNNPACK's weight cache (same scores; one packed copy of a weight many ops read; clear errors)."""

from __future__ import annotations

import numpy as np
import pytest

import export_helpers as h
from lean_kd.bench.benchmark import BenchConfig, TimingConfig, run_benchmark
from lean_kd.errors import ConfigError, ModelError
from lean_kd.export.tflite import convert
from lean_kd_runtime.engines import IN_MEMORY_WEIGHT_CACHE, open_engine
from lean_kd_runtime.runtime import Classifier
from lean_kd_runtime.timing import load_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _tflite(folder, name: str, *, lstm: str, units: int = 8):
    model = h.build_model("lstm", lstm_units=units)  # untrained: the engines must agree anyway
    path = folder / f"{name}.tflite"
    path.write_bytes(convert(model, quant="dynamic", lstm=lstm))
    return path, model


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """BiLSTM(128) unrolled over 40 patches: 39 FULLY_CONNECTED ops read one [256, 1024] int8
    recurrent kernel."""
    return _tflite(tmp_path_factory.mktemp("engines"), "wide", lstm="unrolled", units=128)


def test_compiled_engine_scores_as_the_interpreter(wide):
    path, _ = wide
    windows, _ = h.tone_windows(6)
    scores = {}
    for engine in ("interpreter", "compiled"):
        model = load_model(path, threads=1, sample_rate_hz=h.SAMPLE_RATE, engine=engine)
        classifier = Classifier(model, num_classes=3, output_index=None)
        scores[engine] = np.stack([classifier(w) for w in windows])
    assert scores["compiled"].shape == (6, 3)
    np.testing.assert_allclose(scores["compiled"], scores["interpreter"], atol=1e-5)


def test_compiled_engine_asks_xnnpack_for_its_weight_cache_in_memory(wide, monkeypatch):
    # What the cache saves (one packed recurrent kernel instead of 39: LEAN unrolled 18.7 MiB
    # against 37.3 on the Interpreter) is the runtime's doing and a measurement:
    # benchmarks/latency_profile.py's memory column per engine. Here: that it is asked for.
    from ai_edge_litert.compiled_model import CompiledModel

    seen = []
    original = CompiledModel.from_file.__func__

    def from_file(cls, path, **kwargs):
        seen.append(kwargs["options"].cpu_options)
        return original(cls, path, **kwargs)

    monkeypatch.setattr(CompiledModel, "from_file", classmethod(from_file))
    path, _ = wide
    load_model(path, threads=2, sample_rate_hz=h.SAMPLE_RATE, engine="compiled")
    [cpu] = seen
    assert cpu.xnnpack_weight_cache_path == IN_MEMORY_WEIGHT_CACHE == ":memory"
    assert cpu.num_threads == 2
    report = run_benchmark(
        path,
        config=BenchConfig(
            timing=TimingConfig(runs=5, warmup_runs=1, block_runs=5),
            memory_repeats=1,
            engine="compiled",
        ),
    )
    assert "CompiledModel, XNNPACK weight cache" in report["host"]["runtime"]
    assert "compiled engine" in report["models"][0]["memory"]["method"]


def test_compiled_engine_refuses_fused_lstm_ops_with_the_way_out(tmp_path):
    path, _ = _tflite(tmp_path, "fused", lstm="hybrid")
    with pytest.raises(
        ModelError, match="fused.tflite: LiteRT's CompiledModel cannot load it.*--lstm unrolled"
    ):
        load_model(path, threads=1, sample_rate_hz=h.SAMPLE_RATE, engine="compiled")
    load_model(path, threads=1, sample_rate_hz=h.SAMPLE_RATE, engine="interpreter")  # runs there


def test_unknown_engine_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="engine must be one of interpreter, compiled, got 'gpu'"):
        BenchConfig(engine="gpu")
    with pytest.raises(ModelError, match="nothing.tflite: model file not found"):
        open_engine(tmp_path / "nothing.tflite", threads=1, engine="compiled")


def test_outputs_are_listed_in_the_same_order_on_both_engines(tmp_path):
    # The compiled engine's buffers follow the signature's outputs, the Interpreter lists the
    # graph's; converters may order the two differently (by name, by the model). Whatever they
    # do, output i must be the same tensor on both engines.
    from lean_kd._keras import keras, tf

    wave = keras.Input(shape=(h.SAMPLE_RATE,), batch_size=1, name="waveform")
    x = keras.layers.Reshape((40, 400))(wave)
    first = keras.layers.Dense(3, name="b_first")(keras.layers.GlobalAveragePooling1D()(x))
    second = keras.layers.Dense(5, name="a_second")(keras.layers.GlobalMaxPooling1D()(x))
    model = keras.Model(wave, [first, second])
    path = tmp_path / "two_outputs.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    window = h.tone_windows(1)[0][:1]
    read = {}
    for engine in ("interpreter", "compiled"):
        loaded = load_model(path, threads=1, sample_rate_hz=h.SAMPLE_RATE, engine=engine)
        loaded.engine.write(window)
        loaded.engine.invoke()
        read[engine] = [loaded.engine.read(i) for i in range(len(loaded.engine.outputs))]
    assert [r.shape for r in read["compiled"]] == [r.shape for r in read["interpreter"]]
    for mine, theirs in zip(read["compiled"], read["interpreter"]):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


def test_compiled_engine_is_refused_on_an_arm_cpu_without_atomics(tmp_path, monkeypatch):
    # ai-edge-litert's aarch64 CompiledModel library needs ARMv8.1 atomics: under qemu -cpu
    # cortex-a72 (a Raspberry Pi 4) it kills the process with SIGILL; refuse it in one line
    from lean_kd_runtime import engines

    monkeypatch.setattr(engines.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"fp", "asimd", "crc32"})
    with pytest.raises(ModelError, match="needs a CPU with ARMv8.1 atomics"):
        open_engine(tmp_path / "any.tflite", threads=1, engine="compiled")
    # the interpreter engine is not affected
    with pytest.raises(ModelError, match="any.tflite: model file not found"):
        open_engine(tmp_path / "any.tflite", threads=1, engine="interpreter")
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"fp", "asimd", "atomics"})
    with pytest.raises(ModelError, match="any.tflite: model file not found"):
        open_engine(tmp_path / "any.tflite", threads=1, engine="compiled")
