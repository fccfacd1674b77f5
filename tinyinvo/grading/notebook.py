"""Grade a whole notebook: execute it in a fresh kernel, then run every task in that same kernel.

The notebook's cells run top to bottom with nbclient, in the notebook's folder; a cell that raises
does not stop the others, and a cell that runs too long is interrupted. Then one grading cell per
task is appended. Each calls ``tinyinvo.grading.print_task_result``, which runs the task on the
notebook's globals and prints its result as one JSON line after a marker that only this grading run
knows. A task whose cell printed no such line (it timed out, or the kernel died) scores 0, with a
message saying why. One cell per task: a task stuck in an endless loop costs only its own points.
"""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from tinyinvo.grading.core import ERROR, TaskResult
from tinyinvo.grading.registry import TASKS_PACKAGE, CannotGrade, exercises, tasks_for
from tinyinvo.grading.report import Report

CELL_TIMEOUT = 120  # seconds a cell may run; a student's loops over small cases need far less
PROBE_TIMEOUT = 10  # seconds the kernel has to answer again after a cell was interrupted
TIMED_OUT = "CellTimedOut"

GRADING_CELL = """\
# grading task {task!r}
from tinyinvo.grading import print_task_result as _tinyinvo_print_task_result
_tinyinvo_print_task_result({exercise!r}, {task!r}, globals(), {marker!r}, {package!r})"""


class CurrentPythonKernels(KernelSpecManager):
    """Kernel specs that always start this Python (sys.executable), whatever kernel the notebook names.

    An installed "python3" kernel may belong to another Python, without tinyinvo (nbval's
    --nbval-current-env exists for the same reason).
    """

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def grade_notebook(path, *, timeout=CELL_TIMEOUT, package=TASKS_PACKAGE):
    """Execute the notebook at ``path`` in a fresh kernel, grade it in that kernel, return its Report.

    - timeout: seconds each cell may run before it is interrupted
    - package: the task modules to grade with (an instructor may keep hidden tasks elsewhere)
    Tasks that could not run score 0 with a message. Raises CannotGrade only when grading is
    impossible: no such file, not a notebook, no exercise id, no kernel.
    """
    path = Path(path)
    notebook = read_notebook(path)
    exercise = exercise_id(notebook, path, package)
    tasks = tasks_for(exercise, package)
    marker = f"tinyinvo-grading-{uuid.uuid4().hex}:"
    first_grading_cell = len(notebook.cells)
    notebook.cells += [nbformat.v4.new_code_cell(GRADING_CELL.format(
        exercise=exercise, task=task.name, marker=marker, package=package)) for task in tasks]
    unfinished = execute(notebook, path.parent, timeout)
    results = [read_result(notebook.cells[index], marker, task, unfinished.get(index))
               for index, task in enumerate(tasks, start=first_grading_cell)]
    return Report(results, exercise, notebook=str(path))


def read_notebook(path):
    if not path.is_file():
        raise CannotGrade(f"no notebook at {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # bad JSON, not a notebook, unreadable: the message says which
        raise CannotGrade(f"{path} is not a readable notebook: {error}") from error


def exercise_id(notebook, path, package=TASKS_PACKAGE):
    """The notebook's exercise id: metadata.tinyinvo.exercise, else its file name if that is an id."""
    exercise = notebook.metadata.get("tinyinvo", {}).get("exercise")
    if exercise is not None:
        return exercise
    known = exercises(package)
    if path.stem in known:
        return path.stem
    raise CannotGrade(f"{path} does not say which exercise it is: it has no metadata.tinyinvo.exercise "
                      f"and {path.stem!r} is not an exercise id ({', '.join(known)})")


def execute(notebook, folder, timeout):
    """Run the code cells in order in a fresh kernel started in ``folder``.

    Returns {cell index: why that cell did not finish} for the cells that timed out or never ran.
    """
    timed_out = []  # the cells nbclient interrupted: it gives them the stand-in reply below

    def note_timeout(cell, cell_index, execute_reply):
        if execute_reply and execute_reply["content"].get("ename") == TIMED_OUT:
            timed_out.append(cell)

    def finishes(cell, index, seconds):
        """Run one cell; False if it ran longer than ``seconds`` and was interrupted."""
        client.timeout = seconds
        client.execute_cell(cell, index)
        return not (timed_out and timed_out[-1] is cell)

    def answers_after_interrupt():
        """True if the kernel runs an empty cell within a few seconds (so the interrupt worked)."""
        notebook.cells.append(nbformat.v4.new_code_cell("pass"))
        try:
            return finishes(notebook.cells[-1], len(notebook.cells) - 1, min(timeout, PROBE_TIMEOUT))
        finally:
            notebook.cells.pop()

    client = NotebookClient(notebook, km=AsyncKernelManager(kernel_spec_manager=CurrentPythonKernels()),
                            allow_errors=True, interrupt_on_timeout=True, on_cell_executed=note_timeout,
                            error_on_timeout={"ename": TIMED_OUT, "evalue": "", "traceback": []},
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(folder)}})
    unfinished = {}
    started = False
    try:
        with client.setup_kernel(cleanup_kc=True, stderr=subprocess.DEVNULL):  # no kernel log lines
            started = True
            for index, cell in enumerate(list(notebook.cells)):
                try:
                    if finishes(cell, index, timeout):
                        continue
                    unfinished[index] = f"it ran longer than {timeout} s and was interrupted (an endless loop?)"
                    if answers_after_interrupt():
                        continue
                    stopped = (f"{describe_cell(cell)} did not finish within {timeout} s "
                               f"and the kernel did not answer an interrupt")
                except DeadKernelError:
                    stopped = f"the kernel died while running {describe_cell(cell)}"
                # nothing more can run: this cell and every later one get the same reason
                unfinished.update(dict.fromkeys(range(index, len(notebook.cells)), stopped))
                break
    except Exception as error:
        if started:
            raise
        raise CannotGrade(f"could not start a Python kernel with {sys.executable}: {error}") from error
    return unfinished


def describe_cell(cell):
    """'the cell that starts with `for i in range(10):`': how a student finds a cell again."""
    first_line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return f"the cell that starts with `{first_line[:50]}`"


def read_result(cell, marker, task, unfinished=None):
    """The TaskResult a grading cell printed after ``marker``; 0 points and the reason if there is none."""
    stdout = "".join(output.text for output in cell.get("outputs", [])
                     if output.output_type == "stream" and output.name == "stdout")
    for line in stdout.splitlines():
        if line.startswith(marker):
            return TaskResult(**json.loads(line[len(marker):]))
    errors = [f"{output.ename}: {output.evalue}" for output in cell.get("outputs", [])
              if output.output_type == "error"]
    reason = unfinished or (f"the check stopped with {errors[0]}" if errors else "the check printed no result")
    return TaskResult(task.name, 0, task.points, ERROR, f"not graded: {reason}")
