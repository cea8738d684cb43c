"""The model catalogue: every registered model's options, size and cost, read without TensorFlow.

``lean-kd models list`` and ``models show`` answer from ``catalogue.json`` beside this module:
counting by building every model takes ~20 s on two cores (``ast_base`` alone has 85 M
parameters) and importing TensorFlow ~5 s. Only the classification heads depend on the number
of classes, so parameters and MACs are affine in it: the file stores, per model, the count at
zero classes and the count per class, measured by building the model at two class counts.

After changing a model, its defaults or its description, regenerate the file::

    python -m lean_kd.models.catalogue --write

``tests/models/test_catalogue.py`` compares the file with the registry and with real builds of
the smaller models, so a stale catalogue fails the tests. This module must not import TensorFlow
at import time (the registry is imported only to regenerate).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from lean_kd.errors import ConfigError
from lean_kd.files import write_json

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")
PROBE_CLASSES = (2, 3)  # the two class counts the affine counts are measured at
COUNTED = ("parameters", "trainable_parameters", "macs_per_second")
CLASSES_AXIS = "num_classes"  # stands for the class count in a stored output shape


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """One model as the catalogue knows it: counts are ``(at 0 classes, per class)`` pairs."""

    name: str
    description: str
    options: dict[str, Any]  # every option with its default
    input: str
    activation: str
    outputs: dict[str, list[int | str | None]]  # shapes, :data:`CLASSES_AXIS` for the classes
    counts: dict[str, tuple[float, float]]

    def row(self, num_classes: int) -> dict[str, Any]:
        """Name, description, input, outputs and counts of the model built for ``num_classes``."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        counts = {key: base + slope * num_classes for key, (base, slope) in self.counts.items()}
        return {
            "name": self.name,
            "description": self.description,
            "input": self.input,
            "activation": self.activation,
            "num_classes": num_classes,
            "outputs": {
                key: [num_classes if size == CLASSES_AXIS else size for size in shape]
                for key, shape in self.outputs.items()
            },
            "parameters": int(round(counts["parameters"])),
            "trainable_parameters": int(round(counts["trainable_parameters"])),
            "macs_per_second": counts["macs_per_second"],
        }


def load_catalogue(path: Path = CATALOGUE_FILE) -> dict[str, CatalogueEntry]:
    """Every catalogued model by name, in registration order."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Cannot read the model catalogue {path} ({exc}); regenerate it with "
            "python -m lean_kd.models.catalogue --write"
        ) from None
    entries = [
        CatalogueEntry(**{**item, "counts": {k: tuple(v) for k, v in item["counts"].items()}})
        for item in data["models"]
    ]
    return {entry.name: entry for entry in entries}


def catalogue_entry(
    name: str, catalogue: dict[str, CatalogueEntry] | None = None
) -> CatalogueEntry:
    """The entry of ``name``; an unknown name is a ConfigError listing the valid ones."""
    catalogue = load_catalogue() if catalogue is None else catalogue
    if name not in catalogue:
        raise ConfigError(f"Unknown model {name!r}; expected one of {list(catalogue)}")
    return catalogue[name]


def measure_entry(name: str) -> CatalogueEntry:
    """Build registered model ``name`` at :data:`PROBE_CLASSES` and derive its entry."""
    from lean_kd.models.registry import build, describe, entry

    model_entry = entry(name)
    # sizes and costs do not depend on the weights: never fetch pretrained ones here
    options = {"pretrained": False} if "pretrained" in model_entry.defaults() else {}
    low, high = (describe(build(name, classes, **options)) for classes in PROBE_CLASSES)
    step = PROBE_CLASSES[1] - PROBE_CLASSES[0]
    counts = {}
    for key in COUNTED:
        per_class = (high[key] - low[key]) / step
        counts[key] = (low[key] - per_class * PROBE_CLASSES[0], per_class)
    return CatalogueEntry(
        name=name,
        description=model_entry.description,
        options=json.loads(json.dumps(model_entry.defaults())),
        input=low["input"],
        activation=low["activation"],
        outputs={key: _shape(low["outputs"][key], high["outputs"][key]) for key in low["outputs"]},
        counts=counts,
    )


def _shape(low: list, high: list) -> list[int | str | None]:
    """A shape measured at both probe counts, with the axes that follow the class count named."""
    return [CLASSES_AXIS if a != b else a for a, b in zip(low, high, strict=True)]


def write_catalogue(entries: list[CatalogueEntry], path: Path = CATALOGUE_FILE) -> None:
    """Write ``entries`` as JSON atomically (temporary file beside ``path``, then rename)."""
    write_json(path, {"models": [dataclasses.asdict(e) for e in entries]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the catalogue: build every model.")
    parser.add_argument("--write", action="store_true", help=f"write {CATALOGUE_FILE.name}")
    args = parser.parse_args(argv)
    from lean_kd.models.registry import names

    entries = [measure_entry(name) for name in names()]
    if args.write:
        write_catalogue(entries)
    print(json.dumps([e.row(10) for e in entries], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
