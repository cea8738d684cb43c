"""The floor: a linear probe on a frozen pretrained model, the line other models must beat.

As TFLite Model Maker's YAMNet spec does, the pretrained YAMNet stays frozen; each clip is cut
into 0.975 s windows (50 % hop), pooled (mean and max over windows of the 1024-d embeddings
and/or the 521 AudioSet scores) and a standardised logistic regression learns the dataset's
classes. Modules, in data-flow order:

- :mod:`~lean_kd.probe.backbone`: the frozen model (pretrained YAMNet or any contract checkpoint);
- :mod:`~lean_kd.probe.windows`: per-clip window outputs, cached on disk, and their pooling;
- :mod:`~lean_kd.probe.classifier`: the standardised logistic regression;
- :mod:`~lean_kd.probe.evaluation`: fit on the training clips, metrics on val and test.
"""

from lean_kd.probe.backbone import Backbone, checkpoint_backbone, yamnet_backbone
from lean_kd.probe.classifier import LinearProbe
from lean_kd.probe.evaluation import run_probe
from lean_kd.probe.windows import ClipWindows, clip_key, clip_window_outputs, pool_clips

__all__ = [
    "Backbone",
    "ClipWindows",
    "LinearProbe",
    "checkpoint_backbone",
    "clip_key",
    "clip_window_outputs",
    "pool_clips",
    "run_probe",
    "yamnet_backbone",
]
