"""The autograder: tasks, score reports, the registry, the exercise generator and notebook grading.

Fast tests use a synthetic exercise ("99_synthetic", tasks written to a temporary package) and
notebooks written to tmp_path; the tests at the end run the course's real notebooks in solutions/.
"""

import csv
import json
import os
import re
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tinyinvo.__main__ import main
from tinyinvo.grading import (ERROR, FAILED, NOT_IMPLEMENTED, PASSED, CannotGrade, Report, TaskResult, check,
                              exercises, problems, run_tasks, tasks_for)
from tinyinvo.grading.compare import SECRET_VARIABLE, hidden_rng
from tinyinvo.grading.generate import check_exercises, exercise_text, strip_solutions, write_exercises
from tinyinvo.grading.gradebook import class_summary, grade_class, write_feedback, write_gradebook
from tinyinvo.grading.registry import written_for
from tinyinvo.grading import notebook as notebook_module
from tinyinvo.grading.notebook import CurrentPythonKernels, exercise_id, grade_notebook, lines_to_read
from tinyinvo.grading.report import WIDTH

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_TASKS = '''
from tinyinvo.grading import Task, describe_call, expect_array, hidden_rng

EXERCISE = "99_synthetic"


def check_power(function, name, power):
    x = hidden_rng(name).standard_normal((2, 3))
    expect_array(function(x), x ** power, call=describe_call(name, x=x))


TASKS = [Task("double", 3, ("double",), lambda double: check_power(lambda x: double(x) / 2, "double", 1)),
         Task("square", 2, ("square",), lambda square: check_power(square, "square", 2)),
         Task("cube", 1, ("cube",), lambda cube: check_power(cube, "cube", 3))]
WRITTEN = {"why": "why-cell"}
'''
SYNTHETIC_POINTS = {"double": 3, "square": 2, "cube": 1}

# the solution of the synthetic exercise; double reads scale.txt, found only if the kernel runs in
# the notebook's folder
SYNTHETIC_SOLUTION = [
    ("markdown", "# A synthetic exercise"),
    ("code", "scale = float(open('scale.txt').read())"),
    ("code", "def double(x):\n    ### BEGIN SOLUTION\n    return scale * x\n    ### END SOLUTION"),
    ("code", "def square(x):\n    ### BEGIN SOLUTION\n    y = x * x\n    ### END SOLUTION\n    return y"),
    ("code", "def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION"),
    ("markdown", "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),  # written: its cell id is why-cell
]


# ---- helpers ----
def write_notebook(path, cells, exercise="99_synthetic"):
    """Write a notebook made of (cell type, source) pairs; returns its path."""
    notebook = new_notebook(cells=[new_code_cell(source) if kind == "code" else new_markdown_cell(source)
                                   for kind, source in cells])
    for cell in notebook.cells:
        if cell.source.startswith("Why?"):
            cell.id = "why-cell"
    if exercise is not None:
        notebook.metadata["tinyinvo"] = {"exercise": exercise}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def write_package(folder, name, modules):
    """A package ``name`` in ``folder`` with the given {module name: source}."""
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    for module, source in modules.items():
        (folder / name / f"{module}.py").write_text(textwrap.dedent(source))
    return name


def break_function(notebook, name):
    """Edit the cell that defines ``name`` so that it returns zeros of the right shape and dtype."""
    cell = next(cell for cell in notebook.cells if cell.cell_type == "code" and f"def {name}(" in cell.source)
    cell.source += (f"\n\n_correct_{name} = {name}\n\n"
                    f"def {name}(*args, **kwargs):  # deliberately wrong\n"
                    f"    return 0 * _correct_{name}(*args, **kwargs)\n")


def points_by_task(report):
    return {result.name: result.points for result in report}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The synthetic exercise's task package, importable here and in the kernels grading starts."""
    folder = tmp_path_factory.mktemp("synthetic_tasks")
    package = write_package(folder, "synthetic_grading_tasks", {"synthetic": SYNTHETIC_TASKS})
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        patch.setenv("PYTHONPATH", str(folder), prepend=os.pathsep)  # a kernel inherits the environment
        yield package


@pytest.fixture
def synthetic_solution(tmp_path):
    (tmp_path / "scale.txt").write_text("2")
    return write_notebook(tmp_path / "99_synthetic.ipynb", SYNTHETIC_SOLUTION)


# ---- core: running tasks on a namespace ----
def test_run_tasks_gives_each_outcome_its_status_and_points(synthetic):
    def crashing_cube(x):
        raise RuntimeError("boom")

    namespace = {"double": lambda x: 2 * x, "square": lambda x: x + 1, "cube": crashing_cube}
    results = run_tasks(tasks_for("99_synthetic", synthetic), namespace)
    assert [(r.name, r.status, r.points, r.max_points) for r in results] == [
        ("double", PASSED, 3, 3), ("square", FAILED, 0, 2), ("cube", ERROR, 0, 1)]
    assert "square(x: (2, 3) float64): the result is wrong at index (0, 0): expected" in results[1].message
    # a crash names the case and the student's line
    line = crashing_cube.__code__.co_firstlineno + 1
    assert results[2].message == (f'cube(x: (2, 3) float64) crashed: RuntimeError: boom '
                                  f'(in crashing_cube, line {line}: `raise RuntimeError("boom")`)')


def test_a_missing_name_or_a_stub_is_not_implemented(synthetic):
    def stub(x):
        raise NotImplementedError("your code here")

    results = run_tasks(tasks_for("99_synthetic", synthetic), {"double": stub, "square": stub})
    assert [r.status for r in results] == [NOT_IMPLEMENTED] * 3
    assert "NotImplementedError" in results[0].message and "define cube" in results[2].message


def test_run_tasks_runs_only_the_named_task_and_rejects_unknown_names(synthetic):
    tasks = tasks_for("99_synthetic", synthetic)
    assert [r.name for r in run_tasks(tasks, {"square": np.square}, only="square")] == ["square"]
    with pytest.raises(ValueError, match="no task named 'sqaure'"):
        run_tasks(tasks, {}, only="sqaure")


# ---- report ----
def make_report():
    long_message = "conv(x: (2, 3, 7, 9) float64): the result is wrong at index (0, 1, 2, 3): " * 3
    results = [TaskResult("pad_input", 1, 1, PASSED),
               TaskResult("conv_forward_naive", 0, 3, FAILED, long_message)]
    return Report(results, "01_conv_forward", notebook="exercises/01_conv_forward.ipynb")


def test_the_score_table_has_a_row_per_task_wrapped_messages_and_the_total():
    lines = make_report().table().splitlines()
    assert lines[0] == "exercises/01_conv_forward.ipynb (exercise 01_conv_forward)"
    assert lines[1].split() == ["task", "points", "status", "message"]
    assert lines[3].split() == ["pad_input", "1/1", "passed"]
    assert lines[4].split()[:3] == ["conv_forward_naive", "0/3", "failed"]
    message_column = lines[4].index("conv(")
    continued = lines[5:lines.index(next(line for line in lines[5:] if line.startswith("---")))]
    assert continued and all(line[:message_column].isspace() for line in continued)
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[-1].split() == ["total", "1/4"]


@pytest.mark.parametrize("line, flagged", [
    ("from tinyinvo.grading import check", False), ('check("01_conv_forward", globals())', False),
    ("y = np.zeros_like(x)", False), ("ok = np.allclose(a, b) == True", False), ("# os.kill(1, 9)", False),
    ("from tinyinvo.grading.tasks import conv_forward", True), ("np.allclose = lambda *a: True", True),
    ("numpy.testing.assert_allclose = print", True), ("os.kill(os.getppid(), 9)", True),
    ("get_ipython().events.register('pre_run_cell', f)", True), ("sys.setprofile(None)", True),
])
def test_lines_that_reach_into_the_grading_are_pointed_out(line, flagged):
    notebook = new_notebook(cells=[new_markdown_cell("os.kill in prose"), new_code_cell(f"x = 1\n{line}")])
    assert lines_to_read(notebook) == ([f"cell 2, line 2: `{line}`"] if flagged else [])


def test_the_json_form_lists_tasks_and_totals():
    report = make_report()
    data = json.loads(json.dumps(report.as_dict()))
    assert data["notebook"] == "exercises/01_conv_forward.ipynb" and data["exercise"] == "01_conv_forward"
    assert (data["points"], data["max_points"]) == (1, 4)
    assert [(t["name"], t["points"], t["max_points"], t["status"]) for t in data["tasks"]] == [
        ("pad_input", 1, 1, PASSED), ("conv_forward_naive", 0, 3, FAILED)]
    assert data["tasks"][1]["message"].startswith("conv(x: (2, 3, 7, 9) float64)")
    assert repr(report) == "<01_conv_forward: 1/4 points>"


def test_check_prints_the_table_and_returns_the_results(synthetic, monkeypatch, capsys):
    monkeypatch.setattr("tinyinvo.grading.tasks_for", lambda exercise: tasks_for(exercise, synthetic))
    report = check("99_synthetic", {"double": lambda x: 2 * x}, "double")
    assert [(r.name, r.status) for r in report] == [("double", PASSED)]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "99_synthetic" and printed[-1].split() == ["total", "3/3"]


# ---- registry ----
def test_the_registry_finds_every_module(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = write_package(tmp_path, "pkg_found", {"synthetic": SYNTHETIC_TASKS})
    assert list(exercises(package)) == ["99_synthetic"] and problems(package) == []
    assert [task.name for task in tasks_for("99_synthetic", package)] == ["double", "square", "cube"]


def test_an_unknown_exercise_id_names_the_known_ones(synthetic):
    with pytest.raises(CannotGrade, match="unknown exercise '98_nope'; the exercises are: 99_synthetic"):
        tasks_for("98_nope", synthetic)


@pytest.mark.parametrize("second, error, graded", [
    (SYNTHETIC_TASKS, r"two task modules claim exercise '99_synthetic': pkg_bad\w*\.first and pkg_bad\w*\.second",
     []),
    ("EXERCISE = '98_other'", r"pkg_bad\w*\.second must define EXERCISE \(a string\) and TASKS", ["99_synthetic"]),
    (SYNTHETIC_TASKS.replace('"square", 2', '"double", 2').replace("99_synthetic", "98_other"),
     "two tasks have the same name", ["99_synthetic"]),
    ("import numpy\nraise RuntimeError('a typo in a check')",
     r"pkg_bad\w*\.second cannot be imported: RuntimeError: a typo in a check", ["99_synthetic"]),
], ids=["same exercise id", "no TASKS", "same task name", "broken module"])
def test_the_registry_leaves_out_and_reports_broken_modules(tmp_path, monkeypatch, second, error, graded):
    """A broken or ambiguous task module is reported; the other exercises are still graded."""
    monkeypatch.syspath_prepend(str(tmp_path))
    package = write_package(tmp_path, f"pkg_bad_{tmp_path.name}", {"first": SYNTHETIC_TASKS, "second": second})
    assert list(exercises(package)) == graded
    assert len(problems(package)) == 1 and re.search(error, problems(package)[0])
    if not graded:
        with pytest.raises(CannotGrade, match="left out: two task modules claim"):
            tasks_for("99_synthetic", package)


# ---- generating exercises from solutions ----
def test_a_solution_region_becomes_one_stub_line_at_its_indentation():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    y = 2 * x\n    ### END SOLUTION\n    return y\n"
    assert strip_solutions(source, "raise NotImplementedError()", "cell") == \
        "def f(x):\n    y = 1\n    raise NotImplementedError()\n    return y\n"
    assert strip_solutions("A\n### BEGIN SOLUTION\nB\n### END SOLUTION\nC", "*stub*", "cell") == "A\n*stub*\nC"


@pytest.mark.parametrize("source, error", [
    ("### BEGIN SOLUTION\nx = 1", "cell 3, line 1: ### BEGIN SOLUTION has no ### END SOLUTION"),
    ("x = 1\n### END SOLUTION", "cell 3, line 2: ### END SOLUTION without a ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
     "line 2: ### BEGIN SOLUTION inside the region of line 1"),
])
def test_unbalanced_markers_are_an_error_naming_the_cell_and_line(source, error):
    with pytest.raises(ValueError, match=error):
        strip_solutions(source, "stub", "solutions/x.ipynb, cell 3")


def test_an_exercise_keeps_the_cells_and_metadata_and_loses_solutions_and_outputs(synthetic_solution):
    solution = nbformat.read(synthetic_solution, as_version=4)
    solution.cells[2].outputs = [new_output("stream", name="stdout", text="hello\n")]
    solution.cells[2].execution_count = 7
    solution.cells[2].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    nbformat.write(solution, synthetic_solution)
    exercise = nbformat.reads(exercise_text(synthetic_solution), as_version=4)
    assert exercise.metadata["tinyinvo"] == {"exercise": "99_synthetic"}
    assert [cell.id for cell in exercise.cells] == [cell.id for cell in solution.cells]
    assert exercise.cells[2].source == 'def double(x):\n    raise NotImplementedError("your code here")'
    assert exercise.cells[3].source.endswith('raise NotImplementedError("your code here")\n    return y')
    assert exercise.cells[5].source == "Why?\n*Your answer here.*"
    code_cells = [cell for cell in exercise.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    assert all(cell.metadata == {} for cell in code_cells)
    assert "BEGIN SOLUTION" not in exercise_text(synthetic_solution)


def test_generating_twice_gives_the_same_bytes_and_rewrites_only_what_changed(tmp_path):
    solutions, exercises_dir = tmp_path / "solutions", tmp_path / "exercises"
    for name in ["01_a", "02_b", "03_c"]:
        write_notebook(solutions / f"{name}.ipynb", SYNTHETIC_SOLUTION)
    assert [state for state, _ in write_exercises(solutions, exercises_dir)] == ["missing"] * 3
    first = {path.name: path.read_bytes() for path in exercises_dir.iterdir()}
    assert check_exercises(solutions, exercises_dir) == [] and write_exercises(solutions, exercises_dir) == []

    solution = nbformat.read(solutions / "02_b.ipynb", as_version=4)
    solution.cells[0].source = "# A changed title"
    nbformat.write(solution, solutions / "02_b.ipynb")
    (exercises_dir / "01_a.ipynb").unlink()
    write_notebook(exercises_dir / "04_old.ipynb", SYNTHETIC_SOLUTION)
    assert check_exercises(solutions, exercises_dir) == [
        ("missing", exercises_dir / "01_a.ipynb"), ("stale", exercises_dir / "02_b.ipynb"),
        ("extra", exercises_dir / "04_old.ipynb")]
    assert len(write_exercises(solutions, exercises_dir)) == 3
    assert sorted(path.name for path in exercises_dir.iterdir()) == ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]
    assert (exercises_dir / "01_a.ipynb").read_bytes() == first["01_a.ipynb"]
    assert (exercises_dir / "02_b.ipynb").read_bytes() != first["02_b.ipynb"]


def test_the_exercises_command_checks_writes_and_refuses_nonsense(tmp_path, capsys):
    solutions, exercises_dir = tmp_path / "solutions", tmp_path / "exercises"
    write_notebook(solutions / "01_a.ipynb", SYNTHETIC_SOLUTION)
    folders = ["--solutions", str(solutions), "--exercises", str(exercises_dir)]
    assert main(["exercises", "--check", *folders]) == 1
    assert f"missing: {exercises_dir / '01_a.ipynb'}" in capsys.readouterr().out
    assert main(["exercises", *folders]) == 0 and main(["exercises", "--check", *folders]) == 0
    assert main(["exercises", "--solutions", str(tmp_path / "empty"), "--exercises", str(exercises_dir)]) == 2
    assert "no solution notebooks in" in capsys.readouterr().err
    assert main(["exercises", "--solutions", str(solutions), "--exercises", str(solutions)]) == 2
    assert "the solutions and exercises folders are the same" in capsys.readouterr().err


# ---- grading a whole notebook in a kernel ----
def test_the_kernel_is_this_python_whatever_kernel_a_notebook_names():
    assert CurrentPythonKernels().get_kernel_spec("python3").argv[0] == sys.executable
    assert CurrentPythonKernels().get_kernel_spec("some-other-kernel").argv[0] == sys.executable


def test_the_exercise_id_comes_from_the_metadata_or_the_file_name(tmp_path, synthetic):
    named = nbformat.read(write_notebook(tmp_path / "any.ipynb", [], exercise="99_synthetic"), as_version=4)
    assert exercise_id(named, tmp_path / "any.ipynb", synthetic) == "99_synthetic"
    bare = nbformat.read(write_notebook(tmp_path / "x.ipynb", [], exercise=None), as_version=4)
    assert exercise_id(bare, tmp_path / "99_synthetic.ipynb", synthetic) == "99_synthetic"
    with pytest.raises(CannotGrade, match=r"no metadata.tinyinvo.exercise and 'x' is not an exercise id"):
        exercise_id(bare, tmp_path / "x.ipynb", synthetic)
    assert exercise_id(bare, tmp_path / "x.ipynb", synthetic, chosen="99_synthetic") == "99_synthetic"


def test_the_grader_chooses_the_exercise_and_a_notebook_that_disagrees_is_an_error(tmp_path, synthetic):
    named = nbformat.read(write_notebook(tmp_path / "any.ipynb", [], exercise="99_synthetic"), as_version=4)
    with pytest.raises(CannotGrade, match="--exercise says '98_other', its metadata .* says '99_synthetic'"):
        exercise_id(named, tmp_path / "any.ipynb", synthetic, chosen="98_other")
    with pytest.raises(CannotGrade, match="unknown exercise '98_other'"):
        exercise_id(nbformat.read(write_notebook(tmp_path / "x.ipynb", [], exercise=None), as_version=4),
                    tmp_path / "x.ipynb", synthetic, chosen="98_other")


def test_grading_is_refused_with_a_message_when_it_is_impossible(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    assert f"error: no notebook at {tmp_path / 'missing.ipynb'}" in capsys.readouterr().err
    (tmp_path / "broken.ipynb").write_text("{ not json")
    with pytest.raises(CannotGrade, match="is not a readable notebook"):
        grade_notebook(tmp_path / "broken.ipynb")
    with pytest.raises(CannotGrade, match="unknown exercise '98_nope'"):
        grade_notebook(write_notebook(tmp_path / "nope.ipynb", [], exercise="98_nope"))


def test_a_solution_scores_full_marks_in_its_own_folder(synthetic, synthetic_solution):
    report = grade_notebook(synthetic_solution, package=synthetic)
    assert points_by_task(report) == SYNTHETIC_POINTS
    assert all(result.status == PASSED for result in report)
    assert report.exercise == "99_synthetic" and report.notebook == str(synthetic_solution)


def test_a_kernel_that_fails_to_start_is_tried_again(synthetic, synthetic_solution, monkeypatch):
    # e.g. two kernels started at once that picked the same free port: the notebook is still graded
    real_start, attempts = notebook_module.Kernel._start, []

    def start_failing_once(kernel):
        attempts.append(kernel)
        if len(attempts) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        real_start(kernel)

    monkeypatch.setattr(notebook_module.Kernel, "_start", start_failing_once)
    assert points_by_task(grade_notebook(synthetic_solution, package=synthetic)) == SYNTHETIC_POINTS
    assert len(attempts) == 2


def test_a_kernel_that_never_starts_is_a_clear_error(synthetic, synthetic_solution, monkeypatch):
    def never_start(kernel):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(notebook_module.Kernel, "_start", never_start)
    with pytest.raises(CannotGrade, match=r"could not start a Python kernel with .* \(3 attempts\): "
                                          r"Kernel died before replying"):
        grade_notebook(synthetic_solution, package=synthetic)


def test_one_broken_function_loses_exactly_its_task_points(synthetic, synthetic_solution):
    notebook = nbformat.read(synthetic_solution, as_version=4)
    break_function(notebook, "square")
    nbformat.write(notebook, synthetic_solution)
    report = grade_notebook(synthetic_solution, package=synthetic)
    assert points_by_task(report) == {**SYNTHETIC_POINTS, "square": 0}
    assert [result.status for result in report] == [PASSED, FAILED, PASSED]


def test_the_generated_exercise_scores_zero_all_not_implemented(synthetic, synthetic_solution, tmp_path):
    exercise = tmp_path / "exercises" / "99_synthetic.ipynb"
    exercise.parent.mkdir()
    exercise.write_text(exercise_text(synthetic_solution))
    report = grade_notebook(exercise, package=synthetic)
    assert [(result.points, result.status) for result in report] == [(0, NOT_IMPLEMENTED)] * 3


def test_crashing_and_endless_cells_and_checks_cost_only_their_own_points(synthetic, tmp_path):
    notebook = write_notebook(tmp_path / "student.ipynb", [
        ("code", "1 / 0"),
        ("code", "def double(x):\n    return 2 * x"),
        ("code", "while True:\n    pass"),
        ("code", "def square(x):\n    while True:\n        pass"),
        ("code", "def cube(x):\n    raise ValueError('oops')"),
    ])
    report = grade_notebook(notebook, timeout=2, package=synthetic)
    assert [(result.name, result.points, result.status) for result in report] == [
        ("double", 3, PASSED), ("square", 0, ERROR), ("cube", 0, ERROR)]
    assert report[1].message == "not graded: it ran longer than 2 s and was interrupted (an endless loop?)"
    assert report[2].message == ("cube(x: (2, 3) float64) crashed: ValueError: oops "
                                 "(in cube, line 2: `raise ValueError('oops')`)")


def test_each_task_runs_under_cpu_time_and_memory_limits(synthetic, tmp_path):
    """square ignores interrupts, so only the CPU limit (SIGXCPU) can stop it; cube asks for 64 GiB."""
    notebook = write_notebook(tmp_path / "student.ipynb", [
        ("code", "def double(x):\n    return 2 * x"),
        ("code", "import signal\n\ndef square(x):\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                 "    while True:\n        pass"),
        ("code", "def cube(x):\n    return bytearray(64 << 30)"),
    ])
    report = grade_notebook(notebook, timeout=2, package=synthetic)
    assert [(result.name, result.status) for result in report] == [
        ("double", PASSED), ("square", ERROR), ("cube", ERROR)]
    assert report[1].message.startswith("not graded: it ran longer than 2 s") or "CpuTimeExceeded" in report[1].message
    assert "crashed: MemoryError" in report[2].message  # the kernel answered again after square: the limit worked


@pytest.mark.parametrize("cell, reason", [
    ("import os\nos._exit(1)",
     "not graded: the kernel died while running the cell that starts with `import os`"),
    ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
     "not graded: the cell that starts with `import signal` did not finish within 1 s "
     "and the kernel did not answer an interrupt"),
], ids=["kernel dies", "kernel ignores interrupts"])
def test_a_dead_or_stuck_kernel_still_gives_a_report(synthetic, tmp_path, cell, reason):
    notebook = write_notebook(tmp_path / "student.ipynb", [("code", "def double(x):\n    return 2 * x"),
                                                           ("code", cell)])
    report = grade_notebook(notebook, timeout=1, package=synthetic)
    assert [(result.points, result.status, result.message) for result in report] == [(0, ERROR, reason)] * 3


# ---- hidden cases from a secret ----
def test_hidden_cases_derive_from_the_secret_which_the_kernel_never_sees(synthetic, synthetic_solution, monkeypatch):
    fixed = hidden_rng("double").standard_normal(3)
    monkeypatch.setenv(SECRET_VARIABLE, "the instructor's secret")
    secret = hidden_rng("double").standard_normal(3)
    assert not np.allclose(fixed, secret) and np.array_equal(secret, hidden_rng("double").standard_normal(3))
    notebook = nbformat.read(synthetic_solution, as_version=4)
    notebook.cells.append(new_code_cell(f"import os\nopen('seen.txt', 'w').write(repr(os.environ.get({SECRET_VARIABLE!r})))"))
    nbformat.write(notebook, synthetic_solution)
    assert points_by_task(grade_notebook(synthetic_solution, package=synthetic)) == SYNTHETIC_POINTS
    assert (synthetic_solution.parent / "seen.txt").read_text() == "None"


# ---- a class ----
def test_a_class_gets_a_gradebook_feedback_per_student_and_its_written_answers(synthetic, tmp_path):
    alice = write_notebook(tmp_path / "alice" / "99_synthetic.ipynb", [(kind, source.replace("Because.", "Since 2 > 1."))
                                                                       for kind, source in SYNTHETIC_SOLUTION])
    (alice.parent / "scale.txt").write_text("2")
    bob = write_notebook(tmp_path / "bob.ipynb", [("code", "def square(x):\n    return x + 1")])
    carol = tmp_path / "carol.ipynb"
    carol.write_text("not a notebook")
    graded = grade_class([alice, bob, carol], workers=2, package=synthetic)
    assert [student for student, _ in graded] == ["alice", "bob", "carol"]
    assert points_by_task(graded[0][1]) == SYNTHETIC_POINTS and "Since 2 > 1." in graded[0][1].written["why"]
    assert points_by_task(graded[1][1]) == dict.fromkeys(SYNTHETIC_POINTS, 0)
    assert "is not a readable notebook" in graded[2][1]

    write_gradebook(graded, tmp_path / "gradebook.csv")
    rows = list(csv.DictReader(open(tmp_path / "gradebook.csv")))
    assert [(row["student"], row["task"], row["points"], row["status"]) for row in rows] == [
        ("alice", "double", "3", PASSED), ("alice", "square", "2", PASSED), ("alice", "cube", "1", PASSED),
        ("alice", "why", "", "awaiting manual points"),
        ("bob", "double", "0", NOT_IMPLEMENTED), ("bob", "square", "0", FAILED), ("bob", "cube", "0", NOT_IMPLEMENTED),
        ("bob", "why", "", "awaiting manual points"),
        ("carol", "", "0", f"not graded: {graded[2][1]}")]

    write_feedback(graded, tmp_path / "feedback")
    assert sorted(path.name for path in (tmp_path / "feedback").iterdir()) == ["alice.txt", "bob.txt", "carol.txt"]
    alice_feedback = (tmp_path / "feedback" / "alice.txt").read_text()
    assert "total      6/6" in alice_feedback and "Since 2 > 1." in alice_feedback
    assert "square(x: (2, 3) float64): the result is wrong" in (tmp_path / "feedback" / "bob.txt").read_text()


def test_the_class_summary_counts_students_by_mistake():
    padding = "That is the output size when the padding was left out: Ho = (H + 2*padding - K) // stride + 1"
    def student(status, hint=""):
        return Report([TaskResult("conv", 3 if status == PASSED else 0, 3, status, "message", hint)], "01_x")
    graded = [("a", student(FAILED, padding)), ("b", student(FAILED, padding.replace("Ho", "Wo"))),
              ("c", student(PASSED)), ("d", student(NOT_IMPLEMENTED)), ("e", "not a notebook")]
    graded[2][1].to_read = ["cell 3, line 1: `np.allclose = lambda *args: True`"]
    assert class_summary(graded).splitlines() == [
        "Class summary: 5 notebooks, 1 not graded (e)",
        "Notebooks to read (they reach into the grading or the process): c (1 line)",
        "01_x / conv: 1 of 4 passed (25%)",
        "     50%  (2 of 4)  That is the output size when the padding was left out",
        "     25%  (1 of 4)  not implemented"]


# ---- the course's notebooks ----
SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))


def notebook_exercise(path):
    return nbformat.read(path, as_version=4).metadata["tinyinvo"]["exercise"]


@pytest.mark.solutions
def test_the_course_has_a_solution_for_each_exercise_and_no_broken_task_module():
    assert problems() == []
    assert SOLUTIONS and [path.stem for path in SOLUTIONS] == list(exercises()), "one solution per task module"
    assert [notebook_exercise(path) for path in SOLUTIONS] == list(exercises())


@pytest.mark.solutions
def test_exercises_are_up_to_date_with_solutions():
    assert check_exercises(REPO / "solutions", REPO / "exercises") == [], \
        "exercises/ is out of date: run python -m tinyinvo exercises"


@pytest.mark.solutions
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_each_solution_scores_full_marks(solution):
    report = grade_notebook(solution)
    assert report.exercise == notebook_exercise(solution)
    assert [(r.name, r.status, r.message) for r in report if r.status != PASSED] == []
    assert sum(result.points for result in report) == sum(task.points for task in tasks_for(report.exercise))
    assert list(report.written) == list(written_for(report.exercise))  # e.g. 07's argument, for the instructor
    assert all(text.strip() and not text.startswith("(no answer") for text in report.written.values())
    assert report.to_read == []  # nothing in an honest notebook reaches into the grading


@pytest.mark.solutions
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_each_untouched_exercise_scores_zero_all_not_implemented(solution, tmp_path, capsys):
    exercise = tmp_path / solution.name
    exercise.write_text(exercise_text(solution))
    assert main(["grade", str(exercise), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["points"] == 0
    assert data["max_points"] == sum(task.points for task in tasks_for(data["exercise"])) > 0
    assert [(task["name"], task["status"]) for task in data["tasks"] if task["status"] != NOT_IMPLEMENTED] == []


@pytest.mark.solutions
@pytest.mark.parametrize("solution", [path for path in SOLUTIONS if path.stem == "01_conv_forward"],
                         ids=lambda path: path.stem)
def test_a_solution_with_one_wrong_function_loses_exactly_that_tasks_points(solution, tmp_path):
    notebook = nbformat.read(solution, as_version=4)
    break_function(notebook, "conv_forward_naive")
    broken = tmp_path / solution.name
    nbformat.write(notebook, broken)
    report = grade_notebook(broken)
    expected = {task.name: task.points for task in tasks_for("01_conv_forward")}
    assert points_by_task(report) == {**expected, "conv_forward_naive": 0}
    assert next(r for r in report if r.name == "conv_forward_naive").status == FAILED
