"""Every command in the README works: each one parses, each `compare` solves its budget, and the
cheap ones (seconds) run to the end. Training commands take minutes to hours; the train and study
tests run the same code on tiny data."""

import re
import shlex
from pathlib import Path

import pytest

from tinyinvo.__main__ import main, make_parser

README = Path(__file__).resolve().parents[1] / "README.md"
PREFIX = "python -m tinyinvo "

# run as they are (each takes seconds); a test checks that the README still shows each of them
CHEAP = [
    "count --model rednet26 --width 16 --per-layer",
    "count --block bottleneck --op dw7 --depth 26 --width 17",
    "compare --dry-run --macs 32M",
]


def readme_commands():
    """The ``python -m tinyinvo ...`` commands of the README's bash blocks, as argument lists."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0]
            if PREFIX in line:
                commands.append(shlex.split(line[line.index(PREFIX) + len(PREFIX):]))
    return commands


COMMANDS = readme_commands()


def test_the_readme_shows_commands_and_the_cheap_ones_are_among_them():
    assert len(COMMANDS) >= 15
    shown = [" ".join(command) for command in COMMANDS]
    assert [command for command in CHEAP if command not in shown] == []


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_every_readme_command_parses(argv):
    make_parser().parse_args(argv)  # a flag that no longer exists raises UserError


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] == "compare"],
                         ids=lambda argv: " ".join(argv)[:60])
def test_every_readme_study_meets_its_budget(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--dry-run"]) == 0  # solves every model's width; nothing trained


@pytest.mark.parametrize("command", CHEAP)
def test_the_cheap_readme_commands_run(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command)) == 0
