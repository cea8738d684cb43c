"""The run report: a fake run folder (small JSON / CSV files, no training) in, report.md and
valid PNGs out; table values, parity numbers and the pretrained-missing marker checked; missing
optional parts become sentences, not errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from figure_checks import overlapping_labels
from lean_kd.bench.schema import SCHEMA_NAME, SCHEMA_VERSION
from lean_kd.errors import DataError
from lean_kd.run import plots
from lean_kd.run.report import PRETRAINED_MISSING, write_run_report
from lean_kd.run.results import load_run, read_history
from lean_kd_runtime.metrics import evaluate_scores

CLASSES = ["dog", "rain", "siren", "clock"]
PNG = b"\x89PNG\r\n\x1a\n"
MIB = 1024 * 1024
# Keras model file sizes and the TFLite files of export/ (bytes).
SIZES = {"teacher": 3 * MIB, "student": MIB, "distill": MIB, "int8": MIB // 4, "float16": MIB // 2}


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def finish(run: Path, stage: str, outputs: list[str], seconds: float = 1.5) -> None:
    """stage.json last, as the runner writes it."""
    record = {"stage": stage, "fingerprint": "ab" * 32, "inputs": {}, "seconds": seconds,
              "finished": "2026-11-22T01:00:00+00:00", "outputs": outputs}  # fmt: skip
    write_json(run / stage / "stage.json", record)


def scores_metrics(seed: int, *, multi_label: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.arange(4), rng.integers(0, 4, size=16)]
    scores = rng.random((20, 4)) + 0.6 * np.eye(4)[labels]  # better than chance
    if multi_label:
        return evaluate_scores(scores, np.eye(4)[labels], multi_label=True)
    return evaluate_scores(scores, labels, multi_label=False)


def make_prepare(run: Path, *, pretrained: bool | None, test: int = 20, multi_label=False):
    index = {
        "dataset": "synth", "root": "/data/synth", "num_classes": 4, "class_names": CLASSES,
        "multi_label": multi_label, "splits": {"train": 60, "val": 20, "test": test},
        "broken_files": [{"path": "audio/bad.wav", "reason": "empty file"}], "fingerprint": "f" * 64,
    }  # fmt: skip
    if pretrained is not None:
        index["pretrained_yamnet"] = pretrained
    write_json(run / "prepare" / "index.json", index)
    finish(run, "prepare", ["index.json"], seconds=2.0)


def make_trained(run: Path, key: str, seed: int, *, splits=("val", "test"), multi_label=False):
    folder = run / key
    folder.mkdir(parents=True)
    (folder / "best.keras").write_bytes(b"k" * SIZES[key])
    rows = ["epoch,loss,map,val_loss,val_map", "0,9.0,0.1,9.0,0.1", "1,8.0,0.2,8.0,0.2"]  # killed
    rows += [
        f"{e},{2.0 - 0.3 * e},{0.3 + 0.1 * e},{2.1 - 0.2 * e},{0.25 + 0.1 * e}" for e in range(4)
    ]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    metrics = {s: scores_metrics(seed, multi_label=multi_label) for s in splits}
    write_json(
        folder / "metrics.json", {"epochs_run": 4, "parameters": 1000 * (seed + 1), **metrics}
    )
    finish(run, key, ["best.keras", "history.csv", "metrics.json"])


def make_export(run: Path) -> list[dict]:
    models = []
    for quant, diff, agree in (("int8", 0.0042, 0.975), ("float16", 3e-5, 1.0)):
        name = f"lean_tiny_{quant}.tflite"
        (run / "export").mkdir(exist_ok=True)
        (run / "export" / name).write_bytes(b"t" * SIZES[quant])
        parity = {
            "max_abs_diff": diff,
            "top1_agreement": agree,
            "num_windows": 40,
            "num_threads": 1,
        }
        models.append({"quant": quant, "path": name, "size_bytes": SIZES[quant], "parity": parity})
    write_json(run / "export" / "export.json", {"models": models})
    finish(run, "export", ["export.json"] + [m["path"] for m in models])
    return models


def make_evaluate(run: Path) -> dict[str, dict]:
    files = {"teacher": "teacher/best.keras", "student": "student/best.keras",
             "distill": "distill/best.keras", "distill_int8": "export/lean_tiny_int8.tflite",
             "distill_float16": "export/lean_tiny_float16.tflite"}  # fmt: skip
    reports = {}
    for seed, (key, model) in enumerate(files.items()):
        metrics = scores_metrics(10 + seed)
        reports[key] = {
            "model": str(run / model), "format": "tflite" if model.endswith(".tflite") else "keras",
            "split": "test", "dataset": "synth", "size_bytes": SIZES[key.split("_")[-1]],
            "num_clips": 20, "num_windows": 40, "skipped_files": [], "class_names": CLASSES,
            **metrics, "per_class_ap": dict(zip(CLASSES, metrics["per_class_ap"])), "seconds": 1.0,
        }  # fmt: skip
        write_json(run / "evaluate" / f"{key}.json", reports[key])
    finish(run, "evaluate", [f"{key}.json" for key in files])
    return reports


def bench_model(role: str, path: str, size: int, p50: float, delta_bytes: int) -> dict:
    samples = list(p50 + np.random.default_rng(0).random(50))
    latency = {
        "threads": 1, "delegate": "xnnpack", "runs": 50, "p50_ms": p50, "p90_ms": p50 + 0.5,
        "p99_ms": p50 + 0.9, "mean_ms": p50 + 0.2, "min_ms": p50, "max_ms": p50 + 1, "std_ms": 0.3,
        "init_ms": None, "first_inference_ms": None, "warmup_mean_ms": None,
        "real_time_factor": p50 / 1000, "real_time_factor_basis": "p50", "samples_ms": samples,
    }  # fmt: skip
    memory = {"method": "test", "peak_rss_bytes": 40 * MIB + delta_bytes,
              "runtime_only_peak_rss_bytes": 40 * MIB, "model_delta_bytes": delta_bytes,
              "init_delta_bytes": None, "tensor_arena_bytes": None}  # fmt: skip
    return {
        "role": role, "path": path, "file_size_bytes": size, "input_shape": [1, 16000],
        "input_dtype": "float32", "sample_rate_hz": 16000, "sample_rate_source": "metadata",
        "audio_seconds": 1.0, "macs_per_inference": 5_000_000, "macs_by_op": {"CONV_2D": 5_000_000},
        "uncounted_ops": [], "memory": memory, "latency": [latency],
    }  # fmt: skip


def make_bench(run: Path) -> None:
    student = bench_model(
        "model", str(run / "export" / "lean_tiny_int8.tflite"), SIZES["int8"], 4.0, 3 * MIB // 2
    )
    yamnet = bench_model("baseline", "/weights/yamnet.tflite", 4_078_224, 12.5, 20 * MIB)
    report = {
        "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "tool": "lean-kd bench",
        "created_utc": "2026-11-22T01:00:00+00:00",
        "host": {"machine": "x86_64", "system": "Linux", "cpu_count": 2, "python": "3.11.7",
                 "runtime": "ai_edge_litert 2.3.0", "emulated": False, "device": None,
                 "cpu_int8_features": ["avx2"]},
        "settings": {"runs": 50, "warmup_runs": 5, "block_runs": 10, "threads": [1], "input_seed": 0},
        "models": [student, yamnet], "ratios": {
            "baseline_path": yamnet["path"], "file_size": 0.064, "model_memory": 0.075,
            "macs": 1.0, "latency": [{"threads": 1, "p50": 0.32, "p90": 0.35, "p99": 0.37,
                                      "mean": 0.33, "real_time_factor": 0.32}],
        },
    }  # fmt: skip
    write_json(run / "bench" / "bench.json", report)
    (run / "bench" / "bench.md").write_text("bench\n")
    finish(run, "bench", ["bench.json", "bench.md"])


@pytest.fixture
def full_run(tmp_path: Path) -> tuple[Path, dict]:
    run = tmp_path / "run"
    make_prepare(run, pretrained=False)
    for seed, key in enumerate(("teacher", "student", "distill")):
        make_trained(run, key, seed)
    make_export(run)
    reports = make_evaluate(run)
    make_bench(run)
    argv = ["run", "--config", "models/demo recipe.yaml", "--out", str(run)]
    write_json(
        run / "run.json",
        {"argv": argv, "recipe": "models/demo recipe.yaml", "resolved_recipe": {"name": "demo"}},
    )
    return run, reports


def table_row(text: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row that starts with ``first_cell``."""
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 2000
    assert mpimg.imread(path).shape[0] > 100  # decodes


def test_full_report_tables_parity_marker_and_figures(full_run):
    run, reports = full_run
    path = write_run_report(run)
    assert path == run / "report.md"
    text = path.read_text()
    assert text.startswith("# lean_kd run report: demo (synth)")
    assert PRETRAINED_MISSING in text and "randomly initialised" in text
    # Dataset summary.
    assert table_row(text, "synth") == [
        "synth",
        "`/data/synth`",
        "4",
        "single-label",
        "60",
        "20",
        "20",
    ]
    assert "Classes: dog, rain, siren, clock." in text and "- `audio/bad.wav`: empty file" in text
    assert "No test split" not in text
    # Models: evaluate/ numbers, bench latency and memory for the int8 file, the YAMNet baseline.
    int8 = reports["distill_int8"]
    assert table_row(text, "KD student, int8 TFLite") == [
        "KD student, int8 TFLite", "test", f"{int8['map']:.3f}", f"{int8['accuracy']:.3f}", "3,000",
        "0.25", "4.00", "1.50", "`evaluate/distill_int8.json`",
    ]  # fmt: skip
    teacher = table_row(text, "teacher")
    assert teacher[2:6] == [
        f"{reports['teacher']['map']:.3f}",
        f"{reports['teacher']['accuracy']:.3f}",
        "1,000",
        "3.00",
    ]
    assert teacher[6:8] == ["n/a", "n/a"]  # Keras checkpoints are not benchmarked
    assert table_row(text, "student (no KD)")[2] == f"{reports['student']['map']:.3f}"
    assert table_row(text, "yamnet.tflite (bench baseline)")[2:8] == [
        "n/a",
        "n/a",
        "n/a",
        "3.89",
        "12.50",
        "20.00",
    ]
    assert "p50 ms (1 thread)" in text
    labels = [m.label for m in load_run(run).models]  # Keras models, then the export order
    assert labels == ["teacher", "student (no KD)", "KD student", "KD student, int8 TFLite",
                      "KD student, float16 TFLite"]  # fmt: skip
    # Parity: export.json figures and the mAP difference of evaluate/.
    delta = int8["map"] - reports["distill"]["map"]
    assert table_row(text, "int8") == [
        "int8", "`lean_tiny_int8.tflite`", "0.25", "0.004200", "0.9750", "40", "1", f"{delta:.4f}"
    ]  # fmt: skip
    assert table_row(text, "float16")[3:5] == ["0.000030", "1.0000"]
    # Benchmark table (bench.report.to_markdown) and stage timings.
    assert "| lean_tiny_int8.tflite (model) | 1 | 4.00 |" in text
    assert table_row(text, "bench")[:3] == ["bench", "finished", "1.5"]
    assert "Total time of the finished stages: 11.0 s." in text
    # Reproduce: run.json's argv, quoted for the shell.
    assert f"lean-kd run --config 'models/demo recipe.yaml' --out {run}" in text
    figures = ["training_curves.png", "per_class_ap.png", "map_vs_size.png", "latency_cdf.png"]
    figures += [f"confusion_{key}.png" for key in reports]
    for name in figures:
        assert f"]({name})" in text
        assert_png(run / name)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_figures_have_no_labels_over_each_other(full_run, monkeypatch):
    """As in the demo, the float TFLite file has its Keras model's size and mAP: the scatter's
    two points coincide, and their names must still not be printed over each other."""
    run, reports = full_run
    twin = {key: reports["distill"][key] for key in ("map", "size_bytes", "per_class_ap")}
    write_json(run / "evaluate" / "distill_float16.json", {**reports["distill_float16"], **twin})
    (run / "export" / "lean_tiny_float16.tflite").write_bytes(b"t" * SIZES["distill"])
    overlaps, close = {}, plots.plt.close

    def check_then_close(figure):  # every report figure passes here once it is saved
        overlaps[figure.axes[0].get_title() or figure.axes[0].get_xlabel()] = overlapping_labels(
            figure
        )
        close(figure)

    monkeypatch.setattr(plots.plt, "close", check_then_close)
    write_run_report(run)
    assert len(overlaps) == 9  # curves, per-class AP, scatter, latency CDF, 5 confusion matrices
    assert overlaps == {figure: [] for figure in overlaps}


def test_missing_optional_parts_become_notes(tmp_path):
    run = tmp_path / "run"
    make_prepare(run, pretrained=None, test=0)
    make_trained(run, "teacher", 0, splits=("val",))
    (run / "distill").mkdir()
    (run / "distill" / "history.csv").write_text("epoch,loss\n0,1.0\n")  # running: no stage.json
    text = write_run_report(run).read_text()
    assert PRETRAINED_MISSING not in text
    assert "Whether pretrained YAMNet weights were used is not recorded." in text
    assert "No test split: the models are evaluated on the validation split." in text
    val = json.loads((run / "teacher" / "metrics.json").read_text())["val"]
    assert table_row(text, "teacher")[:6] == [
        "teacher", "val", f"{val['map']:.3f}", f"{val['accuracy']:.3f}", "1,000", "3.00"
    ]  # fmt: skip
    assert "`teacher/metrics.json`" in text
    assert "No history for: student (no KD), KD student." in text
    assert (
        "_Not available (the export stage: not run or not finished (no export/stage.json))._"
        in text
    )
    assert "Latency and memory: no benchmark (bench stage: not run or not finished" in text
    assert "skipped when that file is not available" in text
    assert "confusion_teacher.png" in text  # metrics.json's val entry carries the matrix
    assert "lean-kd run --config RECIPE.yaml" in text and "Neither run.json nor the recipe" in text
    for name in ("training_curves.png", "per_class_ap.png", "confusion_teacher.png"):
        assert_png(run / name)
    assert not (run / "latency_cdf.png").exists()


def test_nothing_finished_and_multi_label(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    text = write_run_report(empty).read_text()
    assert "# lean_kd run report: unknown dataset" in text
    assert "_No model results" in text and "_No training history" in text
    assert "_No per-class AP" in text
    run = tmp_path / "tagging"
    make_prepare(run, pretrained=True, multi_label=True)
    make_trained(run, "distill", 2, multi_label=True)
    text = write_run_report(run).read_text()
    assert "Not applicable: the data is multi-label." in text and "randomly" not in text
    assert table_row(text, "KD student")[3] == "n/a"  # no accuracy for multi-label data


def test_stage_with_missing_output_is_unfinished(full_run):
    run, _ = full_run
    (run / "export" / "lean_tiny_float16.tflite").unlink()
    text = write_run_report(run).read_text()
    assert table_row(text, "export")[1] == "outputs missing: lean_tiny_float16.tflite"
    assert "_Not available (the export stage: outputs missing" in text


def test_resumed_history_keeps_last_row_per_epoch(full_run):
    run, _ = full_run
    history = read_history(run / "teacher" / "history.csv")
    assert history["val_map"] == pytest.approx([0.25, 0.35, 0.45, 0.55])
    assert history["loss"] == pytest.approx([2.0, 1.7, 1.4, 1.1])
    assert load_run(run).histories["KD student"] == history


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda run: (run / "evaluate" / "teacher.json").write_text("{oops"),
            r"evaluate/teacher.json: cannot read",
        ),
        (lambda run: (run / "prepare" / "stage.json").write_text("[1]"), "expected a JSON object"),
        (
            lambda run: (run / "teacher" / "history.csv").write_text("step,loss\n0,1\n"),
            "'epoch' column",
        ),
        (
            lambda run: (run / "teacher" / "history.csv").write_text("epoch,loss\nx,1\n"),
            "not a numeric history",
        ),
        (
            lambda run: write_json(run / "bench" / "bench.json", {}),
            "bench.json: not a lean_kd.bench",
        ),
    ],
)
def test_corrupt_files_are_errors_that_name_the_file(full_run, damage, message):
    run, _ = full_run
    damage(run)
    with pytest.raises(DataError, match=message):
        write_run_report(run)


def test_run_folder_must_exist(tmp_path):
    with pytest.raises(DataError, match="Run folder .*nope does not exist"):
        write_run_report(tmp_path / "nope")


def test_plots_on_many_classes_and_bad_input(tmp_path):
    names = [f"class {i}" for i in range(80)]
    aps = {"a": dict(zip(names, np.linspace(0, 1, 80))), "b": {n: None for n in names}}
    assert_png(plots.per_class_ap_bars(aps, names, tmp_path / "ap.png", max_classes=12))
    matrix = np.diag(np.arange(1, 81)).tolist()
    assert_png(plots.confusion_heatmap(matrix, names, tmp_path / "cm.png", title="80 classes"))
    with pytest.raises(DataError, match=r"shape \[3, 3\].*got \[2, 2\]"):
        plots.confusion_heatmap([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "x.png", title="x")
    with pytest.raises(DataError, match="at least one model"):
        plots.training_curves({}, tmp_path / "x.png")
    with pytest.raises(DataError, match="at least one model"):
        plots.per_class_ap_bars({}, names, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def make_probe(run: Path, metrics: dict) -> None:
    report = {"backbone": "yamnet", "features": "both", "C": 1.0, "val": metrics, "test": metrics}
    write_json(run / "probe" / "metrics.json", report)
    (run / "probe" / "probe.npz").write_bytes(b"npz")
    finish(run, "probe", ["metrics.json", "probe.npz"])


def test_floor_row_comes_first_and_names_the_models_below_it(full_run):
    from lean_kd.run.summary import results_table

    run, reports = full_run
    labels = np.arange(20) % 4
    make_probe(run, evaluate_scores(np.eye(4)[labels], labels, multi_label=False))  # perfect
    text = write_run_report(run).read_text()
    assert table_row(text, "floor: linear probe on frozen YAMNet") == [
        "floor: linear probe on frozen YAMNet", "test", "1.000", "1.000", "n/a", "n/a", "n/a",
        "n/a", "`probe/metrics.json`",
    ]  # fmt: skip
    assert [m.key for m in load_run(run).models][:2] == ["probe", "teacher"]
    below = "teacher, student (no KD), KD student, KD student, int8 TFLite, "
    below += "KD student, float16 TFLite"
    floor = "Floor (linear probe on frozen pretrained YAMNet, both features, C 1.0): "
    floor += "accuracy 1.000, "
    assert f"{floor}mAP 1.000 on test. Below the floor on accuracy: {below}." in text
    assert f"Below the floor on mAP: {below}." in text
    console = results_table(run)
    row = "| floor: linear probe on frozen YAMNet | test | 1.0000 | 1.0000 | n/a | n/a |"
    assert row in console
    assert console.endswith(f"Below the floor on mAP: {below}.")
    make_probe(run, evaluate_scores(-np.eye(4)[labels], labels, multi_label=False))  # worst
    text = write_run_report(run).read_text()
    assert "Below the floor" not in text and "accuracy 0.000, mAP" in text


def test_skipped_or_missing_probe_is_a_note(full_run):
    run, _ = full_run
    assert "No floor (probe stage: not run or not finished (no probe/stage.json))." in (
        write_run_report(run).read_text()
    )
    write_json(run / "probe" / "metrics.json", {"skipped": "no weights"})
    finish(run, "probe", ["metrics.json"])
    text = write_run_report(run).read_text()
    assert "No floor: the probe was skipped (no weights)." in text
    assert table_row(text, "probe")[:2] == ["probe", "finished"]


def test_probe_without_a_measured_split_is_a_note(full_run):
    run, _ = full_run
    make_probe(run, {})
    write_json(run / "probe" / "metrics.json", {"features": "both", "C": 1.0})  # fitted on all
    text = write_run_report(run).read_text()
    assert "No floor: the probe was fitted on every split it had" in text


def test_distillation_note_compares_kd_with_no_kd_and_says_why_when_below(full_run):
    from lean_kd.run.results import distillation_note

    run, reports = full_run
    kd, plain = reports["distill"], reports["student"]
    note = distillation_note(load_run(run))
    assert note.startswith("Distillation: the KD student against the student without KD on test: ")
    assert f"mAP {kd['map']:.3f} vs {plain['map']:.3f} ({kd['map'] - plain['map']:+.3f})" in note
    assert f"accuracy {kd['accuracy']:.3f} vs {plain['accuracy']:.3f}" in note
    assert "one clip of 20 moves accuracy by 0.050" in note
    assert ("Here the KD student is below" in note) == (kd["map"] < plain["map"])
    assert note in write_run_report(run).read_text()
    for change, below in ((+0.1, False), (-0.1, True)):  # the explanation follows the sign
        write_json(run / "evaluate" / "distill.json", {**kd, "map": plain["map"] + change})
        assert ("Here the KD student is below" in distillation_note(load_run(run))) == below
    teacher = reports["teacher"]
    for teacher_map, reason in (
        (plain["map"] - 0.05, "its teacher itself scores below"),
        (1.0, "one seed"),
    ):
        write_json(run / "evaluate" / "teacher.json", {**teacher, "map": teacher_map})
        assert reason in distillation_note(load_run(run))
