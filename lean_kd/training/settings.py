"""The recipe sections that training reads: optimisation (``training``, ``teacher_training``)
and distribution (``distribute``). They live here, not in :mod:`lean_kd.run.recipe`, so that
training code takes its settings without importing the recipe that composes them."""

from __future__ import annotations

import dataclasses

from lean_kd.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multiworker")  # tf.distribute strategies by recipe name


TRAINING_METHODS = ("keras_fit", "linear_head")


@dataclasses.dataclass(frozen=True)
class TrainingSection:
    """Optimisation settings for Keras ``fit``."""

    epochs: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the training split
    optimizer: str = "adam"  # adam | adamw
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4  # adamw only
    schedule: str = "constant"  # constant | cosine | exponential
    warmup_epochs: float = 0.0
    decay_rate: float = 0.5  # exponential: factor per decay_epochs
    decay_epochs: float = 10.0
    early_stopping_patience: int = 0  # 0: off
    monitor: str = "val_map"  # val_map | val_auc_pr | val_loss
    seed: int = 0
    # keras_fit: gradient training of the model. linear_head: the backbone stays frozen and the
    # classifier is a logistic regression fitted on every evaluation window of every training
    # clip (lean_kd.probe.teacher): seconds instead of hours, and robust with few clips per class.
    method: str = "keras_fit"
    linear_head_c: float = 0.5  # linear_head: inverse L2 strength on standardised embeddings

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"training.epochs must be > 0, got {self.epochs}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"training.optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine", "exponential"):
            raise ConfigError(
                f"training.schedule must be 'constant', 'cosine' or 'exponential', got {self.schedule!r}"
            )
        if self.monitor not in ("val_map", "val_auc_pr", "val_loss"):
            raise ConfigError(
                f"training.monitor must be 'val_map', 'val_auc_pr' or 'val_loss', got {self.monitor!r}"
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if self.method not in TRAINING_METHODS:
            raise ConfigError(f"training.method must be one of {list(TRAINING_METHODS)}, got {self.method!r}")
        if not self.linear_head_c > 0:
            raise ConfigError(f"training.linear_head_c must be > 0, got {self.linear_head_c}")


@dataclasses.dataclass(frozen=True)
class DistributeSection:
    """Training on several devices or hosts (see lean_kd.training.distribute and README "Scaling out")."""

    strategy: str = "default"  # default | mirrored | multiworker (--strategy overrides it)
    # What pipeline.batch_size counts: "global" (the sum over all replicas: the learning rate
    # stays right when replicas are added) or "per_replica" (each replica's batch: the global
    # batch grows with the replicas and the learning rate should grow with it)
    batch: str = "global"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"distribute.strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if self.batch not in ("global", "per_replica"):
            raise ConfigError(f"distribute.batch must be 'global' or 'per_replica', got {self.batch!r}")
