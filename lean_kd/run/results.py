"""Read a ``lean-kd run`` folder into plain data for the report: stages, dataset, model results.

Only the files of the run-folder contract are read (``DIR/<stage>/stage.json`` and the outputs
it lists, plus ``DIR/run.json``). A stage counts as finished when its stage.json exists and
every listed output exists; the fingerprint is the runner's business (it decides whether to
rerun), so a report written after a failed or partial run shows what the finished stages left.
Missing parts are None or empty, never an error: the report says what is missing. A file that
exists but cannot be parsed is a :class:`~lean_kd.errors.DataError` naming the file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lean_kd.bench.schema import validate_report
from lean_kd.errors import DataError
from lean_kd.run import STAGE_NAMES

logger = logging.getLogger(__name__)

STAGE_FOLDERS = tuple(name for name in STAGE_NAMES if name != "report")  # the ones with a folder
TRAINED = {"teacher": "teacher", "student": "student (no KD)", "distill": "KD student"}
PROBE_LABEL = "floor: linear probe on frozen YAMNet"
PROBE_SKIPPED = (
    "no pretrained YAMNet weights were found (set $LEAN_KD_YAMNET to the official yamnet.tflite)"
)


@dataclasses.dataclass(frozen=True)
class ModelResult:
    """One evaluated model: evaluate/<key>.json, or the training metrics.json as a fallback."""

    key: str  # "teacher", "student", "distill", "distill_int8", ...
    label: str  # for tables and legends
    source: str  # the file the numbers come from, relative to the run folder
    split: str
    metrics: Mapping[str, Any]  # evaluate_scores keys (map, accuracy, confusion_matrix, ...)
    per_class_ap: Mapping[str, float | None]  # class name -> AP (None: no positives)
    size_bytes: int | None  # model file
    file_name: str | None  # model file name, to find the model in bench.json
    parameters: int | None


@dataclasses.dataclass(frozen=True)
class RunData:
    """Everything the report shows; None / empty where a stage did not finish."""

    run_dir: Path
    stages: Mapping[str, Mapping[str, Any]]  # stage.json of the finished stages
    unfinished: Mapping[str, str]  # stage -> why it does not count as finished
    index: Mapping[str, Any] | None  # prepare/index.json
    models: tuple[ModelResult, ...]
    histories: Mapping[str, Mapping[str, list[float]]]  # label -> history.csv columns
    export: Mapping[str, Any] | None  # export/export.json
    bench: Mapping[str, Any] | None  # bench/bench.json (validated)
    run_info: Mapping[str, Any] | None  # run.json {"argv": [...], "recipe": path}
    probe: Mapping[str, Any] | None = None  # probe/metrics.json (settings, metrics or "skipped")

    @property
    def class_names(self) -> list[str]:
        """From index.json, else from the first model result that names them."""
        if self.index and self.index.get("class_names"):
            return list(self.index["class_names"])
        return next((list(m.per_class_ap) for m in self.models if m.per_class_ap), [])

    @property
    def multi_label(self) -> bool | None:
        if self.index and "multi_label" in self.index:
            return bool(self.index["multi_label"])
        return None


def load_run(run_dir: Path) -> RunData:
    """Read ``run_dir`` (see the module docstring); raises DataError if it is not a folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(
            f"Run folder {run_dir} does not exist; expected the --out folder of lean-kd run"
        )
    stages, unfinished = finished_stages(run_dir)
    index = _read_json(run_dir / "prepare" / "index.json") if "prepare" in stages else None
    parameters = {key: _parameters(run_dir, key) for key in TRAINED if key in stages}
    class_names = list((index or {}).get("class_names") or [])
    evaluated = _evaluated(run_dir, stages, parameters)
    for key in TRAINED:  # trained but not evaluated: the training run's own metrics.json
        if key in stages and key not in {m.key for m in evaluated}:
            evaluated.append(_from_training(run_dir, key, class_names, parameters[key]))
    bench = _read_bench(run_dir / "bench" / "bench.json") if "bench" in stages else None
    export = _read_json(run_dir / "export" / "export.json") if "export" in stages else None
    probe = _read_json(run_dir / "probe" / "metrics.json") if "probe" in stages else None
    if probe is not None and ("test" in probe or "val" in probe):
        evaluated.append(_from_probe(probe, class_names))
    order = ["probe", *TRAINED]
    order += [f"distill_{m.get('quant')}" for m in (export or {}).get("models", [])]
    return RunData(
        run_dir=run_dir,
        stages=stages,
        unfinished=unfinished,
        index=index,
        models=tuple(sorted(evaluated, key=lambda m: (_position(order, m.key), m.key))),
        histories={
            TRAINED[key]: read_history(run_dir / key / "history.csv")
            for key in TRAINED
            if key in stages and (run_dir / key / "history.csv").is_file()
        },
        export=export,
        bench=bench,
        run_info=_read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else None,
        probe=probe,
    )


def finished_stages(run_dir: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """({stage: stage.json} of finished stages, {stage: reason} of the others)."""
    finished, unfinished = {}, {}
    for stage in STAGE_FOLDERS:
        path = run_dir / stage / "stage.json"
        if not path.is_file():
            unfinished[stage] = f"not run or not finished (no {stage}/stage.json)"
            continue
        info = _read_json(path)
        missing = [out for out in info.get("outputs", []) if not _output_path(run_dir, stage, out)]
        if missing:
            unfinished[stage] = f"outputs missing: {', '.join(missing[:5])}"
        else:
            finished[stage] = info
    return finished, unfinished


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv columns in epoch order; a resumed run's repeated epochs keep their last row."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "epoch" not in rows[0]:
        raise DataError(f"{path}: expected a Keras CSVLogger file with an 'epoch' column")
    try:
        by_epoch = {int(float(row["epoch"])): row for row in rows}  # later rows win
        ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
        columns = [key for key in (rows[0] if rows else {}) if key != "epoch"]
        return {key: [float(row[key] or math.nan) for row in ordered] for key in columns}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a numeric history ({exc})") from None


def model_label(key: str) -> str:
    """ "KD student, int8 TFLite" for distill_int8; the TRAINED label for the Keras models."""
    if key in TRAINED:
        return TRAINED[key]
    if key.startswith("distill_"):
        return f"KD student, {key[len('distill_') :]} TFLite"
    return key


def _evaluated(run_dir: Path, stages: Mapping, parameters: Mapping) -> list[ModelResult]:
    if "evaluate" not in stages:
        return []
    names = [Path(out).name for out in stages["evaluate"].get("outputs", [])]
    paths = [run_dir / "evaluate" / name for name in names if name.endswith(".json")]
    paths = paths or sorted((run_dir / "evaluate").glob("*.json"))
    results = []
    for path in paths:
        report = _read_json(path)
        key = path.stem
        results.append(
            ModelResult(
                key=key,
                label=model_label(key),
                source=f"evaluate/{path.name}",
                split=str(report.get("split", "?")),
                metrics=report,
                per_class_ap=_per_class(report, report.get("class_names") or []),
                size_bytes=report.get("size_bytes"),
                file_name=Path(report["model"]).name if report.get("model") else None,
                parameters=parameters.get(key.split("_")[0]),
            )
        )
    return results


def _from_training(
    run_dir: Path, key: str, class_names: list[str], parameters: int | None
) -> ModelResult:
    source = f"{key}/metrics.json"
    report = _read_json(run_dir / source)
    split = "test" if "test" in report else "val"
    if split not in report:
        raise DataError(
            f"{run_dir / source}: expected a 'val' or 'test' entry (experiment.train output)"
        )
    checkpoint = run_dir / key / "best.keras"
    return ModelResult(
        key=key,
        label=TRAINED[key],
        source=source,
        split=split,
        metrics=report[split],
        per_class_ap=_per_class(report[split], class_names),
        size_bytes=checkpoint.stat().st_size if checkpoint.is_file() else None,
        file_name=checkpoint.name,
        parameters=parameters,
    )


def _from_probe(report: Mapping[str, Any], class_names: list[str]) -> ModelResult:
    split = "test" if "test" in report else "val"
    return ModelResult(
        key="probe",
        label=PROBE_LABEL,
        source="probe/metrics.json",
        split=split,
        metrics=report[split],
        per_class_ap=_per_class(report[split], class_names),
        size_bytes=None,
        file_name=None,
        parameters=None,
    )


def floor_note(run: RunData) -> str:
    """One sentence on the floor: its numbers and the models below it, or why there is none."""
    if run.probe is None:
        return f"No floor (probe stage: {run.unfinished.get('probe', 'not run')})."
    if "skipped" in run.probe:
        return f"No floor: the probe was skipped ({run.probe['skipped']})."
    floor = next((m for m in run.models if m.key == "probe"), None)
    if floor is None:
        return "No floor: the probe was fitted on every split it had, none was left to measure it."
    accuracy = floor.metrics.get("accuracy")
    numbers = "" if accuracy is None else f"accuracy {accuracy:.3f}, "
    numbers += f"mAP {floor.metrics['map']:.3f} on {floor.split}"
    settings = f"{run.probe.get('features')} features, C {run.probe.get('C')}"
    lines = [f"Floor (linear probe on frozen pretrained YAMNet, {settings}): {numbers}."]
    for metric, name in (("accuracy", "accuracy"), ("map", "mAP")):
        below = _below(run.models, floor, metric)
        if below:
            lines.append(f"Below the floor on {name}: {', '.join(below)}.")
    return " ".join(lines)


def distillation_note(run: RunData) -> str:
    """One sentence on what distillation did in this run: the KD student against the same model
    trained on labels only, with how much one clip moves the numbers (one seed each)."""
    found = {m.key: m for m in run.models if m.key in ("student", "distill")}
    if len(found) < 2 or found["student"].split != found["distill"].split:
        return ""
    kd, plain = found["distill"], found["student"]
    changes = [
        f"{name} {kd.metrics[key]:.3f} vs {plain.metrics[key]:.3f} ({kd.metrics[key] - plain.metrics[key]:+.3f})"
        for key, name in (("map", "mAP"), ("accuracy", "accuracy"))
        if None not in (kd.metrics.get(key), plain.metrics.get(key))
    ]
    clips = sum(map(sum, kd.metrics.get("confusion_matrix") or []))
    one_clip = f"; one clip of {clips} moves accuracy by {1 / clips:.3f}" if clips else ""
    text = f"Distillation: the KD student against the student without KD on {kd.split}: {', '.join(changes)}{one_clip}."
    if kd.metrics["map"] >= plain.metrics["map"]:
        return text
    teacher = next((m for m in run.models if m.key == "teacher" and m.split == kd.split), None)
    if teacher is not None and teacher.metrics["map"] < plain.metrics["map"]:
        return text + (
            f" Here the KD student is below: its teacher itself scores below the student without KD "
            f"(mAP {teacher.metrics['map']:.3f} vs {plain.metrics['map']:.3f}), and distillation pulls "
            "the student towards its teacher; a stronger teacher is the fix."
        )
    return text + (
        " Here the KD student is below: both are one training run (one seed), and a difference of "
        "a few clips can be seed noise (benchmarks/results/esc50_dev.md measures KD against no KD "
        "over 4 folds and 3 seeds)."
    )


def _below(models: tuple[ModelResult, ...], floor: ModelResult, metric: str) -> list[str]:
    """Labels of the models scored on the floor's split whose ``metric`` is below the floor's."""
    level = floor.metrics.get(metric)
    return [
        m.label
        for m in models
        if m.key != floor.key
        and m.split == floor.split
        and None not in (level, m.metrics.get(metric))
        and m.metrics[metric] < level
    ]


def _per_class(metrics: Mapping, class_names: list[str]) -> dict[str, float | None]:
    """{class: AP} from evaluate_model's dict or evaluate_scores' list (named by position)."""
    per_class = metrics.get("per_class_ap") or {}
    if isinstance(per_class, Mapping):
        return dict(per_class)
    names = (
        class_names
        if len(class_names) == len(per_class)
        else [str(i) for i in range(len(per_class))]
    )
    return dict(zip(names, per_class))


def _parameters(run_dir: Path, key: str) -> int | None:
    path = run_dir / key / "metrics.json"
    return _read_json(path).get("parameters") if path.is_file() else None


def _position(order: list[str], key: str) -> int:
    """Probe, teacher, student, KD student, then the export order (int8 first); others last."""
    return order.index(key) if key in order else len(order)


def _output_path(run_dir: Path, stage: str, output: str) -> Path | None:
    """An output listed in stage.json, relative to the stage folder or to the run folder."""
    for base in (run_dir / stage, run_dir):
        if (base / output).exists():
            return base / output
    return None


def _read_bench(path: Path) -> dict[str, Any]:
    bench = _read_json(path)
    try:
        validate_report(bench)
    except DataError as exc:
        raise DataError(f"{path}: not a lean_kd.bench report ({exc})") from None
    return bench


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
