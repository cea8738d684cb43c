"""``lean-kd run``: the staged pipeline from a recipe to a report, and the report itself.

Run-folder contract (what the report reads)::

    DIR/run.json              how the run was started, the recipe as the stages saw it
    DIR/<stage>/stage.json    {"stage", "fingerprint", "inputs", "seconds", "finished", "outputs"}
    DIR/prepare/index.json    dataset, classes, split sizes, unreadable files, pretrained_yamnet
    DIR/probe/metrics.json    the floor: linear probe on frozen YAMNet (lean_kd.probe), val and test
                              metrics, or {"skipped": why} without pretrained weights; probe.npz
    DIR/window_outputs/       the probe's per-clip YAMNet window outputs (cache, kept across reruns)
    DIR/teacher/, student/, distill/   best.keras, final.keras, history.csv, metrics.json
    DIR/cache/                teacher cache (lean_kd.distill.teacher_cache)
    DIR/export/               <student>_<quant>.tflite, export.json (sizes, Keras-vs-TFLite parity)
    DIR/evaluate/<model>.json lean_kd.evaluation reports (teacher, student, distill, distill_<quant>)
    DIR/bench/                bench.json, bench.md (int8 student vs the official YAMNet)
    DIR/report.md, DIR/*.png  lean_kd.run.report (rebuilt on every run)

Importing this package is cheap (no TensorFlow); the stages live in :mod:`lean_kd.run.stages`.
"""

STAGE_NAMES = (
    "prepare", "probe", "teacher", "cache", "student", "distill", "export", "evaluate", "bench", "report"
)  # fmt: skip
