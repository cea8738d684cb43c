"""The recipe's ``probe`` section: which pooled window outputs the linear probe uses and how
much it is regularised. :mod:`lean_kd.run.recipe` composes it with the other sections."""

from __future__ import annotations

import dataclasses

from lean_kd.errors import ConfigError

PROBE_FEATURES = ("both", "embeddings", "scores")
PROBE_SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True)
class ProbeSection:
    """The linear probe (lean_kd.probe): which pooled window outputs, how much regularisation.

    ``C`` is scikit-learn's inverse L2 strength on standardised features; ``fit_splits`` are
    the splits it learns from (``[train]``: the clips the other models train on, so the floor
    is comparable; ``[train, val]`` when no model selection needs the validation clips).
    """

    enabled: bool = True
    features: str = "both"  # both | embeddings | scores
    C: float = 1.0
    max_iter: int = 1000  # lbfgs iterations
    fit_splits: tuple[str, ...] = ("train",)

    def __post_init__(self) -> None:
        if self.features not in PROBE_FEATURES:
            raise ConfigError(
                f"probe.features must be one of {list(PROBE_FEATURES)}, got {self.features!r}"
            )
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ConfigError(f"probe.C must be a number > 0, got {self.C!r}")
        max_iter = self.max_iter
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ConfigError(f"probe.max_iter must be an integer > 0, got {self.max_iter!r}")
        bad = [s for s in self.fit_splits if s not in PROBE_SPLITS]
        if not self.fit_splits or bad or len(set(self.fit_splits)) != len(self.fit_splits):
            raise ConfigError(
                f"probe.fit_splits must be distinct splits among {list(PROBE_SPLITS)}, "
                f"got {list(self.fit_splits)}"
            )
