"""The Raspberry Pi runner (export/raspberry_pi/lean_kd_pi), run on this machine.

lean_kd ships the runner as the package ``lean_kd_pi`` and imports its TF-free measuring code
from it (audio checks, windowing, errors too); the runner itself must not import TensorFlow or
lean_kd. Its eval must
score clips exactly as lean_kd does: the reference below decodes with lean_kd.audio.io, windows
with lean_kd.audio.windows and runs the same TFLite file.
"""

from __future__ import annotations

import configparser
import json
import logging
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import setuptools
from ai_edge_litert.interpreter import Interpreter
from sklearn.metrics import average_precision_score

import lean_kd_pi.__main__ as runner
from bench.tflite_testing import attach_metadata, convert, with_input
from helpers import shifted_seed
from lean_kd.audio import io as lean_io
from lean_kd.audio import windows as lean_windows
from lean_kd.bench.schema import validate_report
from lean_kd_pi import stream as pi_stream
from lean_kd_runtime import audio as pi_audio

REPO = Path(__file__).resolve().parents[2]
RUNNER_DIR = REPO / "export" / "raspberry_pi"

CLASSES = ["chirp", "hum", "noise"]
RATE = 16000
# (class, file name, seconds, file sample rate): shorter than a window, exact, long with a tail
CLIPS = [
    ("chirp", "c1.wav", 0.6, RATE),
    ("chirp", "c2.wav", 2.3, RATE),
    ("hum", "h1.wav", 1.0, RATE),
    ("hum", "h2.wav", 1.7, 8000),
    ("noise", "n1.wav", 1.2, RATE),
    ("noise", "n2.wav", 3.1, RATE),
]


def _signal(kind: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    if kind == "hum":
        return 0.5 * np.sin(2 * np.pi * 120 * t) + 0.01 * rng.standard_normal(t.size)
    if kind == "chirp":
        return 0.5 * np.sin(2 * np.pi * (1000 + 1500 * t) * t)
    return 0.3 * rng.standard_normal(t.size)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3-class waveform classifier as TFLite, its labels file and a folder-per-class dataset."""
    from lean_kd._keras import keras

    keras.utils.set_random_seed(shifted_seed(0))
    wave = keras.Input(shape=(RATE,), batch_size=1, name="waveform")
    x = keras.layers.Dense(8, activation="relu")(
        keras.layers.Reshape((50, 320))(wave)
    )  # [1, 50, 8]
    x = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x))  # [1, 3]
    root = tmp_path_factory.mktemp("pi")
    model = root / "tiny.tflite"
    model.write_bytes(convert(keras.Model(wave, keras.layers.Softmax()(x))))
    labels = root / "labels.txt"
    labels.write_text("\n".join(CLASSES) + "\n")
    rng = np.random.default_rng(0)
    for kind, name, seconds, rate in CLIPS:
        (root / "data" / kind).mkdir(parents=True, exist_ok=True)
        lean_io.write_wav(
            root / "data" / kind / name,
            _signal(kind, seconds, rate, rng).astype(np.float32),
            sample_rate=rate,
        )
    return types.SimpleNamespace(root=root, model=model, labels=labels, data=root / "data")


def eval_args(tiny, data: Path, out: Path, *extra: str) -> list:
    return [
        "eval",
        "--model",
        tiny.model,
        "--labels",
        tiny.labels,
        "--data",
        data,
        "--json",
        out,
        *extra,
    ]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = runner.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def reference_scores(windows: list[np.ndarray], model: Path) -> np.ndarray:
    """``[len(windows), classes]``: each window through the TFLite file with ai-edge-litert."""
    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scores = []
    for window in windows:
        interpreter.set_tensor(inp["index"], window[None])
        interpreter.invoke()
        scores.append(interpreter.get_tensor(out["index"])[0])
    return np.array(scores)


def reference_clip_scores(model: Path, paths: list[str]) -> np.ndarray:
    """lean_kd's way: load_audio (soxr, peak-safe), 1 s windows with 0.5 s hop, mean of window scores."""
    return np.array(
        [
            reference_scores(
                lean_windows.split_windows(
                    lean_io.load_audio(p, sample_rate=RATE), window=RATE, hop=RATE // 2
                ),
                model,
            ).mean(0)
            for p in paths
        ]
    )


# ------------------------------------------------------------------ packaging and copies


def test_setup_cfg_ships_every_package_and_the_runner():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = config["options"]["packages"].split()
    on_disk = setuptools.find_packages(str(REPO), include=["lean_kd", "lean_kd.*"])
    runner_packages = ["lean_kd_pi", "lean_kd_runtime"]
    assert sorted(listed) == sorted(on_disk + runner_packages), "update packages in setup.cfg"
    assert config["options"]["package_dir"].split() == [
        word for name in runner_packages for word in (name, "=", f"export/raspberry_pi/{name}")
    ]
    assert Path(runner.__file__).parent == RUNNER_DIR / "lean_kd_pi"  # installed, editable


def test_runner_imports_neither_tensorflow_nor_lean_kd(tiny, tmp_path):
    command = [sys.executable, "-X", "importtime", "-m", "lean_kd_pi", "eval", "--model", str(tiny.model),
               "--labels", str(tiny.labels), "--data", str(tiny.data), "--json", str(tmp_path / "eval.json")]  # fmt: skip
    result = subprocess.run(command, cwd=RUNNER_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "lean_kd_pi.evaluate" in modules and "numpy" in modules
    banned = sorted(
        m
        for m in modules
        if m.split(".")[0] in {"tensorflow", "lean_kd", "keras", "tf_keras", "sklearn"}
    )
    assert banned == []


# ------------------------------------------------------------------ eval


def test_eval_scores_equal_lean_kd_windowing(tiny, tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setattr(pi_audio, "_WARNED_RATES", set())  # warned once per process
    out = tmp_path / "eval.json"
    with caplog.at_level(logging.WARNING):
        code, printed, _ = run(eval_args(tiny, tiny.data, out), capsys)
    assert code == 0
    result = json.loads(out.read_text())
    paths = [c["path"] for c in result["clips"]]
    assert [Path(p).name for p in paths] == [name for _, name, _, _ in CLIPS]
    assert [c["windows"] for c in result["clips"]] == [1, 4, 1, 3, 2, 6]
    scores = np.array([c["scores"] for c in result["clips"]])
    np.testing.assert_allclose(scores, reference_clip_scores(tiny.model, paths), rtol=0, atol=1e-6)
    assert "sample rate 8000 Hz, resampling to 16000 Hz with soxr" in caplog.text
    targets = np.array([[float(c["labels"] == [k]) for k in CLASSES] for c in result["clips"]])
    metrics = result["metrics"]
    assert metrics["mAP"] == pytest.approx(
        average_precision_score(targets, scores, average="macro")
    )
    assert metrics["accuracy"] == pytest.approx(np.mean(targets[np.arange(6), scores.argmax(1)]))
    assert f"6 clips: mAP {metrics['mAP']:.4f}" in printed


def test_eval_on_a_manifest_split(tiny, tmp_path, capsys):
    rows = ["path,labels,split"] + [
        f"{tiny.data / kind / name},{kind},{'test' if i % 2 else 'train'}"
        for i, (kind, name, _, _) in enumerate(CLIPS)
    ]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "eval.json"
    argv = eval_args(tiny, manifest, out, "--split", "test")
    assert run(argv, capsys)[0] == 0
    result = json.loads(out.read_text())
    assert [Path(c["path"]).name for c in result["clips"]] == ["c2.wav", "h2.wav", "n2.wav"]
    assert result["host"]["emulated"] is False


def test_eval_on_the_compiled_engine_scores_as_on_the_interpreter(tiny, tmp_path, capsys):
    results = {}
    for engine in ("interpreter", "compiled"):
        out = tmp_path / f"{engine}.json"
        assert run(eval_args(tiny, tiny.data, out, "--engine", engine), capsys)[0] == 0
        results[engine] = json.loads(out.read_text())
    assert "CompiledModel" in results["compiled"]["host"]["runtime"]
    assert "CompiledModel" not in results["interpreter"]["host"]["runtime"]
    scores = {e: np.array([c["scores"] for c in r["clips"]]) for e, r in results.items()}
    np.testing.assert_allclose(scores["compiled"], scores["interpreter"], atol=1e-6)


def test_labels_and_rate_from_model_metadata(tiny, tmp_path, capsys):
    model = tmp_path / "with_metadata.tflite"  # declares 8 kHz: its 16000-sample window is 2 s
    model.write_bytes(attach_metadata(tiny.model.read_bytes(), sample_rate_hz=8000, labels=CLASSES))
    out = tmp_path / "eval.json"
    assert run(["eval", "--model", model, "--data", tiny.data, "--json", out], capsys)[0] == 0
    result = json.loads(out.read_text())
    assert result["classes"] == CLASSES
    assert (result["sample_rate_hz"], result["window_samples"], result["hop_samples"]) == (
        8000,
        16000,
        4000,
    )


# ------------------------------------------------------------------ bench


def test_bench_report_validates_against_lean_kd_schema(tiny, yamnet_tflite, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = [
        "bench",
        "--model",
        tiny.model,
        "--baseline",
        yamnet_tflite,
        "--runs",
        "20",
        "--memory-repeats",
        "1",
        "--json",
        out,
    ]
    code, printed, _ = run(argv, capsys)
    assert code == 0
    result = json.loads(out.read_text())
    validate_report(result)
    assert result["tool"] == "lean_kd_pi bench" and result["host"]["emulated"] is False
    assert [m["role"] for m in result["models"]] == ["model", "baseline"]
    assert result["models"][0]["memory"]["model_delta_bytes"] > 0
    assert result["models"][0]["macs_per_inference"] is None
    assert (
        "tiny.tflite (model), 1 thread(s): p50" in printed and "ratio model / baseline" in printed
    )


# ------------------------------------------------------------------ stream


def test_stream_over_a_wav_prints_one_line_per_window(tiny, capsys):
    wav = (
        tiny.data / "chirp" / "c2.wav"
    )  # 2.3 s: windows at 0.0, 0.5, 1.0, 1.5 (the last one padded)
    code, printed, _ = run(
        ["stream", "--model", tiny.model, "--labels", tiny.labels, "--wav", wav, "--top-k", "2"],
        capsys,
    )
    assert code == 0
    lines = printed.strip().splitlines()
    assert [float(line.split()[0]) for line in lines] == [0.0, 0.5, 1.0, 1.5]
    windows = lean_windows.split_windows(
        lean_io.load_audio(wav, sample_rate=RATE), window=RATE, hop=RATE // 2
    )
    for line, window in zip(lines, windows):  # "  0.50 s  chirp 0.912 | hum 0.051"
        scores = reference_scores([window], tiny.model)[0]
        best = np.argsort(scores)[::-1][:2]
        assert line.split("s  ", 1)[1] == " | ".join(f"{CLASSES[i]} {scores[i]:.3f}" for i in best)


def test_ring_buffer_keeps_the_last_window():
    ring = pi_stream.RingBuffer(5)
    ring.push(np.arange(3, dtype=np.float32))
    assert ring.window().tolist() == [0, 0, 0, 1, 2]
    ring.push(np.arange(3, 7, dtype=np.float32))
    assert ring.window().tolist() == [2, 3, 4, 5, 6]
    ring.push(np.arange(10, 17, dtype=np.float32))
    assert ring.window().tolist() == [12, 13, 14, 15, 16]


def test_microphone_without_sounddevice(tiny, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    code, _, err = run(["stream", "--model", tiny.model, "--mic"], capsys)
    assert code == 2 and "needs the sounddevice package" in err and "Traceback" not in err


def test_absent_microphone(tiny, capsys, monkeypatch):
    class PortAudioError(Exception):
        pass

    def no_device(**kwargs):
        raise PortAudioError("Error querying device -1")

    fake = types.SimpleNamespace(PortAudioError=PortAudioError, InputStream=no_device)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    code, _, err = run(["stream", "--model", tiny.model, "--mic"], capsys)
    assert code == 2 and "no usable microphone (Error querying device -1)" in err


# ------------------------------------------------------------------ sample rates and bad input


@pytest.mark.parametrize("mode", ["stream", "eval"])
def test_strict_refuses_another_sample_rate(mode, tiny, capsys):
    wav = tiny.data / "hum" / "h2.wav"
    source = ["--wav", wav] if mode == "stream" else ["--data", tiny.data, "--labels", tiny.labels]
    code, out, err = run([mode, "--model", tiny.model, *source, "--strict"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == f"lean_kd_pi: error: {wav}: sample rate 8000 Hz, the model expects 16000 Hz " \
        "(--strict refuses to resample; convert the file or drop --strict)"  # fmt: skip


def test_stream_resamples_another_sample_rate_with_a_warning(tiny, capsys, caplog, monkeypatch):
    monkeypatch.setattr(pi_audio, "_WARNED_RATES", set())
    wav = tiny.data / "hum" / "h2.wav"  # 1.7 s at 8 kHz: windows at 0.0, 0.5, 1.0
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(["stream", "--model", tiny.model, "--wav", wav], capsys)
    assert code == 0 and [float(line.split()[0]) for line in out.splitlines()] == [0.0, 0.5, 1.0]
    assert f"{wav}: sample rate 8000 Hz, resampling to 16000 Hz with soxr" in caplog.text


def test_linear_resampling_without_soxr(tiny, monkeypatch, caplog):
    wav = tiny.data / "hum" / "h2.wav"
    with_soxr = pi_audio.read_clip(wav, sample_rate=RATE)
    monkeypatch.setattr(pi_audio, "soxr", None)
    monkeypatch.setattr(pi_audio, "_WARNED_RATES", set())
    with caplog.at_level(logging.WARNING):
        linear = pi_audio.read_clip(wav, sample_rate=RATE)
    assert "by linear interpolation" in caplog.text
    assert linear.shape == with_soxr.shape == (int(1.7 * RATE),)
    assert np.corrcoef(linear[100:-100], with_soxr[100:-100])[0, 1] > 0.99


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["eval", "--model", "{root}/missing.tflite", "--data", "{data}"],
            "missing.tflite: model file not found",
        ),
        (
            ["eval", "--model", "{root}/labels.txt", "--data", "{data}"],
            "the TFLite runtime cannot load it",
        ),
        (
            ["eval", "--model", "{model}", "--data", "{data}", "--threads", "0"],
            "threads must be >= 1, got 0",
        ),
        (
            ["eval", "--model", "{model}", "--data", "{root}/nowhere"],
            "dataset folder or manifest not found",
        ),
        (
            ["eval", "--model", "{model}", "--data", "{data}", "--labels", "{root}/two.txt"],
            "2 class names for a model output of 3",
        ),
        (
            ["eval", "--model", "{model}", "--data", "{data}", "--labels", "{root}/other.txt"],
            "dataset label(s) ['chirp']",
        ),
        (["bench", "--model", "{model}", "--threads", "1,0"], "threads must be >= 1, got 0"),
        (["bench", "--model", "{model}", "--threads", "0"], "threads must be >= 1, got 0"),
        (
            ["stream", "--model", "{model}", "--wav", "{wav}", "--threads", "0"],
            "threads must be >= 1",
        ),
        (["bench", "--model", "{root}/missing.tflite"], "missing.tflite: model file not found"),
        (
            ["bench", "--model", "{model}", "--baseline", "{root}/gone.tflite"],
            "gone.tflite: model file not found",
        ),
        (["stream", "--model", "{root}/missing.tflite", "--wav", "{wav}"], "model file not found"),
        (
            ["stream", "--model", "{model}", "--wav", "{root}/missing.wav"],
            "missing.wav: file not found",
        ),
        (
            ["stream", "--model", "{model}", "--wav", "{root}/labels.txt"],
            "not a readable audio file",
        ),
    ],
)
def test_bad_input_is_one_line(argv, message, tiny, capsys):
    (tiny.root / "two.txt").write_text("a\nb\n")
    (tiny.root / "other.txt").write_text("bird\nhum\nnoise\n")
    wav = tiny.data / "chirp" / "c1.wav"
    argv = [a.format(root=tiny.root, data=tiny.data, model=tiny.model, wav=wav) for a in argv]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("lean_kd_pi: error:") and message in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def not_waveform(tiny):
    """``{name: path}``: the tiny model declaring a log-mel patch input, or an int8 waveform."""
    models = {}
    for name, change in {"patch": {"shape": [1, 96, 64]}, "int8": {"dtype": 9}}.items():
        models[name] = tiny.root / f"{name}.tflite"  # dtype 9: TensorType.INT8
        models[name].write_bytes(with_input(tiny.model.read_bytes(), **change))
    return models


@pytest.mark.parametrize(
    "kind, shown", [("patch", "float32 [1, 96, 64]"), ("int8", "int8 [1, 16000]")]
)
@pytest.mark.parametrize("mode", ["bench", "eval", "stream"])
def test_model_whose_input_is_not_a_waveform(mode, kind, shown, tiny, not_waveform, capsys):
    extra = {
        "bench": [],
        "eval": ["--data", tiny.data],
        "stream": ["--wav", tiny.data / "hum" / "h1.wav"],
    }
    code, out, err = run([mode, "--model", not_waveform[kind], *extra[mode]], capsys)
    assert code == 2 and out == ""
    assert err == f"lean_kd_pi: error: {not_waveform[kind]}: expected a float32 waveform input " \
        f"of shape [1, N] or [N], got {shown}\n"  # fmt: skip


def test_bad_input_without_traceback_in_a_real_process(tmp_path):
    missing = tmp_path / "nope.tflite"
    command = [sys.executable, "-m", "lean_kd_pi", "bench", "--model", str(missing)]
    result = subprocess.run(command, cwd=RUNNER_DIR, capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"lean_kd_pi: error: {missing}: model file not found\n"
