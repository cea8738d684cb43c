"""``lean-kd demo``: the main job on the embedded synthetic dataset.

For now the demo runs the stages that exist (synthesise the dataset, index and validate it,
stream it through the tf.data pipeline, plot one log-mel per class); the teacher, distillation,
export and benchmark stages join it as they land. Each stage is timed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Iterator

import numpy as np

logger = logging.getLogger(__name__)

PENDING_STAGES = ("teacher fine-tuning", "distillation", "TFLite export", "on-device benchmark")


@contextlib.contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Print and record how long a stage took."""
    print(f"==> {name}")
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    print(f"    {name}: {timings[name]:.1f} s")


def run_demo(out: Path) -> dict[str, float]:
    """Run every available stage into ``out``; returns stage timings in seconds."""
    from lean_kd.config import AudioConfig, PipelineConfig
    from lean_kd.data.adapters import load_index
    from lean_kd.data.inspect import format_report, inspect_dataset
    from lean_kd.data.pipeline import AudioPipeline
    from lean_kd.data.synth import synthesize

    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with stage("synthesise the embedded dataset", timings):
        manifest = synthesize(out / "data")
    with stage("index and inspect", timings):
        index = load_index("csv", manifest.parent, name="synth")
        print(format_report(inspect_dataset(index)))
    with stage("tf.data pipeline", timings):
        pipeline = AudioPipeline(index, audio=AudioConfig(clip_seconds=1.0), pipeline=PipelineConfig(batch_size=32))
        describe_pipeline(pipeline)
    with stage("plot log-mels", timings):
        png = plot_log_mels(pipeline, out / "log_mel_per_class.png")
        print(f"    wrote {png}")
    print(f"Not yet available in this version: {', '.join(PENDING_STAGES)}.")
    print("Stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return timings


def describe_pipeline(pipeline) -> None:
    """Print what a training batch and the evaluation windows look like."""
    inputs, labels = next(iter(pipeline.dataset("train", training=True)))
    log_mel = inputs["log_mel"].numpy()
    print(f"    training batch: waveform {tuple(inputs['waveform'].shape)}, log_mel {log_mel.shape}, "
          f"labels {tuple(labels.shape)}")
    print(f"    log-mel mean {log_mel.mean():.2f}, std {log_mel.std():.2f}; "
          f"classes in batch: {int((labels.numpy().sum(axis=0) > 0).sum())}/{labels.shape[1]}")
    windows = sum(int(x["waveform"].shape[0]) for x, _ in pipeline.windows("test"))
    clips = len(pipeline.index.split("test"))
    print(f"    evaluation: {clips} test clips -> {windows} windows of 1 s with 50 % overlap")
    if len(pipeline.broken):
        print("    " + pipeline.broken.summary())


def plot_log_mels(pipeline, path: Path) -> Path:
    """One log-mel image per class (the first test clip of each), in a grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = pipeline.index.class_names
    first: dict[int, np.ndarray] = {}
    for inputs, labels in pipeline.dataset("test", training=False):
        for mel, label in zip(inputs["log_mel"].numpy(), labels.numpy()):
            first.setdefault(int(label.argmax()), mel)
    cols = 5
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, name in enumerate(names):
        if i in first:
            ax = axes.ravel()[i]
            ax.imshow(first[i].T, origin="lower", aspect="auto", cmap="magma")
            ax.set_title(name, fontsize=9)
    fig.suptitle("Log-mel (YAMNet frontend), first test clip of each class")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path
