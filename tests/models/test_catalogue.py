"""The model catalogue behind `lean-kd models list/show` agrees with the registry and real builds.

The catalogue is a stored table (building every model takes ~20 s); these tests are what makes
it trustworthy: a model whose code, defaults or description changed without
``python -m lean_kd.models.catalogue --write`` fails here.
"""

import json
import subprocess
import sys

import pytest

from lean_kd.errors import ConfigError
from lean_kd.models import registry
from lean_kd.models.catalogue import catalogue_entry, load_catalogue

# Built for real (~1-5 s each on 2 cores). ast_small / ast_base share ast_tiny's builder and
# efficientnet_b2 efficientnet_b0's, so their code is checked through the smaller sibling; their
# options and descriptions are checked below like every model's.
BUILT = [
    "efficientnet_b0",
    "ast_tiny",
    "mobilenet_v2",
    "ensemble",
    "yamnet_teacher",
    "lean",
    "lean_tiny",
]
CLASSES = 7  # neither of the catalogue's probe counts: checks the per-class extrapolation too


def test_catalogue_lists_the_registered_models_with_their_defaults():
    catalogue = load_catalogue()
    assert sorted(catalogue) == sorted(registry.names())  # registration order follows imports
    for name, stored in catalogue.items():
        model_entry = registry.entry(name)
        assert stored.description == model_entry.description, name
        assert stored.options == json.loads(json.dumps(model_entry.defaults())), name


@pytest.mark.parametrize("name", BUILT)
def test_catalogue_counts_match_a_real_build(name):
    options = {"pretrained": False} if "pretrained" in registry.entry(name).defaults() else {}
    built = registry.describe(registry.build(name, CLASSES, **options))
    row = catalogue_entry(name).row(CLASSES)
    for key in ("parameters", "trainable_parameters", "input", "activation", "num_classes"):
        assert row[key] == built[key], key
    assert row["macs_per_second"] == pytest.approx(built["macs_per_second"], rel=1e-12)
    assert row["outputs"] == {key: list(shape) for key, shape in built["outputs"].items()}


def test_unknown_model_and_bad_class_count_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown model 'nope'; expected one of"):
        catalogue_entry("nope")
    with pytest.raises(ConfigError, match="num_classes must be an integer >= 1, got 0"):
        catalogue_entry("lean").row(0)


def test_listing_and_show_do_not_import_tensorflow():
    code = (
        "import sys; from lean_kd.cli.main import main; "
        "assert main(['models', 'list']) == 0; assert main(['models', 'show', 'lean']) == 0; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "lean_tiny" in result.stdout and "options (recipe" in result.stdout
