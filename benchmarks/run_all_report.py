"""What ``benchmarks/run_all.py`` compares and how it reports: candidates, goals, table, plots.

Reads the JSON reports that run_all writes (``lean_kd.evaluation`` and ``lean_kd.bench``
formats) and turns them into ``summary.md`` and the PNGs; it runs no model, so it needs
neither TensorFlow nor the runtime.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lean_kd.bench import plots
from lean_kd.reporting.markdown import MIB, format_number, markdown_table

THREADS = 1


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One exported model: its label, the run folder holding ``best.keras``, the quantization."""

    key: str
    name: str
    run: str  # folder under --runs; "{seed}" is replaced by the seed
    quant: str
    short: str  # label in the plots
    lstm: str = "hybrid"  # int8 / dynamic: how LSTMs are stored (lean_kd.export.modes.LSTM_MODES)
    dft: str = "fft"  # int8 / dynamic: the log-mel DFT's form (lean_kd.export.modes.DFT_MODES)

    def run_dir(self, runs: Path, seed: int) -> Path:
        return runs / self.run.format(seed=seed)

    def stem(self, seed: int) -> str:
        suffix = "" if self.lstm == "hybrid" else f"_{self.lstm}lstm"
        suffix += "" if self.dft == "fft" else f"_dft{self.dft}"
        return f"{self.run.format(seed=seed)}_{self.quant}{suffix}"

    @property
    def format(self) -> str:
        """The table's "format / quant" cell."""
        lstms = {"hybrid": "hybrid", "unrolled": "unrolled", "int8": "integer", "float": "float"}
        details = [f"{lstms[self.lstm]} LSTMs"] if self.has_lstm else []
        details += ["int8 DFT"] if self.dft == "int8" else []
        return f"TFLite {self.quant}" + (f" ({', '.join(details)})" if details else "")

    @property
    def has_lstm(self) -> bool:
        return self.quant in ("int8", "dynamic") and self.run.startswith("lean")


CANDIDATES = (
    Candidate(
        "teacher_float32", "YAMNet teacher (fine-tuned)", "teacher", "float32", "teacher f32"
    ),
    Candidate("teacher_int8", "YAMNet teacher (fine-tuned)", "teacher", "int8", "teacher int8"),
    Candidate("lean_float32", "LEAN", "lean_kd_s{seed}", "float32", "LEAN f32"),
    Candidate("lean_int8", "LEAN", "lean_kd_s{seed}", "int8", "LEAN int8"),
    Candidate(
        "lean_int8_integer_lstm", "LEAN", "lean_kd_s{seed}", "int8", "LEAN int8 (int LSTM)", "int8"
    ),
    Candidate(  # what `lean-kd export --lstm auto` (the default) gives lean_fast
        "lean_fast_int8", "lean_fast", "lean_fast_kd_s{seed}", "int8", "lean_fast int8", "unrolled"
    ),
    Candidate(
        "lean_fast_int8_hybrid_lstm",
        "lean_fast",
        "lean_fast_kd_s{seed}",
        "int8",
        "lean_fast int8 (hybrid LSTM)",
    ),
    Candidate(  # what `lean-kd export --lstm auto` (the default) gives lean_tiny
        "lean_tiny_int8", "lean_tiny", "lean_tiny_kd_s{seed}", "int8", "lean_tiny int8", "unrolled"
    ),
    Candidate(
        "lean_tiny_int8_integer_lstm",
        "lean_tiny",
        "lean_tiny_kd_s{seed}",
        "int8",
        "lean_tiny int8 (int LSTM)",
        "int8",
    ),
    Candidate("cnn_int8", "CNN student (MobileNetV2 x0.5)", "cnn_kd_s{seed}", "int8", "CNN int8"),
    # The official file's form: int8 conv / dense weights, float activations quantized on the
    # fly (XNNPACK's dynamically quantized GEMMs); the log-mel FFT float (exact), or as an int8
    # matrix product like the official file's (faster, lossy on FSDD's silences).
    Candidate("lean_dynamic", "LEAN", "lean_kd_s{seed}", "dynamic", "LEAN dyn"),
    Candidate(
        "lean_fast_dynamic",
        "lean_fast",
        "lean_fast_kd_s{seed}",
        "dynamic",
        "lean_fast dyn",
        "unrolled",
    ),
    Candidate(
        "lean_tiny_dynamic",
        "lean_tiny",
        "lean_tiny_kd_s{seed}",
        "dynamic",
        "lean_tiny dyn",
        "unrolled",
    ),
    Candidate(
        "lean_tiny_dynamic_int8_dft",
        "lean_tiny",
        "lean_tiny_kd_s{seed}",
        "dynamic",
        "lean_tiny dyn (int8 DFT)",
        "unrolled",
        "int8",
    ),
)
YAMNET_NAME = "official YAMNet (AudioSet, 521 classes)"
YAMNET_FORMAT = "TFLite float (11 weights stored int8, DEQUANTIZE at load)"


@dataclasses.dataclass(frozen=True)
class Goal:
    """A performance goal: ``measure(candidate's results) <= limit``."""

    text: str
    key: str  # Candidate.key
    measure: str  # "p50_vs_yamnet" or "memory_vs_yamnet"
    limit: float


GOALS = (  # issue 19's, on the CPU at hand
    Goal(
        "LEAN int8 p50 latency at 1 thread <= 2 x the official YAMNet's",
        "lean_int8",
        "p50_vs_yamnet",
        2.0,
    ),
    Goal(
        "lean_fast int8 p50 latency at 1 thread <= 2 x the official YAMNet's",
        "lean_fast_int8",
        "p50_vs_yamnet",
        2.0,
    ),
    Goal(
        "lean_tiny int8 p50 latency at 1 thread <= the official YAMNet's",
        "lean_tiny_int8",
        "p50_vs_yamnet",
        1.0,
    ),
    Goal(
        "lean_tiny dynamic (int8 weights, float activations) p50 latency at 1 thread <= the "
        "official YAMNet's",
        "lean_tiny_dynamic",
        "p50_vs_yamnet",
        1.0,
    ),
    Goal(
        "LEAN int8 peak memory within 1.1 x the official YAMNet's",
        "lean_int8",
        "memory_vs_yamnet",
        1.1,
    ),
    Goal(
        "lean_fast int8 peak memory within 1.1 x the official YAMNet's",
        "lean_fast_int8",
        "memory_vs_yamnet",
        1.1,
    ),
)


@dataclasses.dataclass(frozen=True)
class Measured:
    """What run_all found for one candidate (None: that step could not run)."""

    candidate: Candidate
    tflite: Path
    evaluation: dict | None
    bench: dict | None
    keras_map: float | None = None  # the Keras checkpoint's test mAP (the run's metrics.json)


def latency(model: Mapping) -> Mapping | None:
    """The model entry's latency at :data:`THREADS` thread(s)."""
    return next((e for e in model["latency"] if e["threads"] == THREADS), None)


LATENCY_MEASURES = {"p50_vs_yamnet": "p50_ms", "min_vs_yamnet": "min_ms"}


def ratio(measured: Measured | None, measure: str) -> float | None:
    """A candidate's same-run ratio to the official YAMNet: latency (``p50_vs_yamnet``,
    ``min_vs_yamnet``) or memory over the runtime import (``memory_vs_yamnet``); None when
    not measured."""
    if measured is None or measured.bench is None or len(measured.bench["models"]) < 2:
        return None
    own, base = measured.bench["models"][:2]
    if measure in LATENCY_MEASURES:
        own, base = latency(own), latency(base)
        key = LATENCY_MEASURES[measure]
        return own[key] / base[key] if own and base and base[key] else None
    own, base = own["memory"]["model_delta_bytes"], base["memory"]["model_delta_bytes"]
    return own / base if own is not None and base else None


def goal_lines(results: Mapping[str, Measured]) -> list[str]:
    """One Markdown bullet per goal: measured ratio and MET / NOT MET (or why not measured)."""
    lines = []
    for goal in GOALS:
        value = ratio(results.get(goal.key), goal.measure)
        if value is None:
            verdict = "NOT MEASURED (model or official YAMNet missing)"
        else:
            met = value <= goal.limit
            verdict = f"ratio {value:.2f} (limit {goal.limit:g}): **{'MET' if met else 'NOT MET'}**"
            if goal.measure == "p50_vs_yamnet":
                fastest = ratio(results[goal.key], "min_vs_yamnet")
                verdict += (
                    f"; ratio of the fastest invokes {fastest:.2f} "
                    "(less sensitive to CPU contention)"
                )
            else:
                own, base = (
                    m["memory"]["model_delta_bytes"] for m in results[goal.key].bench["models"][:2]
                )
                verdict += f" ({own / MIB:.1f} MiB vs {base / MIB:.1f} MiB)"
        lines.append(f"- {goal.text}: {verdict}")
    return lines


def yamnet_entry(results: Sequence[Measured]) -> Mapping | None:
    """The official YAMNet's entry (the baseline of the first report, LEAN int8's if present)."""
    ordered = sorted(results, key=lambda m: m.candidate.key != "lean_int8")
    for measured in ordered:
        models = measured.bench["models"] if measured.bench else []
        if len(models) > 1:
            return models[1]
    return None


def table_row(
    name: str,
    quant: str,
    model: Mapping,
    evaluation: Mapping | None,
    vs_yamnet: float | None,
    keras_map: float | None = None,
) -> list[str]:
    """One row of :data:`HEADER` from a bench model entry and an evaluation report."""
    entry = latency(model) or {}

    def metric(key: str) -> str:
        return format_number((evaluation or {}).get(key), digits=3)

    return [
        name,
        quant,
        format_number(model["file_size_bytes"], MIB),
        metric("map"),
        format_number(keras_map, digits=3),
        metric("accuracy"),
        format_number(entry.get("min_ms")),
        format_number(entry.get("p50_ms")),
        format_number(entry.get("p90_ms")),
        format_number(entry.get("p99_ms")),
        format_number(entry.get("real_time_factor"), digits=4),
        format_number(model["memory"]["model_delta_bytes"], MIB),
        format_number(model["memory"]["peak_rss_bytes"], MIB),
        format_number(model["macs_per_inference"], 1e6, 1),
        format_number(vs_yamnet),
    ]


HEADER = (
    "model",
    "format / quant",
    "size MiB",
    "test mAP",
    "Keras test mAP",
    "test accuracy",
    "min ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "RTF (p50)",
    "memory MiB (model)",
    "peak RSS MiB (process)",
    "MMACs",
    "p50 / YAMNet p50 (same run)",
)


def results_table(results: Sequence[Measured], yamnet: Mapping | None) -> list[str]:
    """The Markdown table: the official YAMNet first, then every candidate."""
    rows = [table_row(YAMNET_NAME, YAMNET_FORMAT, yamnet, None, 1.0)] if yamnet else []
    rows += [
        table_row(
            m.candidate.name,
            m.candidate.format,
            m.bench["models"][0],
            m.evaluation,
            ratio(m, "p50_vs_yamnet"),
            m.keras_map,
        )
        for m in results
    ]
    return markdown_table(HEADER, rows, align="ll" + "r" * (len(HEADER) - 2))


INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "asimddp")  # int8 dot-product instructions


def cpu_features(cpuinfo: str = "/proc/cpuinfo") -> str:
    """ ", CPU model with/without int8 dot products" from ``cpuinfo`` ("" where unreadable).

    Without them (x86 with AVX2 only) XNNPACK's int8 kernels run no faster than its float
    ones, so int8 models gain size, not speed, against a float model such as YAMNet.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return ""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in pairs}
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    dots = sorted(flags & set(INT8_DOT_FLAGS))
    model = fields.get("model name") or fields.get("CPU part") or "unknown CPU"
    has = f"int8 dot products ({', '.join(dots)})" if dots else "no int8 dot-product instructions"
    return f" ({model}, {has})"


def macs_lines(results: Sequence[Measured], yamnet: Mapping | None, top: int = 5) -> list[str]:
    """Per model, the op types with the most MACs: where the latency of each graph goes."""
    models = ([(YAMNET_NAME, yamnet)] if yamnet else []) + [
        (f"{m.candidate.name} {m.candidate.format.removeprefix('TFLite ')}", m.bench["models"][0])
        for m in results
    ]
    lines = []
    for name, model in models:
        by_op = sorted((model.get("macs_by_op") or {}).items(), key=lambda kv: -kv[1])[:top]
        parts = ", ".join(f"{op} {macs / 1e6:.1f}" for op, macs in by_op)
        lines.append(f"- {name}: {parts or 'n/a'}")
    return lines


# ---- writing ------------------------------------------------------------------------------


def write_plots(results: Sequence[Measured], yamnet: Path | None, out: Path) -> list[Path]:
    """The three PNGs; reports ordered LEAN int8 first, so YAMNet's curve is the goal run's."""
    reports = [m.bench for m in sorted(results, key=lambda m: m.candidate.key != "lean_int8")]
    names = {str(m.tflite): m.candidate.short for m in results}
    if yamnet is not None:
        names[str(yamnet)] = "official YAMNet"
    scored = [
        (m.candidate.short, m.bench["models"][0]["file_size_bytes"], m.evaluation["map"])
        for m in results
    ]
    return [
        plots.latency_cdf(reports, out / "latency_cdf.png", threads=THREADS, names=names),
        plots.size_latency_bars(reports, out / "size_latency.png", threads=THREADS, names=names),
        plots.map_vs_size(scored, out / "map_vs_size.png"),
    ]


def summary_text(results: Sequence[Measured], skipped: Sequence[str], context: Mapping) -> str:
    """summary.md: the table, the goals, MACs by op, how it was measured, the plots."""
    yamnet = yamnet_entry(results)
    lines = [
        "# FSDD models side by side: size, test mAP, latency, memory",
        "",
        (
            f"Command: `{context['command']}` ({context['created_utc']}, "
            f"{context['minutes']:.1f} min; steps done by earlier invocations were reused)."
        ),
        "",
        *results_table(results, yamnet),
        "",
        *[f"- {line}" for line in skipped],
        "",
        "## Performance goals (1 thread)",
        "",
        *goal_lines({m.candidate.key: m for m in results}),
        "",
        "## MMACs per inference by op type (top 5)",
        "",
        *macs_lines(results, yamnet),
        "",
        "## How it was measured",
        "",
        *method_paragraphs([m.bench for m in results], context),
        (
            "![mAP vs size](map_vs_size.png) ![latency CDF](latency_cdf.png) "
            "![size and latency](size_latency.png)"
        ),
        "",
    ]
    return "\n".join(lines)


def method_paragraphs(reports: Sequence[Mapping], context: Mapping) -> list[str]:
    """The "how it was measured" paragraphs, each followed by a blank line."""
    host = reports[0]["host"] if reports else {}
    settings = reports[0]["settings"] if reports else {}
    created = sorted(report["created_utc"] for report in reports) or ["n/a"]
    models = (
        f"Models: the seed-{context['seed']} runs of `benchmarks/fsdd_kd.py` (Hinton KD students "
        "from the fine-tuned YAMNet teacher's cache; lean_fast and lean_tiny distilled by run_all "
        "with the same recipe), exported with `lean_kd.export.export_tflite` (int8: integer "
        "conv/dense trunk, log-mel frontend kept float and computed as matrix-product FFT "
        f"stages, {context['calibration_count']} training clips to calibrate; LSTMs hybrid, "
        "i.e. int8 weights with float activations, unrolled onto XNNPACK (what `--lstm auto` "
        "picks for lean_fast and lean_tiny), or integer). Test mAP / accuracy: "
        "`lean_kd.evaluation.evaluate_model` on the 300 test clips (1 s windows, 50 % hop, clip "
        "= mean of its windows) of the TFLite file; 'Keras test mAP' is the checkpoint's own, "
        "from its run's metrics.json (the gap is the conversion's). The official YAMNet predicts "
        "AudioSet classes, not digits: no mAP."
    )
    timing = (
        f"Latency: `lean_kd.bench.run_benchmark`, {THREADS} thread (XNNPACK), "
        f"{settings.get('runs')} timed invokes per model after {settings.get('warmup_runs')} "
        f"warm-up, each model interleaved in blocks of {settings.get('block_runs')} with the "
        "official YAMNet in the same run; the last column and the goal ratios are those same-run "
        "ratios. The YAMNet row is its run beside LEAN int8. min/p50/p90/p99 are per window "
        "(YAMNet: 15600 samples = 0.975 s; the others: 16000 = 1 s); RTF = p50 / window "
        "seconds. On a loaded machine a long invoke is more often preempted than a short one, "
        "which inflates a slow model's p50 ratio; the fastest invokes ('min ms') approximate "
        "the uncontended cost, so the goals also give that ratio. Benchmarks finished between "
        f"{created[0]} and {created[-1]}."
    )
    memory = (
        "Memory: 'model' = peak RSS of a fresh process that loads, allocates and invokes the "
        "model minus that of one that only imports the runtime (median of 3; approximate; the "
        "memory goals compare it with the official YAMNet's); 'process' = the whole process's "
        "peak RSS."
    )
    machine = (
        f"Machine: {host.get('machine')}, {host.get('cpu_count')} cores{cpu_features()}, "
        f"{host.get('runtime')}, Python {host.get('python')}; load average "
        f"{context['load_start']:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
        "(a shared machine: absolute latencies and p50 ratios vary from run to run)."
    )
    return [text for paragraph in (models, timing, memory, machine) for text in (paragraph, "")]
