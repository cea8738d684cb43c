"""``lean-kd data`` and the CLI's error handling."""

import subprocess
import sys

from lean_kd.cli.main import main


def test_synth_then_inspect(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--clips-per-class", "4"]) == 0
    assert (out / "manifest.csv").is_file()
    capsys.readouterr()
    assert main(["data", "inspect", "--dataset", "csv", "--root", str(out)]) == 0
    text = capsys.readouterr().out
    assert "40 examples" in text
    assert "Unreadable files: 0" in text


def test_inspect_lists_unreadable_files(tmp_path, capsys):
    out = tmp_path / "synth"
    main(["data", "synth", "--out", str(out), "--clips-per-class", "3"])
    victim = sorted((out / "audio").glob("*.wav"))[0]
    victim.write_bytes(b"")
    capsys.readouterr()
    assert main(["data", "inspect", "--dataset", "csv", "--root", str(out)]) == 0
    text = capsys.readouterr().out
    assert victim.name in text and "empty" in text


def test_bad_dataset_root_is_one_line_error_not_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lean_kd.cli.main",
            "data",
            "inspect",
            "--dataset",
            "esc50",
            "--root",
            str(tmp_path / "nope"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "lean-kd: error:" in result.stderr and "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_dataset_name(capsys, tmp_path):
    assert main(["data", "inspect", "--dataset", "audioset", "--root", str(tmp_path)]) == 2
    assert "audioset" in capsys.readouterr().err
