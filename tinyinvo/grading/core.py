"""What a graded task is, and how one is run against the names a notebook defined.

A ``Task`` names the functions (or values) it needs from the student's notebook and a ``check``
that calls them on hidden cases and compares with the reference implementation. The check gets each
function as a ``StudentFunction`` (student.py), through which the student's code runs, here or in the
student's kernel. Running a task never raises: every outcome becomes a ``TaskResult`` with a status
and a message for the student.
"""

from dataclasses import dataclass
from typing import Callable

from tinyinvo.grading.compare import GradingFailure, StudentCrash
from tinyinvo.grading.student import wrap_namespace

PASSED = "passed"
FAILED = "failed"  # a wrong answer: the message says which case, which index, expected vs got
NOT_IMPLEMENTED = "not implemented"  # the name is missing or still raises NotImplementedError
ERROR = "error"  # the student's code crashed with another exception


@dataclass(frozen=True)
class Task:
    """One graded task: ``check(*values)`` raises GradingFailure on a wrong answer, returns on a right one.

    - name: the task's name in the score table (usually the function the student writes)
    - points: what a pass is worth
    - needs: the names the notebook must define; their values are passed to ``check`` in this order
    - check: the checking function, written in ``tinyinvo/grading/tasks/``
    """

    name: str
    points: int
    needs: tuple
    check: Callable


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task: points scored out of max_points, a status and a message."""

    name: str
    points: int
    max_points: int
    status: str
    message: str = ""
    hint: str = ""  # the likely mistake, when the check recognised one (counted by the class summary)


class NotGraded(Exception):
    """The task could not be run to its end (the kernel timed out or died): its message says why."""


def run_task(task, namespace):
    """Run ``task`` against ``namespace`` ({name: StudentFunction or value}) and return its TaskResult."""
    def result(status, message="", hint=""):
        return TaskResult(task.name, task.points if status == PASSED else 0, task.points, status, message, hint)

    missing = [name for name in task.needs if name not in namespace]
    if missing:
        return result(NOT_IMPLEMENTED, f"define {', '.join(missing)} in the notebook and run its cell")
    try:
        task.check(*(namespace[name] for name in task.needs))
    except NotImplementedError:
        return result(NOT_IMPLEMENTED, "still raises NotImplementedError: replace the stub with your code")
    except GradingFailure as failure:
        return result(FAILED, str(failure), failure.hint)
    except StudentCrash as crash:  # the student's code crashed: the message names the case and line
        return result(ERROR, str(crash), crash.hint or "crashed")
    except NotGraded as reason:
        return result(ERROR, f"not graded: {reason}", "not graded")
    except Exception as crash:  # a value the check could not use: say how, do not crash the grader
        return result(ERROR, f"{type(crash).__name__}: {crash}", "crashed")
    return result(PASSED)


def chosen_tasks(tasks, only=None):
    """The tasks to run: all, or only the one named ``only`` (ValueError naming them if there is none)."""
    chosen = [task for task in tasks if only is None or task.name == only]
    if not chosen:
        raise ValueError(f"no task named {only!r}; the tasks are {[task.name for task in tasks]}")
    return chosen


def run_tasks(tasks, namespace, only=None, watch=True):
    """Run every task (or only the one named ``only``) on a notebook's globals(); return the TaskResults.

    The student's functions run in this process. watch: whether calling tinyinvo's code from a
    graded function scores 0 (the tests turn it off to check answers built from the reference).
    """
    chosen = chosen_tasks(tasks, only)
    wrapped = wrap_namespace(namespace, {name for task in chosen for name in task.needs}, watch)
    return [run_task(task, wrapped) for task in chosen]
