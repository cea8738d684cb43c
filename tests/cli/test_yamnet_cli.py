"""``lean-kd yamnet classify``: real output for a real clip, one-line errors with exit code 2."""

import pytest

from lean_kd.cli import main as cli


@pytest.fixture
def run(monkeypatch, yamnet_tflite, capsys):
    """Run ``lean-kd`` with only the yamnet command group registered (others are tested elsewhere)."""
    monkeypatch.setattr(cli, "command_modules", lambda: ["lean_kd.cli.yamnet"])
    monkeypatch.setenv("LEAN_KD_YAMNET", str(yamnet_tflite))

    def invoke(*argv):
        code = cli.main(["yamnet", "classify", *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_classify_prints_top_classes_per_file(run, esc50_sample_root):
    thunder = esc50_sample_root / "audio" / "2-104105-A-19.wav"
    baby = esc50_sample_root / "audio" / "5-151085-A-20.wav"
    code, out, err = run(thunder, baby, "--top-k", "3")
    print(out)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{thunder} (5.00 s, 10 patches)"
    assert lines[1].split(maxsplit=1)[1] in ("Thunderstorm [280]", "Thunder [281]")
    assert lines[4] == f"{baby} (5.00 s, 10 patches)"
    assert any("Baby cry, infant cry [20]" in line for line in lines[5:8])
    scores = [float(line.split()[0]) for line in lines[1:4]]
    assert scores == sorted(scores, reverse=True) and 0.5 < scores[0] <= 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("missing.wav",), "missing.wav: file not found"),
        (("--top-k", "0"), "top_k must be in [1, 521], got 0"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(run, esc50_sample_root, tmp_path, argv, message):
    argv = [tmp_path / a if a.endswith(".wav") else a for a in argv]
    if "--top-k" in argv:
        argv.insert(0, esc50_sample_root / "audio" / "2-104105-A-19.wav")
    code, out, err = run(*argv)
    assert code == 2
    assert err.startswith("lean-kd: error: ") and message in err
    assert "Traceback" not in err and out == ""
