"""Real environmental sound, few clips per class: ESC-50 dev set, 4-fold cross-validation.

For each test fold k of ``../shared/datasets/esc50-dev`` (train on the other three, 15 % of
their source recordings held out for validation) and each seed, through ``lean_kd.run.experiment``
and ``lean_kd.probe`` (the code of ``lean-kd probe / train / cache-teacher / distill``) and the
recipe ``models/recipes/esc50_dev.yaml``:

- **probe**: the floor, a logistic regression on clip-pooled frozen-YAMNet outputs;
- **teacher**: the recipe's teacher (frozen YAMNet, linear head fitted on every window);
- **ensemble teacher**: two such heads, on YAMNet's final embedding and on its block-10 map
  (``ENSEMBLE_MEMBERS``), their logits averaged (``lean_kd.models.ensemble``);
- with ``--students``: the student rows of ``METHODS`` per seed. By default the rows the goals
  name (``GOAL_METHODS``: LEAN without KD; LEAN taught by KD with mixup, the teacher online on
  the mixed clip, since a cache holds unmixed crops only; lean_tiny, as YAMNet's first 10
  blocks without the wave encoder, the same way); the others
  (KD from the teacher's cache, clip targets, PKT, mixup alone, a smaller Wave Encoder,
  lean_tiny from random init) are ablations, trained when named in ``--methods``. Rows marked
  ``int8`` are also exported as int8 TFLite (log-mel DFT forms: ``--dfts``) and scored from
  the file; rows marked ``dynamic`` also as dynamic-range TFLite (int8 weights, float
  activations), the form that keeps a model whose full-int8 export fails.

The probe and the linear-head teacher have no random part (a convex fit on fixed features): their
spread is over folds only, and they run once per fold. Students run per seed, ``--jobs`` at
a time, each in a fresh process. The students of a fold and seed hear one augmented stream:
the teacher's outputs on it are recorded once per fold, seed and teacher
(``<fold>/teacher_streams``) and read by every student on it.

    python benchmarks/esc50_dev.py [--out benchmarks/runs/esc50_dev] [--seeds 0 1 2] [--students]
        [--methods "LEAN, KD" ...] [--folds 1 2] [--jobs 2] [--dfts fft rfft int8] [--fresh]

Finished runs (their ``metrics.json``) are reused, so an interrupted benchmark resumes. Writes
benchmarks/results/esc50_dev.md (the table) and esc50_dev.json (every run). Rows of the
earlier esc50_dev.json that this invocation did not run stay in the table (the header counts
them), so a rerun of the goal rows keeps the ablations; ``--fresh`` drops them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lean_kd.distill.teacher_cache import META_FILE
from lean_kd.files import write_atomic
from lean_kd.probe import run_probe, yamnet_backbone
from lean_kd.run import experiment
from lean_kd.run.recipe import ModelSection, Recipe, load_recipe
from processes import map_in_processes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RECIPE = HERE.parent / "models" / "recipes" / "esc50_dev.yaml"
SHARED = HERE.parent.parent / "shared"
FOLDS = (1, 2, 3, 4)
KD = {"name": "hinton_kd", "temperature": 2.0, "lambda": 1.0}


@dataclasses.dataclass(frozen=True)
class Student:
    """One student row: what is trained and how it is taught."""

    loss: tuple[dict[str, Any], ...]
    targets: str = "crop"  # cache.targets; "clip": the teacher's verdict on the whole clip
    model: str = "lean"  # the registry name (the recipe's student options apply to "lean")
    mixup_alpha: float = 0.0  # > 0: consistent teaching, the teacher runs online on the mixed clip
    # the fold's run folder of the teacher: "teacher" or "ensemble_teacher"
    teacher: str = "teacher"
    int8: bool = False  # also export int8 TFLite and evaluate it
    dynamic: bool = False  # also export dynamic-range TFLite and evaluate it
    equalized: bool = False  # also export int8 with equalized channel ranges and evaluate it
    # also export int8 (channels equalized) with these layers / blocks dynamic, and evaluate it
    dynamic_layers: tuple[str, ...] = ()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # over the recipe's
    training: dict[str, Any] = dataclasses.field(default_factory=dict)  # over the recipe's


SMALL_WAVE_ENCODER = {"lstm_units": 64, "lstm_layers": 1}  # LEAN at <= 2x YAMNet's latency
# lean_tiny's YAMNet branch from the official weights' strongest channels (models.yamnet.narrow)
NARROWED_PRETRAINED = {"pretrained": "if_available", "yamnet_mean_normalize": False}
# lean_tiny's YAMNet branch as the official network's first 6 blocks, full width, unchanged
SHALLOW_PRETRAINED = {**NARROWED_PRETRAINED, "yamnet_width": 1.0, "yamnet_blocks": 6}
# ... or its first 8 or 10 blocks, where yamnet_depth_probe's linear read-outs are best; the 10
# without the wave encoder, whose LSTM and attention cost a quarter of the official file's time
# (benchmarks/results/latency_lean_tiny_forms.md)
DEEPER_PRETRAINED = {blocks: {**SHALLOW_PRETRAINED, "yamnet_blocks": blocks} for blocks in (8, 10)}
NO_WAVE_ENCODER = {"use_wave_encoder": False, "use_cross_attention": False}
WIDE_PROJECTION = {"projection_units": 128}  # LEAN's E_yam width (lean_tiny's default: 64)
# YAMNet's last two blocks, whose channels and positions span hundreds of times each other's
# ranges on ESC-50 clips: their activations quantized on the fly (export.dynamic_layers)
LAST_YAMNET_BLOCKS = ("layer13", "layer14")
DISCRIMINATIVE_RATES = {"learning_rate": 3e-3, "pretrained_learning_rate_scale": 0.1}
DFT_NAMES = {"fft": "", "rfft": ", DFT as RFFT2D", "int8": ", DFT as int8 matrix product"}
DYNAMIC_ROW = ", dynamic-range TFLite"  # int8 weights, float activations
# export.equalize_channels, the export's default since 2026-12-07; rows without this suffix
# (folders int8_dft-*) were exported without it
EQUALIZED_ROW = ", int8 TFLite, channels equalized"
EQUALIZED = "_equalized"  # the run folder's suffix for those exports
EVERY_DFT = ("fft", "rfft", "int8")  # the export's default first
BEFORE_BIAS_FIT = ", before the bias fit (same runs)"  # output_bias teacher rows, paired
TEACHER_ROW = "teacher (frozen YAMNet, window head)"
# Two views of the same frozen network: the final embedding and block 10's pooled map (a
# mid-level, 512-channel one); a window head on each, their logits averaged.
ENSEMBLE_MEMBERS = (
    {"model": "yamnet_teacher", "pretrained": "if_available"},
    {"model": "yamnet_teacher", "pretrained": "if_available", "yamnet_blocks": 10},
)
ENSEMBLE_ROW = "ensemble teacher (frozen YAMNet, window heads on blocks 14 and 10)"
BASELINES = ("probe", "teacher", "ensemble_teacher")  # run folders every invocation has


def distilled_lean_tiny(options: dict[str, Any], training: dict[str, Any]) -> Student:
    """lean_tiny taught by KD + mixup (teacher online), also scored as int8 TFLite with
    equalized channel ranges (the export's default)."""
    return Student(
        (KD,), model="lean_tiny", mixup_alpha=0.4, equalized=True, options=options,
        training=training,
    )  # fmt: skip


# A row's name says what it changes from the recipe it ran with. Rows whose runs finished before
# 2026-12-07 12:00 UTC changed the earlier recipe (every layer at 3e-4, 240 steps, full int8):
# the results header says which invocation ran each.
METHODS: dict[str, Student] = {
    "LEAN, no KD": Student(({"name": "ce"},)),
    "LEAN, KD": Student((KD,), int8=True),
    "LEAN, KD on clip targets": Student((KD,), targets="clip"),
    "LEAN, KD + PKT": Student((KD, {"name": "pkt", "weight": 1.0})),
    "LEAN, no KD + mixup": Student(({"name": "ce"},), mixup_alpha=0.4),  # mixup's own share
    # the recipe's export: full int8, channels equalized, YAMNet's last two blocks dynamic
    "LEAN, KD + mixup (online teacher)": Student(
        (KD,), mixup_alpha=0.4, dynamic_layers=LAST_YAMNET_BLOCKS
    ),
    "LEAN, KD + mixup (online teacher), no label loss": Student(  # function matching
        ({**KD, "label_weight": 0.0},), mixup_alpha=0.4, int8=True
    ),
    "LEAN, KD + mixup (online ensemble teacher)": Student(
        (KD,), mixup_alpha=0.4, int8=True, teacher="ensemble_teacher"
    ),
    # mixup's class balance undone: the biases refitted to the teacher on clean training clips
    "LEAN, KD + mixup (online teacher), output biases fitted to the teacher": Student(
        (KD,), mixup_alpha=0.4, int8=True, equalized=True, training={"output_bias": "teacher"}
    ),
    "LEAN, KD + mixup (online teacher), 480 steps": Student(  # patient teaching: twice as long
        (KD,), mixup_alpha=0.4, training={"epochs": 60}
    ),
    # Discriminative rates: the new layers at 3e-3, the pretrained YAMNet branch at a tenth
    "LEAN, no KD, new layers at 3e-3, YAMNet branch at 3e-4": Student(
        ({"name": "ce"},), training=DISCRIMINATIVE_RATES
    ),
    "LEAN, KD + mixup (online teacher), new layers at 3e-3, YAMNet branch at 3e-4": Student(
        (KD,), mixup_alpha=0.4, int8=True, equalized=True, training=DISCRIMINATIVE_RATES
    ),
    "LEAN, KD + mixup (online teacher), YAMNet branch frozen": Student(  # transfer, few clips
        (KD,), mixup_alpha=0.4, options={"yamnet_trainable": "frozen"}
    ),
    "LEAN, KD + mixup (online teacher), YAMNet branch frozen, learning rate 3e-3": Student(
        (KD,),
        mixup_alpha=0.4,
        options={"yamnet_trainable": "frozen"},
        training={"learning_rate": 3e-3},
    ),
    "LEAN, KD + mixup (online teacher), YAMNet branch frozen, learning rate 3e-3, 480 steps": (
        Student(
            (KD,),
            mixup_alpha=0.4,
            int8=True,
            dynamic=True,
            equalized=True,
            dynamic_layers=LAST_YAMNET_BLOCKS,
            options={"yamnet_trainable": "frozen"},
            training={"learning_rate": 3e-3, "epochs": 60},
        )
    ),
    # Only YAMNet's last two blocks (whose channel ranges defeat int8, see export.equalize)
    # fine-tuned, at a tenth of the new layers' 3e-3
    "LEAN, KD + mixup (online teacher), YAMNet blocks 1-12 frozen, new layers at 3e-3, 480 "
    "steps": Student(
        (KD,),
        mixup_alpha=0.4,
        int8=True,
        equalized=True,
        dynamic_layers=LAST_YAMNET_BLOCKS,
        options={"yamnet_trainable": 2},
        training={**DISCRIMINATIVE_RATES, "epochs": 60},
    ),
    "LEAN, no KD, YAMNet blocks 1-12 frozen, new layers at 3e-3, 480 steps": Student(
        ({"name": "ce"},),
        options={"yamnet_trainable": 2},
        training={**DISCRIMINATIVE_RATES, "epochs": 60},
    ),
    "LEAN, no KD, YAMNet branch frozen, learning rate 3e-3, 480 steps": Student(  # its baseline
        ({"name": "ce"},),
        options={"yamnet_trainable": "frozen"},
        training={"learning_rate": 3e-3, "epochs": 60},
    ),
    # The same with LayerNorm on E_yam: bounded attention keys, for the int8 export
    "LEAN with E_yam normalised, KD + mixup (online teacher), YAMNet branch frozen, learning "
    "rate 3e-3, 480 steps": Student(
        (KD,),
        mixup_alpha=0.4,
        int8=True,
        dynamic=True,
        options={"yamnet_trainable": "frozen", "projection_norm": True},
        training={"learning_rate": 3e-3, "epochs": 60},
    ),
    "LEAN, YAMNet queries the wave, KD + mixup (online teacher)": Student(
        (KD,), mixup_alpha=0.4, options={"attention_direction": "yamnet_to_wave"}
    ),
    "LEAN, YAMNet queries the wave, KD + mixup (online teacher), YAMNet branch frozen": Student(
        (KD,),
        mixup_alpha=0.4,
        options={"attention_direction": "yamnet_to_wave", "yamnet_trainable": "frozen"},
    ),
    "LEAN 1 x BiLSTM(64), KD + mixup (online teacher)": Student(  # the options of lean_fast
        (KD,), mixup_alpha=0.4, int8=True, options=SMALL_WAVE_ENCODER
    ),
    # the same wave encoder with the recipe of 2026-12-07 12:00 (the row above ran the earlier
    # one) and its export: the option that meets the one-thread latency goal on CPUs with and
    # without int8 dot products (benchmarks/results/latency_profile.md)
    "lean_fast (LEAN with 1 x BiLSTM(64)), KD + mixup (online teacher)": Student(
        (KD,), mixup_alpha=0.4, dynamic_layers=LAST_YAMNET_BLOCKS, options=SMALL_WAVE_ENCODER
    ),
    "lean_tiny, KD": Student((KD,), model="lean_tiny", int8=True),
    "lean_tiny from narrowed pretrained YAMNet, KD + mixup (online teacher)": distilled_lean_tiny(
        NARROWED_PRETRAINED, {}
    ),
    "lean_tiny from YAMNet's first 6 blocks, KD + mixup (online teacher), new layers at 3e-3": (
        distilled_lean_tiny(SHALLOW_PRETRAINED, DISCRIMINATIVE_RATES)
    ),
    "lean_tiny from YAMNet's first 6 blocks, KD + mixup (online teacher), new layers at 3e-3, "
    "480 steps": distilled_lean_tiny(SHALLOW_PRETRAINED, {**DISCRIMINATIVE_RATES, "epochs": 60}),
    **{
        f"lean_tiny from YAMNet's first {blocks} blocks, KD + mixup (online teacher), new layers "
        "at 3e-3": distilled_lean_tiny(options, DISCRIMINATIVE_RATES)
        for blocks, options in DEEPER_PRETRAINED.items()
    },
    "lean_tiny from YAMNet's first 10 blocks, no wave encoder, KD + mixup (online teacher), new "
    "layers at 3e-3": distilled_lean_tiny(
        {**DEEPER_PRETRAINED[10], **NO_WAVE_ENCODER}, DISCRIMINATIVE_RATES
    ),
    # the recipe's transfer for LEAN (only the last two YAMNet blocks learn) on the 10 kept
    # blocks; yamnet_trainable counts the last of all 14 blocks, so 6 trains blocks 9 and 10
    "lean_tiny from YAMNet's first 10 blocks, no wave encoder, blocks 1-8 frozen, KD + mixup "
    "(online teacher), new layers at 3e-3": distilled_lean_tiny(
        {**DEEPER_PRETRAINED[10], **NO_WAVE_ENCODER, "yamnet_trainable": 6}, DISCRIMINATIVE_RATES
    ),
    # ... and LEAN's 128 projection units instead of lean_tiny's 64 (a bottleneck barely wider
    # than the 50 classes it feeds)
    **{
        f"lean_tiny from YAMNet's first 10 blocks, no wave encoder, {frozen} frozen, 128 "
        "projection units, KD + mixup (online teacher), new layers at 3e-3": distilled_lean_tiny(
            {**DEEPER_PRETRAINED[10], **NO_WAVE_ENCODER, **WIDE_PROJECTION, "yamnet_trainable": k},
            DISCRIMINATIVE_RATES,
        )
        for frozen, k in (("blocks 1-8", 6), ("YAMNet", "frozen"))
    },
    "lean_tiny from YAMNet's first 10 blocks, no wave encoder, 128 projection units, KD + mixup "
    "(online teacher), new layers at 3e-3": distilled_lean_tiny(
        {**DEEPER_PRETRAINED[10], **NO_WAVE_ENCODER, **WIDE_PROJECTION}, DISCRIMINATIVE_RATES
    ),
}
# The rows the goals name (floor and teacher always run): trained by default; the
# others are ablations, trained when named in --methods.
GOAL_METHODS = (
    "LEAN, no KD",
    "LEAN, KD + mixup (online teacher)",
    # the best small student measured (first 6 blocks with the wave encoder: 0.445 int8; first
    # 10 without it, 64 projection units: 0.538; 128 units with blocks 1-8 frozen: 0.550)
    "lean_tiny from YAMNet's first 10 blocks, no wave encoder, 128 projection units, KD + mixup "
    "(online teacher), new layers at 3e-3",
)
logger = logging.getLogger("esc50_dev")


def fold_recipe(base: Recipe, fold: int, seed: int = 0) -> Recipe:
    data = dataclasses.replace(base.data, test_folds=(fold,))
    training = dataclasses.replace(base.training, seed=seed)
    return dataclasses.replace(base, data=data, training=training)


def finished(run_dir: Path, work: Callable[[], Any]) -> dict[str, Any]:
    """``metrics.json`` of ``run_dir``, running ``work`` first when it is missing."""
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        start = time.perf_counter()
        work()
        metrics = json.loads(metrics_path.read_text())
        metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_atomic(metrics_path, json.dumps(metrics, indent=1))
    return json.loads(metrics_path.read_text())


def fold_baselines(base: Recipe, out: Path, fold: int) -> list[dict[str, Any]]:
    """The probe and teacher rows of one test fold (run in this process, one fold after another:
    the folds share the probe's window outputs, and two folds side by side took 1.5x as
    long, their scikit-learn fits contending for the cores)."""
    recipe = fold_recipe(base, fold)
    index = experiment.load_data(recipe)
    folder = out / f"fold{fold}"
    probe = finished(
        folder / "probe",
        lambda: run_probe(
            index, folder / "probe", backbone=yamnet_backbone(), settings=recipe.probe,
            cache_dir=out / "window_outputs",
        ),
    )  # fmt: skip
    teacher = finished(
        folder / "teacher", lambda: experiment.train(recipe, folder / "teacher", verbose=0)
    )
    ensemble = dataclasses.replace(
        recipe, teacher=ModelSection(name="ensemble", options={"members": list(ENSEMBLE_MEMBERS)})
    )
    ensemble_teacher = finished(
        folder / "ensemble_teacher",
        lambda: experiment.train(ensemble, folder / "ensemble_teacher", verbose=0),
    )
    return [
        _row("probe (floor)", fold, None, probe),
        _row(TEACHER_ROW, fold, None, teacher, folder / "teacher" / "best.keras"),
        _row(
            ENSEMBLE_ROW, fold, None, ensemble_teacher, folder / "ensemble_teacher" / "best.keras"
        ),
    ]


@dataclasses.dataclass(frozen=True)
class StudentRun:
    """One student row of one fold and seed, and where it lives."""

    method: str
    fold: int
    seed: int
    run_dir: Path
    recipe: Recipe
    teacher: Path  # the fold's teacher (online, for mixup) or its cache's source
    cache: Path | None  # the teacher cache to distil from; None: the teacher runs online

    def done(self, dfts: tuple[str, ...]) -> bool:
        paths = [self.run_dir / "metrics.json"]
        if METHODS[self.method].int8:
            paths += [self.run_dir / f"int8_dft-{dft}" / "metrics.json" for dft in dfts]
        if METHODS[self.method].dynamic:
            paths.append(self.run_dir / "dynamic_dft-fft" / "metrics.json")
        if METHODS[self.method].equalized:
            paths.append(self.run_dir / f"int8_dft-fft{EQUALIZED}" / "metrics.json")
        if METHODS[self.method].dynamic_layers:
            folder = export_folder("int8", "fft", True, METHODS[self.method].dynamic_layers)
            paths.append(self.run_dir / folder / "metrics.json")
        return all(path.exists() for path in paths)


def student_runs(
    base: Recipe, out: Path, fold: int, seeds: list[int], methods: list[str], dfts: tuple[str, ...]
) -> list[StudentRun]:
    """The student runs of one fold to train (in ``methods``) or report (finished), seed-major.

    Builds the fold's teacher cache first when a cached method is to be trained."""
    folder = out / f"fold{fold}"
    runs = []
    for seed in seeds:
        for method, student in METHODS.items():
            run_dir = folder / f"{run_name(method)}_s{seed}"
            if method not in methods and not (run_dir / "metrics.json").exists():
                continue
            online = bool(student.mixup_alpha)
            run = StudentRun(
                method, fold, seed, run_dir, student_recipe(fold_recipe(base, fold, seed), student),
                folder / student.teacher / "best.keras", None if online else cache_folder(folder, student),
            )  # fmt: skip
            runs.append(run)
            to_train = method in methods and not run.done(dfts)
            if run.cache and to_train and not (run.cache / META_FILE).exists():
                experiment.cache_teacher(run.recipe, run.teacher, run.cache, progress=False)
    return runs


def cache_folder(folder: Path, student: Student) -> Path:
    """The fold's cache of the student's teacher's outputs (one per teacher)."""
    return folder / ("cache" if student.teacher == "teacher" else f"cache_{student.teacher}")


def student_rows(run: StudentRun, dfts: tuple[str, ...]) -> list[dict[str, Any]]:
    """Train (when not finished) and score one student run; its row and its int8 rows.

    Runs in a worker process when there is work to do (``map_in_processes``)."""
    online = run.cache is None  # the fold's students on one stream share its teacher stream
    metrics = finished(run.run_dir, lambda: experiment.distill(
        run.recipe, run.run_dir, cache_dir=run.cache, teacher_path=run.teacher if online else None,
        teacher_streams=run.run_dir.parent / "teacher_streams" if online else None, verbose=2,
    ))  # fmt: skip
    checkpoint = run.run_dir / "best.keras"
    rows = [_row(run.method, run.fold, run.seed, metrics, checkpoint)]
    if "trained_biases" in metrics:  # training.output_bias: the same run before the refit
        before = {"parameters": metrics.get("parameters"), **metrics["trained_biases"]}
        rows.append(_row(run.method + BEFORE_BIAS_FIT, run.fold, run.seed, before, checkpoint))
    if METHODS[run.method].int8:
        done = {d for d in EVERY_DFT if (run.run_dir / f"int8_dft-{d}" / "metrics.json").exists()}
        exported = [d for d in EVERY_DFT if d in dfts or d in done]
        for dft in exported:
            int8 = finished_export(run.run_dir, run.recipe, "int8", dft)
            name = f"{run.method}, int8 TFLite{DFT_NAMES[dft]}"
            rows.append(_row(name, run.fold, run.seed, int8, checkpoint))
    if METHODS[run.method].dynamic:
        dynamic = finished_export(run.run_dir, run.recipe, "dynamic", "fft")
        rows.append(_row(run.method + DYNAMIC_ROW, run.fold, run.seed, dynamic, checkpoint))
    if METHODS[run.method].equalized:
        equalized = finished_export(run.run_dir, run.recipe, "int8", "fft", equalize=True)
        rows.append(_row(run.method + EQUALIZED_ROW, run.fold, run.seed, equalized, checkpoint))
    if layers := METHODS[run.method].dynamic_layers:
        mixed = finished_export(run.run_dir, run.recipe, "int8", "fft", True, layers)
        rows.append(
            _row(run.method + dynamic_layers_row(layers), run.fold, run.seed, mixed, checkpoint)
        )
    return rows


def run_name(method: str) -> str:
    """The run folder of a method: "LEAN 1 x BiLSTM(64), KD" -> "lean1xbilstm(64)_kd"."""
    return method.lower().replace(", ", "_").replace(" ", "")


def student_recipe(recipe: Recipe, student: Student) -> Recipe:
    """``recipe`` with the student row's model, loss, targets, mixup and training settings."""
    model = recipe.student
    if student.model != model.name:  # another architecture: its own registry defaults
        model = dataclasses.replace(model, name=student.model, options={})
    model = dataclasses.replace(model, options={**model.options, **student.options})
    training = dataclasses.replace(recipe.training, **student.training)
    return dataclasses.replace(
        recipe, student=model, loss=student.loss, training=training,
        cache=dataclasses.replace(recipe.cache, targets=student.targets, enabled=not student.mixup_alpha),
        augment=dataclasses.replace(recipe.augment, mixup_alpha=student.mixup_alpha),
    )  # fmt: skip


def export_folder(quant: str, dft: str, equalize: bool, dynamic_layers: tuple[str, ...]) -> str:
    """A run's folder for one export variant: ``int8_dft-fft``, ``..._equalized``,
    ``..._equalized_dynamic-layer13-layer14``."""
    dynamic = f"_dynamic-{'-'.join(dynamic_layers)}" if dynamic_layers else ""
    return f"{quant}_dft-{dft}{EQUALIZED if equalize else ''}{dynamic}"


def dynamic_layers_row(layers: tuple[str, ...]) -> str:
    return f"{EQUALIZED_ROW}, {' and '.join(layers)} dynamic"


def finished_export(
    run_dir: Path,
    recipe: Recipe,
    quant: str,
    dft: str,
    equalize: bool = False,
    dynamic_layers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Test metrics of the run's best model as ``quant`` TFLite with the log-mel DFT as ``dft``,
    with ``equalize`` equalized channel ranges and ``dynamic_layers`` quantized on the fly
    (exported once, then reused)."""
    path = run_dir / export_folder(quant, dft, equalize, dynamic_layers) / "metrics.json"
    if not path.exists():
        from lean_kd.evaluation import evaluate_model
        from lean_kd.export.checkpoint import export_checkpoint

        model = experiment.load_model(run_dir / "best.keras")
        index = experiment.load_data(recipe)  # only to export: a finished file is only read
        path.parent.mkdir(exist_ok=True)
        start = time.perf_counter()
        exported = export_checkpoint(
            model, quant=quant, out=path.parent / "model.tflite", index=index,
            calibration_count=recipe.export.num_calibration, lstm=recipe.export.lstm, dft=dft,
            equalize_channels=equalize, dynamic_layers=dynamic_layers,
        )  # fmt: skip
        report = evaluate_model(
            exported.path, index, split="test", audio=recipe.audio, progress=False
        )
        metrics = {
            "test": report, "parameters": int(model.count_params()),
            "wall_seconds": round(time.perf_counter() - start, 1), "size_bytes": exported.size_bytes,
        }  # fmt: skip
        write_atomic(path, json.dumps(metrics, indent=1))
    return json.loads(path.read_text())


def _row(
    model: str, fold: int, seed: int | None, metrics: dict[str, Any], checkpoint: Path | None = None
) -> dict[str, Any]:
    test = metrics["test"]
    return {
        "model": model, "fold": fold, "seed": seed, "accuracy": test["accuracy"],
        "map": test["map"], "wall_seconds": metrics.get("wall_seconds"),
        "parameters": metrics.get("parameters"), "size_bytes": metrics.get("size_bytes"),
        "checkpoint": str(checkpoint) if checkpoint else None,
    }  # fmt: skip


def macs_per_window(rows: list[dict[str, Any]]) -> str:
    """Multiply-accumulates of one 1 s window of the rows' Keras model (the int8 file runs the
    same ops): kept in the rows once counted, since the runs' checkpoints may be gone later."""
    macs = next((r["macs"] for r in rows if r.get("macs")), None)
    checkpoint = next((r["checkpoint"] for r in rows if r["checkpoint"]), None)
    if macs is None and checkpoint and Path(checkpoint).exists():
        from lean_kd.models.macs import count_macs

        macs = count_macs(experiment.load_model(checkpoint))
    for row in rows:
        row["macs"] = macs
    return f"{macs / 1e6:.0f} M" if macs else "—"


def row_order(model: str) -> int:
    """Table order: floor, teacher, then ``METHODS`` each followed by its int8 rows."""
    names = ["probe (floor)", TEACHER_ROW, ENSEMBLE_ROW]
    for method in METHODS:
        names += [method, method + BEFORE_BIAS_FIT]
        names += [f"{method}, int8 TFLite{DFT_NAMES[d]}" for d in EVERY_DFT]
        names += [method + DYNAMIC_ROW, method + EQUALIZED_ROW]
        if METHODS[method].dynamic_layers:
            names.append(method + dynamic_layers_row(METHODS[method].dynamic_layers))
    return names.index(model) if model in names else len(names)


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: mean ± std over folds (x seeds) of test accuracy and mAP per model."""
    lines = [
        "| model | runs | test accuracy | test mAP | parameters | MACs per 1 s | file | wall s per run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in sorted(dict.fromkeys(r["model"] for r in rows), key=row_order):
        mine = [r for r in rows if r["model"] == model]
        acc, ap = (np.array([r[k] for r in mine]) for k in ("accuracy", "map"))
        ddof = 1 if len(mine) > 1 else 0
        seconds = [r["wall_seconds"] for r in mine if r["wall_seconds"] is not None]
        params = mine[0]["parameters"] or "—"
        size = f"{mine[0]['size_bytes'] / 2**20:.2f} MiB" if mine[0].get("size_bytes") else "—"
        wall = f"{np.mean(seconds):.0f}" if seconds else "—"
        lines.append(
            f"| {model} | {len(mine)} | {acc.mean():.3f} ± {acc.std(ddof=ddof):.3f} | "
            f"{ap.mean():.3f} ± {ap.std(ddof=ddof):.3f} | {params} | "
            f"{macs_per_window(mine)} | {size} | {wall} |"
        )
    return lines


def total_minutes(rows: list[dict[str, Any]]) -> float:
    """Wall time of every run in the table (probe and teacher once per fold), in minutes."""
    return sum(r["wall_seconds"] or 0 for r in rows) / 60


def with_earlier_rows(rows: list[dict[str, Any]], path: Path) -> tuple[list[dict[str, Any]], int]:
    """``rows`` plus the rows of ``path`` (an earlier invocation's JSON) that no run of this
    invocation replaced (same model, fold and seed): ablations whose runs are not here stay
    in the table. Returns the rows and how many came from ``path``."""
    if not path.exists():
        return rows, 0
    mine = {(r["model"], r["fold"], r["seed"]) for r in rows}
    earlier = json.loads(path.read_text())["runs"]
    kept = [r for r in earlier if (r["model"], r["fold"], r["seed"]) not in mine]
    return rows + kept, len(kept)


def write_results(
    rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float, kept: int, trained: int
) -> None:
    """The table and every run; the JSON also lists the invocations that trained runs (their
    command, wall time and count), kept across invocations like the rows."""
    RESULTS.mkdir(exist_ok=True)
    name = results_name(args.folds)
    path = RESULTS / f"{name}.json"
    command = " ".join(["python benchmarks/esc50_dev.py", *sys.argv[1:]])
    earlier_file = path.exists() and not args.fresh
    invocations = json.loads(path.read_text()).get("invocations", []) if earlier_file else []
    if trained:
        invocations.append({
            "command": command, "finished_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "minutes": round(seconds / 60, 1), "runs_trained": trained, "jobs": args.jobs,
        })  # fmt: skip
    earlier = (
        f"{kept} of the {len(rows)} runs are earlier invocations' (their rows kept from "
        f"{name}.json: rows this invocation did not run)."
        if kept
        else "Every run is this invocation's or was reused from its --out folder."
    )
    header = [
        "# ESC-50 dev set: 4-fold cross-validation, few clips per class",
        "",
        f"Written by `{command}`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; this invocation {seconds / 60:.1f} min with {args.jobs} student "
        f"run(s) at a time (finished runs reused); the runs' own wall times add up to "
        f"{total_minutes(rows):.0f} min. {earlier}",
        "Test fold k, training on the other three folds (15 % of their source recordings held",
        "out for validation); mean ± sample std over folds (and seeds for the students).",
        "The probe and the linear-head teacher have no random part: one run per fold. Students",
        "keep their last epoch (the recipe's `training.monitor: none`); int8 rows are the same",
        "runs exported to int8 TFLite and scored from the file, without equalizing channel",
        'ranges unless the row says "channels equalized" (the export\'s default since',
        "2026-12-07, `lean_kd/export/equalize.py`).",
        "A row's name says what it changes from the recipe it ran with: rows that no invocation",
        "since 2026-12-07 12:00 UTC ran changed the earlier recipe (every student layer at",
        "3e-4, 240 steps); the recipe since then freezes YAMNet's blocks 1-12, trains its last",
        "two at 3e-4 and the new layers at 3e-3 for 480 steps, and exports full int8 with",
        "YAMNet's last two blocks dynamic (`models/recipes/esc50_dev.yaml`).",
        "Online teachers (mixup rows): since 2026-12-07 16:00 UTC each fold and seed records its",
        "teacher's outputs on the mixed training stream once (`lean_kd/distill/teacher_stream.py`)",
        "and every student on that stream (LEAN and lean_tiny) reads them: the same targets on",
        "the same mixed clips as a teacher run at every step.",
        "",
        *(
            ["Invocations that trained runs (recorded since 2026-12-06):", ""]
            if invocations
            else []
        ),
        *(
            f"- `{i['command']}` (finished {i['finished_utc']} UTC): {i['runs_trained']} runs "
            f"(int8 exports included) in {i['minutes']} min, {i['jobs']} at a time"
            for i in invocations
        ),
        *([""] if invocations else []),
    ]
    text = "\n".join(header + table(rows)) + "\n"
    rows = sorted(rows, key=lambda r: (row_order(r["model"]), r["fold"], r["seed"] or 0))
    write_atomic(RESULTS / f"{name}.md", text)
    data = {"runs": rows, "invocations": invocations}
    write_atomic(path, json.dumps(data, indent=1))
    print(text)


def results_name(folds: list[int]) -> str:
    return "esc50_dev" if sorted(folds) == list(FOLDS) else "esc50_dev_partial"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "esc50_dev")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="an esc50_dev.yaml variant")
    parser.add_argument("--data", type=Path, default=SHARED / "datasets" / "esc50-dev")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--students", action="store_true", help="also train the LEAN students")
    parser.add_argument(
        "--folds", type=int, nargs="+", default=list(FOLDS),
        help="test folds to run (a subset writes esc50_dev_partial.md instead of the table)",
    )  # fmt: skip
    parser.add_argument(
        "--methods", nargs="+", default=list(GOAL_METHODS), choices=list(METHODS),
        metavar="METHOD",
        help="student rows to train (default: the rows the goals name; finished runs of the "
        "others are still reported)",
    )  # fmt: skip
    parser.add_argument(
        "--dfts", nargs="+", default=["fft"], choices=EVERY_DFT,
        help="log-mel DFT forms of the int8 exports (default: the export's default, fft)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="student runs at a time (default 2)")
    parser.add_argument(
        "--fresh", action="store_true",
        help="table only this invocation's runs (default: also keep rows of earlier ones)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not args.data.is_dir():
        print(f"esc50-dev not found at {args.data}", file=sys.stderr)
        return 2
    weights = SHARED / "pretrained" / "yamnet" / "yamnet.tflite"
    if weights.is_file():  # the team's copy of the official file; else the user's cache
        os.environ.setdefault("LEAN_KD_YAMNET", str(weights))
    base = load_recipe(args.recipe, data={"root": str(args.data)})
    dfts = tuple(args.dfts)
    start = time.perf_counter()
    baselines = [args.out / f"fold{f}" / b / "metrics.json" for f in args.folds for b in BASELINES]
    new_baselines = sum(not path.exists() for path in baselines)
    rows = [r for fold in args.folds for r in fold_baselines(base, args.out, fold)]
    runs = [
        run
        for fold in args.folds if args.students
        for run in student_runs(base, args.out, fold, args.seeds, args.methods, dfts)
    ]  # fmt: skip
    to_train = [run for run in runs if run.method in args.methods and not run.done(dfts)]
    trained = map_in_processes(
        student_rows, [(run, dfts) for run in to_train], args.jobs,
        announce=[f"== {run.run_dir}" for run in to_train],
    )  # fmt: skip
    results = {run.run_dir: run_rows for run, run_rows in zip(to_train, trained)}
    for run in runs:  # finished runs (and unselected ones) are read here, not in a worker
        rows += results.get(run.run_dir) or student_rows(run, ())
    kept = 0
    if not args.fresh:
        rows, kept = with_earlier_rows(rows, RESULTS / f"{results_name(args.folds)}.json")
    write_results(rows, args, time.perf_counter() - start, kept, new_baselines + len(to_train))
    return 0


if __name__ == "__main__":
    sys.exit(main())
