"""Graded exercises: checks that live in the library, not in cells a student can edit.

In an exercise notebook, after writing a function:

    from tinyinvo.grading import check
    check("01_conv_forward", globals(), "conv_forward_naive")   # one task
    check("01_conv_forward", globals())                         # every task of the exercise

From a shell, a whole notebook, executed in a fresh kernel: ``python -m tinyinvo grade NOTEBOOK``.

- core.py: Task, TaskResult, run_tasks (a task never crashes the grader)
- compare.py: the comparisons that write the messages (which case, which index, expected vs got)
- student.py: where the student's code runs (StudentFunction), watched for calls into tinyinvo
- wire.py: arguments and results as data only (.npz, no pickle) between the grader and a kernel
- tasks/: one module per exercise (EXERCISE, TASKS); registry.py finds them
- report.py: the score table and its JSON form
- notebook.py: grade_notebook, which executes a notebook in a kernel that only computes, and checks here
- gradebook.py: a class: the gradebook (CSV), feedback per student, the class summary
- generate.py: writes exercises/ from solutions/
"""

from tinyinvo.grading.compare import (GradingFailure, StudentCrash, describe_call, expect_array, expect_equal,
                                      expect_unchanged, hidden_rng)
from tinyinvo.grading.core import ERROR, FAILED, NOT_IMPLEMENTED, PASSED, Task, TaskResult, run_task, run_tasks
from tinyinvo.grading.registry import TASKS_PACKAGE, CannotGrade, exercises, problems, tasks_for
from tinyinvo.grading.report import Report, score_table, total

__all__ = ["check", "grade_notebook", "exercises", "problems", "tasks_for", "TASKS_PACKAGE", "CannotGrade",
           "Task", "TaskResult", "run_task", "run_tasks", "PASSED", "FAILED", "NOT_IMPLEMENTED", "ERROR",
           "Report", "score_table", "total", "GradingFailure", "StudentCrash", "hidden_rng", "describe_call",
           "expect_array", "expect_equal", "expect_unchanged"]


def check(exercise, namespace, task=None):
    """Grade the functions a notebook defined: print the score table and return the Report.

    - exercise: its id, e.g. "01_conv_forward"
    - namespace: the notebook's names, i.e. globals()
    - task: the name of one task to run (default: all of them)
    The Report is the list of TaskResult (name, points, max_points, status, message).
    """
    report = Report(run_tasks(tasks_for(exercise), namespace, only=task), exercise)
    print(report.table())
    return report


def __getattr__(name):
    # grade_notebook needs nbformat and nbclient (pip install -e ".[course]"), which take seconds to
    # import; check() does not, so they are imported only when grade_notebook is asked for.
    if name == "grade_notebook":
        from tinyinvo.grading.notebook import grade_notebook
        return grade_notebook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
