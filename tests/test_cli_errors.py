"""Every mistake a user can make on the command line ends in one line ``error: ...`` that names
the argument and what was expected, exit status 2, no traceback, and nothing trained or written."""

import os
import subprocess
import sys

import pytest

from tinyinvo.__main__ import main
from tinyinvo.data import load
from tinyinvo.plumbing import UserError

TINY = ["--model", "resnet20", "--width", "4", "--subset", "64,40", "--batch-size", "32",
        "--backend", "numpy", "--epochs", "1"]

# (command line, text the error line must contain: the argument and what was expected)
MISTAKES = [
    (["train", "--model", "rednet27"], "--model: invalid choice: 'rednet27'"),
    (["train", "--threads", "0"], "--threads: expected a positive integer"),
    (["train", "--epochs", "0"], "--epochs: epochs must be an integer >= 1"),
    (["train", "--batch-size", "0"], "--batch-size: batch_size must be an integer >= 1"),
    (["train", "--lr", "-0.1"], "--lr: lr must be a finite number >= 0"),
    (["train", "--lr", "nan"], "--lr: lr must be a finite number >= 0, got nan"),
    (["train", "--lr", "inf"], "--lr: lr must be a finite number >= 0, got inf"),
    (["train", "--momentum", "5"], "--momentum: momentum must be a finite number >= 0 and < 1"),
    (["train", "--label-smoothing", "1"], "--label-smoothing: label_smoothing must be"),
    (["train", "--subset", "256,0"], "--subset: expected N or N,M with positive integers"),
    (["train", "--width", "x"], "--width: expected a positive integer, got 'x'"),
    (["train", "--data", "cifar10", "--data-dir", "{tmp}/nowhere"], "--data-dir: data_dir"),
    (["train", *TINY, "--out", "{tmp}/file"], "--out: {tmp}/file is a file; expected a folder"),
    (["train", "--subset", "40", "--batch-size", "64", "--out", "{tmp}/run"],
     "--batch-size: batch_size 64 is larger than the training set (40 images)"),
    (["eval", "--checkpoint", "{tmp}"], "--checkpoint: {tmp} is a folder"),
    (["eval", "--checkpoint", "{tmp}/missing.npz"], "--checkpoint: there is no file"),
    (["eval", "--checkpoint", "{tmp}/file"], "--checkpoint: {tmp}/file is not a readable"),
    (["count", "--model", "rednet26", "--width", "12"],
     "--width: channels=12 must be divisible by group_channels=16"),
    (["compare", "--lr", "nan"], "--lr: lr must be a finite number"),
    (["compare", "--macs", "3M", "--models", "bottleneck-dw3", "--out", "{tmp}/file"],
     "--out: {tmp}/file is a file"),
    (["compare", "--macs", "3M", "--models", "bottleneck-dw3", "--subset", "64",
      "--batch-size", "128", "--out", "{tmp}/study"], "--batch-size: 128 is larger"),
    (["train", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["demo", "--models", "rednet27"], "--models: invalid choice: 'rednet27'"),
    (["demo", "--width", "0"], "--width: expected a positive integer, got 0"),
    (["demo", "--models", "rednet26", "--width", "12"], "--width: channels=12 must be divisible"),
]


@pytest.mark.parametrize("argv, expected", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_and_exit_status_2(argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default --out would land here
    (tmp_path / "file").write_text("not a folder")
    before = sorted(os.listdir(tmp_path))
    argv = [part.replace("{tmp}", str(tmp_path)) for part in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected.replace("{tmp}", str(tmp_path)) in lines[0]
    assert "Traceback" not in captured.out + captured.err
    assert sorted(os.listdir(tmp_path)) == before  # nothing trained, nothing written


def test_a_read_only_out_is_refused_before_training(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders; the check itself is the --out file case")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    assert main(["train", *TINY, "--out", str(read_only / "run")]) == 2
    assert "--out: cannot write to the folder" in capsys.readouterr().err


def test_debug_shows_the_traceback():
    with pytest.raises(UserError, match="--lr"):
        main(["--debug", "train", "--lr", "nan"])


def test_version_and_program_name(tmp_path):
    version = subprocess.run([sys.executable, "-m", "tinyinvo", "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert version.startswith("tinyinvo 0.") and "numpy" in version and "numba" in version
    # the installed script is called tinyinvo: its usage line says so, not "python -m tinyinvo"
    script = tmp_path / "tinyinvo"
    script.write_text("import sys\nfrom tinyinvo.__main__ import main\nsys.exit(main())\n")
    usage = subprocess.run([sys.executable, str(script), "train", "--lr", "nan"],
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "(see tinyinvo train --help)" in usage.stderr
    assert "python -m" not in usage.stderr


def test_eval_on_data_with_other_class_names_needs_force(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "run")
    assert main(["train", *TINY, "--out", out]) == 0
    capsys.readouterr()
    checkpoint = os.path.join(out, "checkpoint.npz")
    renamed = load("shapes", subset=(64, 40))
    renamed.classes = [f"thing{i}" for i in range(10)]  # as CIFAR-10 would: 10 classes, other names
    monkeypatch.setattr("tinyinvo.train.cli.load_requested_data", lambda source: renamed)
    assert main(["eval", "--checkpoint", checkpoint]) == 2
    error = capsys.readouterr().err
    assert "--data: shapes's classes (thing0" in error and "--force" in error
    assert main(["eval", "--checkpoint", checkpoint, "--force"]) == 0
    printed = capsys.readouterr().out
    assert "warning: --force" in printed and "thing0" in printed
