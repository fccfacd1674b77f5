"""Grading a student cannot talk into full marks: each notebook in tests/attacks/ must score 0.

Each attack notebook holds the cells a mischievous student appends to exercises/01_conv_forward.ipynb,
whose stubs stay untouched. All are graded in one ``grade --json`` run, as a class, read through a
pipe as an instructor's script would: it must end, print exactly one JSON object, and leave no
process behind.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tinyinvo.__main__ import main

REPO = Path(__file__).resolve().parents[1]
ATTACKS = sorted((REPO / "tests" / "attacks").glob("*.ipynb"))
TIMEOUT = 10  # seconds per cell and per task's calls; the whole run must end well within its limits


def submission(folder, attack):
    """exercises/01_conv_forward.ipynb (stubs untouched) with the attack's cells appended."""
    notebook = nbformat.read(REPO / "exercises" / "01_conv_forward.ipynb", as_version=4)
    notebook.cells += nbformat.read(attack, as_version=4).cells
    path = folder / f"{attack.stem}.ipynb"
    nbformat.write(notebook, path)
    return path


def alive(pid):
    """True if process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{attack name: its report (or error) in the JSON}, the run's stdout, its folders and its duration."""
    folders = {attack.stem: tmp_path_factory.mktemp(attack.stem) for attack in ATTACKS}
    paths = [submission(folders[attack.stem], attack) for attack in ATTACKS]
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "tinyinvo", "grade", *map(str, paths), "--exercise", "01_conv_forward",
                          "--json", "--workers", "2", "--timeout", str(TIMEOUT)],
                         capture_output=True, text=True, timeout=900, cwd=REPO)
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)  # exactly one JSON object: anything else around it fails here
    reports = {Path(report["notebook"]).stem: report for report in data["reports"]}
    return reports, run.stdout, folders, seconds


def test_there_is_a_notebook_for_each_attack():
    assert {path.stem for path in ATTACKS} == {
        "replace_print_task_result", "rewrite_tasks", "patch_expect_array", "pre_run_cell_hook", "numpy_comparisons",
        "os_write_fake_json", "fake_table_then_kill_parent", "double_fork", "calls_reference",
        "new_session_escape", "endless_ignoring_interrupts"}


@pytest.mark.parametrize("attack", [path.stem for path in ATTACKS if path.stem != "fake_table_then_kill_parent"])
def test_each_attack_scores_zero(graded, attack):
    reports, _, _, _ = graded
    report = reports[attack]
    assert (report["points"], report["max_points"]) == (0, 10), report
    assert report["to_read"], "the lines that reach into the grading or the process are pointed out"


def test_a_notebook_that_kills_its_grader_gets_no_report_and_no_fake_table(graded):
    reports, stdout, _, _ = graded
    assert "ended without a report" in reports["fake_table_then_kill_parent"]["error"]
    assert "10/10" not in stdout and '"points": 10,' not in stdout  # nothing the kernels wrote came through


def test_calling_the_reference_scores_zero_and_says_so(graded):
    reports, _, _, _ = graded
    messages = {task["name"]: task["message"] for task in reports["calls_reference"]["tasks"]}
    assert {task["status"] for task in reports["calls_reference"]["tasks"]} == {"failed"}
    assert "calls tinyinvo.ops.windows.pad: a graded function must compute" in messages["pad_input"]
    assert "calls tinyinvo.ops.conv2d_forward" in messages["conv_forward_naive"]
    assert "calls tinyinvo.ops.windows.im2col" in messages["im2col"]
    assert "calls sys.setprofile (it switched off this check)" in messages["conv_forward_im2col"]


def test_grading_ends_within_its_limits_and_leaves_no_process_behind(graded):
    reports, _, folders, seconds = graded
    assert seconds < 600
    endless = reports["endless_ignoring_interrupts"]["tasks"]
    assert endless[0]["status"] == "error" and endless[0]["message"].startswith("not graded:")
    pids = [int((folders["double_fork"] / name).read_text()) for name in ("kernel.pid", "grandchild.pid")]
    pids.append(int((folders["new_session_escape"] / "escaped.pid").read_text()))
    deadline = time.monotonic() + 10
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(alive, pids)), "the kernel, its double-forked grandchild or an escapee outlived grading"


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "soon"])
def test_the_timeout_must_be_a_positive_number(timeout, capsys):
    assert main(["grade", "any.ipynb", "--timeout", timeout]) == 2
    assert "error: argument --timeout:" in capsys.readouterr().err


@pytest.mark.parametrize("exercise_option", [[], ["--exercise", "01_conv_forward"]], ids=["by file name", "--exercise"])
def test_a_depthwise_solution_saved_as_exercise_01_is_an_error(tmp_path, capsys, exercise_option):
    path = tmp_path / "01_conv_forward.ipynb"
    shutil.copy(REPO / "solutions" / "03_depthwise.ipynb", path)
    assert main(["grade", str(path), *exercise_option]) == 2
    assert "its metadata (tinyinvo.exercise) says '03_depthwise'" in capsys.readouterr().err
