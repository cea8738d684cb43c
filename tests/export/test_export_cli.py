"""``lean-kd export``: a saved Keras model to TFLite, with labels from a file or the dataset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import export_helpers as h
from lean_kd.cli.main import main
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.export.metadata import read_metadata
from lean_kd.export.ops import summarize_ops

pytestmark = pytest.mark.trains  # rerun with other seeds by `make test-seeds`

SYNTH_CLASSES = ("dog_bark", "siren", "whistle")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    model_path = folder / "plain.keras"
    h.trained_model("plain").save(model_path)
    labels = folder / "labels.txt"
    labels.write_text("\n".join(h.LABELS) + "\n")
    return model_path, labels


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    synthesize(
        root,
        SynthConfig(classes=SYNTH_CLASSES, clips_per_class=4, duration_seconds=(1.0, 1.5)),
        progress=False,
    )
    return root


def test_export_float32_prints_size_and_ops(saved, tmp_path, capsys):
    model_path, labels = saved
    out = tmp_path / "model.tflite"
    assert (
        main(
            [
                "export",
                "--model",
                str(model_path),
                "--quant",
                "float32",
                "--out",
                str(out),
                "--labels",
                str(labels),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    size = out.stat().st_size
    assert f"Wrote {out}: {size} bytes ({size / 1e6:.2f} MB), float32" in printed
    assert f"Ops: {summarize_ops(out.read_bytes()).format()}" in printed
    assert read_metadata(out)["labels"] == h.LABELS


def test_export_int8_calibrates_on_dataset_and_takes_its_labels(
    saved, synth_root, tmp_path, capsys
):
    model_path, _ = saved
    out = tmp_path / "int8.tflite"
    argv = [
        "export",
        "--model",
        str(model_path),
        "--quant",
        "int8",
        "--out",
        str(out),
        "--calibration-data",
        "csv",
        str(synth_root),
        "--calibration-count",
        "5",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "int8" in printed and "Float ops: " in printed and "LOG" in printed
    metadata = read_metadata(out)
    assert metadata["labels"] == list(SYNTH_CLASSES) and metadata["sample_rate"] == 16000


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--qat", "--quant", "float16"],
            r"--qat trains for full int8: pass --quant int8 \(got --quant float16\)",
        ),
        (["--qat", "--quant", "int8"], "--qat needs --config RECIPE.yaml"),
        (
            ["--qat", "--quant", "int8", "--config", "{labels}", "--qat-epochs", "0"],
            "--qat-epochs must be > 0, got 0",
        ),
        (
            ["--qat", "--quant", "int8", "--config", "{labels}", "--teacher", "{labels}"]
            + ["--cache", "{labels}"],
            "Pass either --teacher or --cache, not both",
        ),
        (
            ["--quant", "int8"],
            "--quant int8 needs calibration audio: pass --calibration-data DATASET ROOT",
        ),
        (["--labels", "{missing}"], "labels file not found"),
        (["--labels", "{two}"], "has 3 classes, got 2 labels"),
        (
            ["--labels", "{labels}", "--sample-rate", "8000"],
            r"Expected sample_rate 16000 \(the model's\), got 8000",
        ),
        (["--labels", "{labels}", "--out", "{nowhere}"], "does not exist; create it first"),
        ([], r"No class names: .*plain.keras carries none .*pass --labels FILE"),
    ],
)
def test_export_errors_are_one_line(saved, tmp_path, capsys, extra, message):
    model_path, labels = saved
    two = tmp_path / "two.txt"
    two.write_text("a\nb\n")
    names = {
        "missing": tmp_path / "nope.txt",
        "two": two,
        "labels": labels,
        "nowhere": tmp_path / "no" / "m.tflite",
    }
    argv = ["export", "--model", str(model_path), "--out", str(tmp_path / "m.tflite")]
    argv += [part.format(**names) for part in extra]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("lean-kd: error: ") and error.count("\n") == 1
    assert re.search(message, error)
    assert not (tmp_path / "m.tflite").exists()


def test_missing_and_unreadable_model_files(tmp_path, capsys):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    for path, message in [
        (tmp_path / "none.keras", "model file not found"),
        (broken, "not a loadable Keras model"),
    ]:
        assert (
            main(
                [
                    "export",
                    "--model",
                    str(path),
                    "--out",
                    str(tmp_path / "m.tflite"),
                    "--labels",
                    str(path),
                ]
            )
            == 2
        )
        assert message in capsys.readouterr().err


# -- QAT with distillation ----------------------------------------------------------------------
def _qat_recipe(folder: Path, synth_root: Path, loss: str = "hinton_kd") -> Path:
    recipe = folder / f"qat_{loss}.yaml"
    recipe.write_text(
        f"name: qat_test\n"
        f"data: {{dataset: csv, root: {synth_root}}}\n"
        f"pipeline: {{batch_size: 4, cache: true}}\n"
        f"loss: [{{name: {loss}, temperature: 4.0}}]\n"
        f"training: {{learning_rate: 1.0e-2}}\n"
    )
    return recipe


@pytest.mark.heavy
def test_export_qat_fine_tunes_with_the_teacher_and_writes_int8(
    saved, synth_root, tmp_path, capsys
):
    model_path, _ = saved
    teacher = tmp_path / "teacher.keras"
    h.build_model("plain", seed=1).save(teacher)
    out = tmp_path / "qat.tflite"
    argv = ["export", "--model", str(model_path), "--quant", "int8", "--qat"]
    argv += ["--config", str(_qat_recipe(tmp_path, synth_root)), "--teacher", str(teacher)]
    argv += ["--qat-epochs", "1", "--calibration-count", "5", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    run_dir = tmp_path / "qat.qat"
    assert f"QAT fine-tune: checkpoints in {run_dir}" in printed and "int8" in printed
    assert (run_dir / "best.keras").is_file()
    assert "kd" in (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    summary = summarize_ops(out.read_bytes())
    assert "CONV_2D" not in summary.float_ops and "LOG" in summary.float_ops
    assert read_metadata(out)["labels"] == list(SYNTH_CLASSES)


def test_export_qat_without_teacher_for_a_kd_recipe_is_one_line(
    saved, synth_root, tmp_path, capsys
):
    model_path, _ = saved
    argv = ["export", "--model", str(model_path), "--quant", "int8", "--qat"]
    argv += [
        "--config",
        str(_qat_recipe(tmp_path, synth_root)),
        "--out",
        str(tmp_path / "m.tflite"),
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "needs a teacher: pass --teacher TEACHER.keras or --cache DIR" in error
    assert not (tmp_path / "m.tflite").exists() and not (tmp_path / "m.qat").exists()
