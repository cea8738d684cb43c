"""Epoch time of distillation with an online teacher against the teacher-output cache.

Same data, student, loss and batches; the only difference is whether each batch runs the
teacher or reads its stored outputs. Writes benchmarks/results/distill_speed.md.

    python benchmarks/distill_speed.py [--teacher yamnet_teacher] [--student lean_tiny] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from lean_kd._keras import keras
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.adapters import load_index
from lean_kd.data.pipeline import AudioPipeline
from lean_kd.data.synth import SynthConfig, synthesize
from lean_kd.distill.distiller import Distiller
from lean_kd.distill.losses import build_loss
from lean_kd.distill.teacher_cache import TeacherCache, build_teacher_cache
from lean_kd.models.registry import build
from lean_kd.training.trainer import student_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "distill_speed.md"


def epoch_seconds(student, teacher, dataset, epochs: int) -> float:
    """Median wall time of the epochs after the first (which includes graph tracing)."""
    distiller = Distiller(student, build_loss([{"name": "hinton_kd"}]), teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-4), metrics=student_metrics(False))
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    distiller.fit(dataset, epochs=epochs + 1, verbose=0, callbacks=[Timer()])
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="yamnet_teacher")
    parser.add_argument("--student", default="lean_tiny")
    parser.add_argument("--clips-per-class", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    synthesize(root / "data", SynthConfig(clips_per_class=args.clips_per_class), progress=False)
    index = load_index("csv", root / "data")
    audio = AudioConfig(clip_seconds=1.0)
    pipeline = AudioPipeline(
        index, audio=audio, features=None, pipeline=PipelineConfig(batch_size=32, cache=True)
    )
    teacher = build(args.teacher, index.num_classes)
    start = time.perf_counter()
    build_teacher_cache(
        teacher,
        index,
        root / "cache",
        audio=audio,
        teacher_name=args.teacher,
        crops_per_clip=2,
        progress=False,
    )
    cache_seconds = time.perf_counter() - start
    crops = TeacherCache(root / "cache", index=index).crop_table(index.split("train"))
    online = epoch_seconds(
        build(args.student, index.num_classes),
        teacher,
        pipeline.dataset("train", training=True),
        args.epochs,
    )
    cached = epoch_seconds(
        build(args.student, index.num_classes),
        None,
        pipeline.dataset("train", training=True, crops=crops),
        args.epochs,
    )
    text = f"""# Distillation speed: online teacher vs teacher cache

Command: `python benchmarks/distill_speed.py --teacher {args.teacher} --student {args.student} --clips-per-class {args.clips_per_class} --epochs {args.epochs}`

Synthetic dataset, {len(index.split("train"))} training clips of 1 s, batch 32, Hinton KD; median epoch
time over {args.epochs} epochs after a first (tracing) epoch.

| mode | seconds per epoch |
| --- | ---: |
| online teacher ({args.teacher}) | {online:.2f} |
| cached teacher outputs | {cached:.2f} |
| **speed-up** | **{online / cached:.2f}x** |

Building the cache (2 crops per clip, train + val) took {cache_seconds:.1f} s once.
Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU.
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
