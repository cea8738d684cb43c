"""The end-of-run report a person reads: ``DIR/report.md`` plus the PNGs it shows.

:func:`write_run_report` reads the run folder through :func:`lean_kd.run.results.load_run` (only
the files of the run-folder contract) and writes, each atomically (temporary name, then
rename): the dataset summary; one table of the floor (the linear probe on frozen YAMNet) /
teacher / student / KD student / quantized students (mAP, accuracy, parameters, size, latency
and memory from the benchmark) with the models below the floor named; training curves;
per-class AP bars; confusion matrices (single-label data); the TFLite-vs-Keras parity numbers;
the benchmark; stage timings; and the commands that reproduce the run. A part that is missing
(no test split, no benchmark without the official YAMNet, an unfinished stage) becomes a
sentence in the report, not an error. Runs whose YAMNet branches started from random weights
carry :data:`PRETRAINED_MISSING` at the top.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from lean_kd.bench.plots import latency_cdf, map_vs_size
from lean_kd.bench.report import to_markdown
from lean_kd.files import write_atomic
from lean_kd.reporting.markdown import MIB, format_number, markdown_table
from lean_kd.run import plots
from lean_kd.run.results import (
    STAGE_FOLDERS,
    TRAINED,
    ModelResult,
    RunData,
    distillation_note,
    floor_note,
    load_run,
)

logger = logging.getLogger(__name__)

PRETRAINED_MISSING = (
    "**Pretrained YAMNet weights were not available: the YAMNet branches were randomly "
    "initialised.** The numbers below do not show what the recipe reaches with pretrained weights."
)


def write_run_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.md`` and its PNGs; returns the Markdown path."""
    run = load_run(Path(run_dir))
    sections = [
        _header(run),
        _dataset_section(run),
        _models_section(run),
        _curves_section(run),
        _per_class_section(run),
        _confusion_section(run),
        _parity_section(run),
        _bench_section(run),
        _stages_section(run),
        _reproduce_section(run),
    ]
    path = run.run_dir / "report.md"
    write_atomic(path, "\n\n".join("\n".join(lines) for lines in sections) + "\n")
    logger.info("Wrote %s", path)
    return path


def _header(run: RunData) -> list[str]:
    dataset = (run.index or {}).get("dataset", "unknown dataset")
    recipe = ((run.run_info or {}).get("resolved_recipe") or {}).get("name")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"# lean_kd run report: {recipe} ({dataset})"
        if recipe
        else f"# lean_kd run report: {dataset}",
        "",
        f"Run folder `{run.run_dir}`, report written {created}.",
    ]
    pretrained = (run.index or {}).get(
        "pretrained_yamnet", (run.run_info or {}).get("pretrained_yamnet")
    )
    if pretrained is False:
        lines += ["", f"> {PRETRAINED_MISSING}"]
    elif pretrained is None:
        lines += ["", "Whether pretrained YAMNet weights were used is not recorded."]
    return lines


def _dataset_section(run: RunData) -> list[str]:
    lines = ["## Dataset", ""]
    if run.index is None:
        return lines + [_missing("prepare", run)]
    index, names = run.index, run.class_names
    splits = index.get("splits", {})
    kind = "multi-label" if index.get("multi_label") else "single-label"
    row = [index.get("dataset"), f"`{index.get('root')}`", index.get("num_classes"), kind]
    lines += markdown_table(
        ["dataset", "root", "classes", "labels", *(f"{split} clips" for split in splits)],
        [row + list(splits.values())],
        align="llrl" + "r" * len(splits),
    )
    shown = ", ".join(names[:50]) + (f", ... ({len(names)} in all)" if len(names) > 50 else "")
    lines += ["", f"Classes: {shown}."]
    if index.get("fingerprint"):
        lines += ["", f"Data index fingerprint `{str(index['fingerprint'])[:16]}`."]
    if not splits.get("test"):
        lines += ["", "No test split: the models are evaluated on the validation split."]
    broken = index.get("broken_files") or []
    if broken:
        lines += ["", f"{len(broken)} unreadable audio file(s) left out:"]
        lines += [f"- `{b.get('path')}`: {b.get('reason')}" for b in broken[:10]]
        lines += ["- ..."] if len(broken) > 10 else []
    return lines


def _models_section(run: RunData) -> list[str]:
    lines = ["## Models", ""]
    if not run.models:
        none = "_No model results: neither evaluate/ nor a training stage finished._"
        return lines + [none, "", floor_note(run)]
    threads, bench_by_file = _bench_entries(run.bench)
    rows = [_model_row(m, bench_by_file.get(m.file_name or "")) for m in run.models]
    evaluated = {m.file_name for m in run.models}
    for name, entry in bench_by_file.items():
        if name not in evaluated:  # the official YAMNet baseline: measured, not evaluated here
            label = f"{name} (bench {entry[0]['role']})"
            measured = _size_and_bench(entry[0]["file_size_bytes"], entry)
            rows.append([label, "", "n/a", "n/a", "n/a", *measured, "`bench/bench.json`"])
    latency = f"p50 ms ({threads} thread{'s' if threads != 1 else ''})" if threads else "p50 ms"
    header = ["model", "split", "mAP", "accuracy", "parameters", "size MiB", latency, "memory MiB"]
    lines += markdown_table([*header, "numbers from"], rows, align="llrrrrrrl")
    lines += ["", floor_note(run), "", _models_note(run)]
    lines += ["", note] if (note := distillation_note(run)) else []
    scatter = [
        (m.label, m.size_bytes, m.metrics["map"])
        for m in run.models
        if m.size_bytes and m.metrics.get("map") is not None
    ]
    if scatter:
        map_vs_size(scatter, run.run_dir / "map_vs_size.png")
        lines += ["", "![mAP against model file size](map_vs_size.png)"]
    return lines


def _model_row(model: ModelResult, entry: tuple | None) -> list[object]:
    return [
        model.label,
        model.split,
        format_number(model.metrics.get("map"), digits=3),
        format_number(model.metrics.get("accuracy"), digits=3),
        f"{model.parameters:,}" if model.parameters else "n/a",
        *_size_and_bench(model.size_bytes, entry),
        f"`{model.source}`",
    ]


def _size_and_bench(size_bytes: int | None, entry: tuple | None) -> list[str]:
    """Size MiB, p50 latency ms and model memory MiB ("n/a" where not benchmarked)."""
    if entry is None:
        return [format_number(size_bytes, MIB), "n/a", "n/a"]
    model, latency = entry
    return [
        format_number(size_bytes, MIB),
        format_number(latency["p50_ms"] if latency["p50_ms"] is not None else latency["mean_ms"]),
        format_number(model["memory"]["model_delta_bytes"], MIB),
    ]


def _bench_entries(bench: Mapping | None) -> tuple[int | None, dict[str, tuple[Mapping, Mapping]]]:
    """The thread count shown (1 if measured, else the fewest), {file name: (model, latency)}."""
    if bench is None:
        return None, {}
    counts = sorted({e["threads"] for m in bench["models"] for e in m["latency"]})
    threads = 1 if 1 in counts else counts[0]
    entries = {}
    for model in bench["models"]:
        latency = next((e for e in model["latency"] if e["threads"] == threads), None)
        if latency is not None:
            entries[Path(model["path"]).name] = (model, latency)
    return threads, entries


def _models_note(run: RunData) -> str:
    note = (
        "mAP and accuracy are clip-level (1 s windows, scores averaged per clip; the floor "
        "pools YAMNet's 0.975 s windows by mean and max before its logistic regression); "
        "accuracy is n/a for multi-label data. Size is the model file (.keras or .tflite)."
    )
    if run.bench is None:
        return f"{note} Latency and memory: no benchmark (bench stage: {run.unfinished['bench']})."
    return note + (
        " Latency and memory come from the benchmark below (TFLite files only; Keras checkpoints "
        "are not benchmarked); memory is the peak RSS a model adds to a process that runs the "
        "runtime alone."
    )


def _curves_section(run: RunData) -> list[str]:
    lines = ["## Training curves", ""]
    if not run.histories:
        return lines + ["_No training history: no teacher, student or distill stage finished._"]
    plots.training_curves(run.histories, run.run_dir / "training_curves.png")
    lines.append("![Loss and validation mAP per epoch](training_curves.png)")
    missing = [label for label in TRAINED.values() if label not in run.histories]
    if missing:
        lines += ["", f"No history for: {', '.join(missing)}."]
    return lines


def _per_class_section(run: RunData) -> list[str]:
    lines = ["## Per-class AP", ""]
    per_class = {m.label: m.per_class_ap for m in run.models if m.per_class_ap}
    if not per_class or not run.class_names:
        return lines + ["_No per-class AP: no model was evaluated._"]
    plots.per_class_ap_bars(per_class, run.class_names, run.run_dir / "per_class_ap.png")
    return lines + ["![Per-class average precision of each model](per_class_ap.png)"]


def _confusion_section(run: RunData) -> list[str]:
    lines = ["## Confusion matrices", ""]
    if run.multi_label:
        return lines + ["Not applicable: the data is multi-label."]
    shown = [m for m in run.models if m.metrics.get("confusion_matrix")]
    if not shown:
        return lines + ["_No confusion matrix in the evaluation results._"]
    lines.append(
        "Rows: true class; columns: predicted (arg-max) class; colour: fraction of the row."
    )
    for model in shown:
        name = f"confusion_{model.key}.png"
        title = f"{model.label}, {model.split} split"
        matrix = model.metrics["confusion_matrix"]
        plots.confusion_heatmap(matrix, run.class_names, run.run_dir / name, title=title)
        lines += ["", f"### {model.label}", "", f"![Confusion matrix of {model.label}]({name})"]
    return lines


def _parity_section(run: RunData) -> list[str]:
    lines = ["## TFLite vs Keras parity", ""]
    if run.export is None:
        return lines + [_missing("export", run)]
    maps = {m.key: m.metrics.get("map") for m in run.models}
    rows = []
    for entry in run.export.get("models", []):
        parity, quant = entry.get("parity") or {}, entry.get("quant")
        keras_map, tflite_map = maps.get("distill"), maps.get(f"distill_{quant}")
        delta = None if None in (keras_map, tflite_map) else tflite_map - keras_map
        rows.append(
            [
                quant,
                f"`{Path(entry.get('path', '?')).name}`",
                format_number(entry.get("size_bytes"), MIB),
                format_number(parity.get("max_abs_diff"), digits=6),
                format_number(parity.get("top1_agreement"), digits=4),
                parity.get("num_windows", "n/a"),
                parity.get("num_threads", "n/a"),
                format_number(delta, digits=4),
            ]
        )
    header = ["quantization", "file", "size MiB", "max abs score diff", "top-1 agreement"]
    header += ["windows", "threads", "mAP TFLite - Keras"]
    lines += markdown_table(header, rows, align="llrrrrrr")
    note = (
        "The distilled Keras student and each TFLite file score the same windows (scores are "
        "probabilities in [0, 1]); the last column compares the clip-level mAP of evaluate/."
    )
    return lines + ["", note]


def _bench_section(run: RunData) -> list[str]:
    lines = ["## Benchmark", ""]
    if run.bench is None:
        note = (
            "The benchmark compares the int8 student with the official YAMNet TFLite and is "
            "skipped when that file is not available."
        )
        return lines + [_missing("bench", run), note]
    threads, entries = _bench_entries(run.bench)
    names = {model["path"]: _bench_label(run, name) for name, (model, _) in entries.items()}
    latency_cdf([run.bench], run.run_dir / "latency_cdf.png", threads=threads, names=names)
    table = to_markdown(run.bench).rstrip("\n")
    return lines + [table, "", "![Latency per window, CDF](latency_cdf.png)"]


def _bench_label(run: RunData, file_name: str) -> str:
    return next((m.label for m in run.models if m.file_name == file_name), file_name)


def _stages_section(run: RunData) -> list[str]:
    rows = []
    for stage in STAGE_FOLDERS:
        info = run.stages.get(stage)
        if info is None:
            rows.append([stage, run.unfinished.get(stage, "?"), "", ""])
        else:
            seconds = format_number(info.get("seconds"), digits=1)
            rows.append([stage, "finished", seconds, info.get("finished", "")])
    total = sum(float(info.get("seconds") or 0) for info in run.stages.values())
    table = markdown_table(["stage", "status", "seconds", "finished"], rows, align="llrl")
    return ["## Stages", "", *table, "", f"Total time of the finished stages: {total:.1f} s."]


def _reproduce_section(run: RunData) -> list[str]:
    info = run.run_info or {}
    prepare_inputs = (run.stages.get("prepare") or {}).get("inputs") or {}
    recipe = info.get("recipe") or prepare_inputs.get("recipe")
    argv = [str(arg) for arg in info.get("argv") or []]
    argv = argv[argv.index("run") :] if "run" in argv else []  # drop the program (sys.argv[0])
    rebuilt = ["run", "--config", str(recipe or "RECIPE.yaml"), "--out", str(run.run_dir)]
    lines = [
        "## Reproduce",
        "",
        "```sh",
        "python -m pip install -e .   # in the lean_kd source tree",
        shlex.join(["lean-kd", *(argv or rebuilt)]),
        "```",
        "",
    ]
    if not argv and recipe:
        lines.append("_The command line was not recorded (run.json); rebuilt from the recipe._")
    elif not argv:
        lines.append("_Neither run.json nor the recipe path is recorded: replace RECIPE.yaml._")
    lines.append("Rerunning into the same folder reuses every stage whose inputs did not change.")
    return lines


def _missing(stage: str, run: RunData) -> str:
    return f"_Not available (the {stage} stage: {run.unfinished.get(stage, 'missing')})._"
