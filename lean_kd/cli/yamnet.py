"""``lean-kd yamnet classify FILE...``: the top AudioSet classes of audio files."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("yamnet", help="pretrained YAMNet (AudioSet, 521 classes)")
    actions = parser.add_subparsers(dest="yamnet_command", metavar="ACTION", required=True)
    classify = actions.add_parser(
        "classify",
        help="print the top AudioSet classes of each file (mean over 0.96 s patches)",
        description="Classify audio files (any format soundfile reads, any sample rate) with the "
        "pretrained YAMNet; a clip's score is the mean of its patch scores.",
    )
    classify.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files")
    classify.add_argument(
        "--top-k", type=int, default=5, help="classes to print per file (default 5)"
    )
    classify.add_argument(
        "--weights",
        default=None,
        help="yamnet.tflite, yamnet.h5, SavedModel dir or TF-Hub handle "
        "(default: $LEAN_KD_YAMNET, the cache, then a download)",
    )
    classify.set_defaults(handler=_classify)


def _classify(args: argparse.Namespace) -> int:
    from lean_kd.models.yamnet.classify import classify_files

    for prediction in classify_files(args.files, top_k=args.top_k, weights=args.weights):
        count = prediction.num_patches
        patches = f"{count} patch" if count == 1 else f"{count} patches"
        print(f"{prediction.path} ({prediction.duration_seconds:.2f} s, {patches})")
        for index, name, score in prediction.top:
            print(f"  {score:.3f}  {name} [{index}]")
    return 0
