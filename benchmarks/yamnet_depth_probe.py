"""How much of the ESC-50 dev probe's accuracy YAMNet's first k blocks hold: the ceiling of a
student built on a truncated YAMNet (lean_tiny keeps the first 6 blocks to stay under the
official model's latency).

For each depth k, the pretrained YAMNet cut after block k (``layer{k}/pointwise_conv/relu``),
its feature map averaged over time and frequency, is the backbone of the same linear probe
as ``benchmarks/esc50_dev.py``'s floor (``lean_kd.probe``: 0.975 s windows, clip pooling,
logistic regression on the recipe's ``probe`` settings, embeddings only: a cut model has no
AudioSet scores), over the same 4 folds. The floor itself (block 14 with the AudioSet scores)
is the last row. A student distilled onto k blocks has to beat this linear read-out of the
same frozen features to justify its training; where the read-out stays below the floor, the
truncated trunk caps it.

    python benchmarks/yamnet_depth_probe.py [--depths 4 6 8 10 12 14] [--out DIR]

Writes benchmarks/results/yamnet_depth_probe.md (and .json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.files import write_atomic
from lean_kd.models.macs import count_macs
from lean_kd.models.yamnet.network import YAMNetConfig
from lean_kd.models.yamnet.pretrained import resolve_yamnet_weights, sha256_of
from lean_kd.models.yamnet.weights import pretrained_yamnet
from lean_kd.probe import run_probe, yamnet_backbone
from lean_kd.probe.backbone import YAMNET_WINDOW_SAMPLES, Backbone
from lean_kd.run import experiment
from lean_kd.run.recipe import load_recipe

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from esc50_dev import FOLDS, RECIPE, RESULTS, SHARED, fold_recipe  # noqa: E402


def truncated_backbone(depth: int, weights: str) -> tuple[Backbone, int]:
    """YAMNet's blocks 1..depth with the official weights, mean-pooled; and its MACs. A cut
    model has no AudioSet scores: its ``scores`` are empty."""
    full = pretrained_yamnet(YAMNetConfig(input_samples=YAMNET_WINDOW_SAMPLES), weights=weights)
    features = full.get_layer(f"layer{depth}/pointwise_conv/relu").output  # [B, h, w, c]
    cut = keras.Model(full.input, tf.reduce_mean(features, axis=(1, 2)))

    @tf.function(input_signature=[tf.TensorSpec([None, YAMNET_WINDOW_SAMPLES], tf.float32)])
    def forward(windows: tf.Tensor) -> tf.Tensor:
        return cut(windows, training=False)

    def run(windows: np.ndarray) -> dict[str, np.ndarray]:
        embeddings = forward(tf.constant(windows, tf.float32)).numpy()
        return {"embeddings": embeddings, "scores": np.zeros((len(embeddings), 0), np.float32)}

    identity = f"{sha256_of(Path(weights))}:blocks1-{depth}"
    backbone = Backbone(f"yamnet blocks 1-{depth}", identity, 16000, YAMNET_WINDOW_SAMPLES, run)
    return backbone, count_macs(cut)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14])
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "yamnet_depth_probe")
    parser.add_argument("--data", type=Path, default=SHARED / "datasets" / "esc50-dev")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"esc50-dev not found at {args.data}", file=sys.stderr)
        return 2
    shared_weights = SHARED / "pretrained" / "yamnet" / "yamnet.tflite"
    if shared_weights.is_file():
        os.environ.setdefault("LEAN_KD_YAMNET", str(shared_weights))
    weights = str(resolve_yamnet_weights(None))
    base = load_recipe(RECIPE, data={"root": str(args.data)})
    embeddings_only = dataclasses.replace(base.probe, features="embeddings")
    start = time.perf_counter()
    rows = []
    for depth in [*args.depths, None]:  # None: the floor (block 14, embeddings and scores)
        if depth is None:
            backbone, macs, settings = yamnet_backbone(weights), None, base.probe
        else:
            backbone, macs = truncated_backbone(depth, weights)
            settings = embeddings_only
        scores = []
        for fold in FOLDS:
            index = experiment.load_data(fold_recipe(base, fold))
            name = f"depth{depth or 'floor'}_fold{fold}"
            metrics = run_probe(
                index, args.out / name, backbone=backbone, settings=settings,
                cache_dir=args.out / "window_outputs",
            )  # fmt: skip
            scores.append((metrics["test"]["accuracy"], metrics["test"]["map"]))
        rows.append({"depth": depth, "macs": macs, "folds": scores})
        print(depth, np.round(np.mean(scores, axis=0), 3), flush=True)
    write_results(rows, args, time.perf_counter() - start)
    return 0


def write_results(rows: list[dict], args: argparse.Namespace, seconds: float) -> None:
    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

    lines = [
        "# Linear probe on YAMNet's first k blocks (ESC-50 dev, 4 folds)",
        "",
        f"Written by `{' '.join(['python benchmarks/yamnet_depth_probe.py', *sys.argv[1:]])}`; "
        f"{platform.machine()}, {seconds / 60:.1f} min.",
        "Backbone: the official YAMNet cut after block k, its last feature map averaged over",
        "time and frequency; the esc50_dev probe on it (0.975 s windows, clip pooling, logistic",
        "regression, the recipe's `probe` settings, embeddings only). Mean ± sample std over",
        "the 4 test folds; MACs of the cut trunk (frontend included) per 0.975 s window.",
        "",
        "| backbone | MACs per window | test accuracy | test mAP |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        name = (
            f"blocks 1-{row['depth']}"
            if row["depth"]
            else "the floor: all 14 blocks, AudioSet scores too (esc50_dev's probe)"
        )
        macs = f"{row['macs'] / 1e6:.0f} M" if row["macs"] else "—"
        accuracy, mean_ap = zip(*row["folds"])
        lines.append(f"| {name} | {macs} | {spread(list(accuracy))} | {spread(list(mean_ap))} |")
    write_atomic(RESULTS / "yamnet_depth_probe.md", "\n".join(lines) + "\n")
    write_atomic(RESULTS / "yamnet_depth_probe.json", json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
