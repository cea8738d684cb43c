"""``lean-kd models list``: rows from the registry, formats, unknown names."""

import json

from lean_kd.cli.main import main
from lean_kd.cli.models import format_rows


def test_list_prints_parameters_macs_and_input(capsys):
    assert main(["models", "list", "ast_tiny", "--num-classes", "5", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["parameters"] == 5_397_701  # 12 blocks of 444,864 + patches, positions, norm, head
    # per block: 4 projections 4*45*192*192 + attention 2*45*45*192 + MLP 2*45*192*768
    block = 4 * 45 * 192 * 192 + 2 * 45 * 45 * 192 + 2 * 45 * 192 * 768
    frontend, patches, head = 98 * 257 * 64, 45 * 256 * 192, 192 * 5
    assert row["macs_per_second"] == 12 * block + frontend + patches + head
    assert row["input"] == "waveform [B, 16000] float32, 16000 Hz (1 s)"
    assert row["description"].startswith("Transformer teacher")


def test_text_and_markdown_tables():
    rows = [
        {
            "name": "m",
            "parameters": 2_270_000,
            "macs_per_second": 43_400_000.0,
            "input": "waveform [B, 16000]",
            "description": "a model",
        }
    ]
    text = format_rows(rows, "text").splitlines()
    assert text[0].split("  ")[0] == "model" and "2.27 M" in text[1] and "43.4 M" in text[1]
    assert format_rows(rows, "markdown").splitlines() == [
        "| model | parameters | MACs / s audio | input | description |",
        "|---|---|---|---|---|",
        "| m | 2.27 M | 43.4 M | waveform [B, 16000] | a model |",
    ]


def test_unknown_model_is_a_one_line_error(capsys):
    assert main(["models", "list", "nope"]) == 2
    err = capsys.readouterr().err
    assert "lean-kd: error: Unknown model 'nope'; expected one of" in err and "mobilenet_v2" in err
