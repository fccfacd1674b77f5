"""Grade a whole notebook: execute it in a fresh kernel, then check each task from this process.

The notebook's cells run top to bottom with nbclient, in the notebook's folder; a cell that raises
does not stop the others, and a cell that runs too long is interrupted. The kernel is then only
asked to compute: each time a check calls one of the student's functions, the arguments are written
to a file as data (wire.py), one short cell in the kernel runs the function on them
(``student.serve``) and writes its outcome back as data, and the check compares it here. The kernel
never sees the checks, the expected answers or the secret seed, and its printed output is never
read. The kernel runs in its own process group with no stdin, stdout or stderr of ours; the whole
group is killed when grading ends, however it ends. Each task has ``timeout`` seconds of wall-clock
and of CPU time (a soft RLIMIT_CPU in the kernel) and the kernel a memory limit (RLIMIT_AS).
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from tinyinvo.grading.compare import SECRET_VARIABLE
from tinyinvo.grading.core import ERROR, NotGraded, TaskResult, run_task
from tinyinvo.grading.gradebook import kill_group
from tinyinvo.grading.registry import TASKS_PACKAGE, CannotGrade, exercises, tasks_for, written_for
from tinyinvo.grading.report import Report
from tinyinvo.grading.student import StudentFunction, where_defined
from tinyinvo.grading.wire import read_message, write_message

CELL_TIMEOUT = 120  # seconds a cell, or a task's calls together, may run; a student's loops need far less
PROBE_TIMEOUT = 10  # seconds the kernel has to answer again after a cell was interrupted (or hit its CPU limit)
MEMORY_LIMIT = 4 << 30  # bytes of address space the kernel may add while it is graded
KERNEL_START_ATTEMPTS = 3  # a kernel that fails to start is tried again, up to this many times in all
TIMED_OUT = "CellTimedOut"

# Lines an honest exercise has no reason to write: they reach into the grading, the process or numpy
TO_READ = re.compile(r"tinyinvo\.grading(?!\s+import\s+check\s*$)|_tinyinvo|setprofile|settrace|events\.register|"
                     r"\bos\.(kill|killpg|fork|setsid|write|_exit)\b|signal\.signal|sys\.modules|ctypes|/proc/|"
                     r"\b(np|numpy)(\.\w+)+\s*=(?!=)")

SERVE_CELL = """\
from tinyinvo.grading.student import serve as _tinyinvo_serve
_tinyinvo_serve(globals(), {request!r}, {response!r})"""


class CurrentPythonKernels(KernelSpecManager):
    """Kernel specs that always start this Python (sys.executable), whatever kernel the notebook names.

    An installed "python3" kernel may belong to another Python, without tinyinvo (nbval's
    --nbval-current-env exists for the same reason).
    """

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def grade_notebook(path, *, timeout=CELL_TIMEOUT, package=TASKS_PACKAGE, exercise=None, memory=MEMORY_LIMIT,
                   on_kernel=None):
    """Execute the notebook at ``path`` in a fresh kernel, check each task from here, return its Report.

    - timeout: seconds each cell may run, and each task's calls together (also CPU seconds)
    - package: the task modules to grade with (an instructor may keep hidden tasks elsewhere)
    - exercise: the exercise to grade it as; a notebook that names another one cannot be graded
    - memory: bytes of memory the kernel may add while its functions are called
    - on_kernel: called with the kernel's process group id once it runs (whoever started this
      process can then kill that group even if this process is killed)
    Tasks that could not run score 0 with a message. Raises CannotGrade only when grading is
    impossible: no such file, not a notebook, no or a contradictory exercise id, no kernel.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    path = Path(path)
    notebook = read_notebook(path)
    exercise = exercise_id(notebook, path, package, exercise)
    tasks = tasks_for(exercise, package)
    with Kernel(path.parent, timeout, memory) as kernel:
        if on_kernel is not None:
            on_kernel(kernel.group)
        kernel.run_notebook(notebook)
        results = []
        for task in tasks:
            kernel.start_task(len(tasks))
            try:
                namespace = kernel.namespace(task.needs)
            except NotGraded as reason:
                results.append(TaskResult(task.name, 0, task.points, ERROR, f"not graded: {reason}", "not graded"))
                continue
            results.append(run_task(task, namespace))
    return Report(results, exercise, notebook=str(path), written=written_answers(notebook, exercise, package),
                  to_read=lines_to_read(notebook))


def lines_to_read(notebook):
    """["cell 12, line 3: `os.kill(...)`"]: the code lines the instructor should read (TO_READ), because
    they reach into the grading, the process or numpy. Grading does not depend on them; they say who
    may have tried to cheat in a way the grader cannot see (README: what grading does not protect)."""
    return [f"cell {number}, line {line_number}: `{line.strip()[:80]}`"
            for number, cell in enumerate(notebook.cells, start=1) if cell.cell_type == "code"
            for line_number, line in enumerate(cell.source.splitlines(), start=1)
            if TO_READ.search(line) and not line.strip().startswith("#")]


def written_answers(notebook, exercise, package=TASKS_PACKAGE):
    """{title: the text of the student's cell} for the exercise's answers graded by hand."""
    cells = {cell.get("id"): cell.source for cell in notebook.cells}
    return {title: cells.get(cell_id, f"(no answer: the notebook has no cell {cell_id!r} any more)")
            for title, cell_id in written_for(exercise, package).items()}


def read_notebook(path):
    if not path.is_file():
        raise CannotGrade(f"no notebook at {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # bad JSON, not a notebook, unreadable: the message says which
        raise CannotGrade(f"{path} is not a readable notebook: {error}") from error


def exercise_id(notebook, path, package=TASKS_PACKAGE, chosen=None):
    """The exercise to grade the notebook as: ``chosen`` (``grade --exercise``), the notebook's
    metadata.tinyinvo.exercise, or its file name if that is an exercise id. When two of them name
    different exercises, it is an error: a notebook is never silently graded as another exercise."""
    known = exercises(package)
    claims = {"--exercise": chosen, "its metadata (tinyinvo.exercise)": notebook.metadata.get("tinyinvo", {}).get("exercise"),
              "its file name": path.stem if path.stem in known else None}
    named = {source: exercise for source, exercise in claims.items() if exercise is not None}
    if len(set(named.values())) > 1:
        raise CannotGrade(f"{path} is claimed by different exercises: "
                          f"{', '.join(f'{source} says {exercise!r}' for source, exercise in named.items())}")
    if not named:
        raise CannotGrade(f"{path} does not say which exercise it is: it has no metadata.tinyinvo.exercise "
                          f"and {path.stem!r} is not an exercise id ({', '.join(known)}); use --exercise")
    exercise = next(iter(named.values()))
    if exercise not in known:
        raise CannotGrade(f"unknown exercise {exercise!r}; the exercises are: {', '.join(known)}")
    return exercise


class Kernel:
    """A fresh kernel for one notebook: runs its cells, then answers calls, then its process group is killed.

    Once the kernel died or stopped answering, ``stopped`` says why, and every later call fails with it.
    """

    def __init__(self, folder, timeout, memory):
        self.folder, self.timeout, self.memory = folder, timeout, memory
        self.stopped = None
        self.deadline = None
        self.tasks = 1
        self.messages = Path(tempfile.mkdtemp(prefix="tinyinvo-grading-"))
        self.timed_out = []  # the cells nbclient interrupted: it gives them the stand-in reply below
        self.notebook = nbformat.v4.new_notebook()

    def __enter__(self):
        # A kernel can fail to start for a reason that is gone a moment later (two kernels started
        # at once can pick the same free port): try again before giving up on the notebook.
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                self._start()
                break
            except Exception as error:
                self.kill_group()
                if attempt == KERNEL_START_ATTEMPTS:
                    raise CannotGrade(f"could not start a Python kernel with {sys.executable} "
                                      f"({attempt} attempts): {error}") from error
        self.group = self.client.km.provisioner.pgid
        return self

    def _start(self):
        env = {key: value for key, value in os.environ.items() if key != SECRET_VARIABLE}
        self.client = NotebookClient(
            self.notebook, km=AsyncKernelManager(kernel_spec_manager=CurrentPythonKernels()),
            allow_errors=True, interrupt_on_timeout=True, on_cell_executed=self.note_timeout,
            error_on_timeout={"ename": TIMED_OUT, "evalue": "", "traceback": []},
            shutdown_kernel="immediate", resources={"metadata": {"path": str(self.folder)}})
        self.context = self.client.setup_kernel(cleanup_kc=True, env=env, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.context.__enter__()

    def __exit__(self, *exc_info):
        try:
            self.context.__exit__(*exc_info)
        finally:
            self.kill_group()
            for message in self.messages.iterdir():
                message.unlink()
            self.messages.rmdir()

    def kill_group(self):
        """Kill every process left in the kernel's process group (its children, double-forked or not)."""
        kill_group(getattr(self, "group", None))

    def note_timeout(self, cell, cell_index, execute_reply):
        if execute_reply and execute_reply["content"].get("ename") == TIMED_OUT:
            self.timed_out.append(cell)

    def run_cell(self, cell, seconds):
        """Run one cell; '' if it finished, else why it did not (and ``stopped`` if nothing more can run)."""
        if self.stopped:
            return self.stopped
        self.notebook.cells.append(cell)
        try:
            self.client.timeout = max(1, int(seconds + 0.999))
            self.client.execute_cell(cell, len(self.notebook.cells) - 1)
            if not (self.timed_out and self.timed_out[-1] is cell):
                return ""
            if self.answers_after_interrupt():
                return f"it ran longer than {self.timeout:g} s and was interrupted (an endless loop?)"
            self.stopped = (f"{describe_cell(cell)} did not finish within {self.timeout:g} s "
                            f"and the kernel did not answer an interrupt")
        except DeadKernelError:
            self.stopped = f"the kernel died while running {describe_cell(cell)}"
        finally:
            self.notebook.cells.remove(cell)
        return self.stopped

    def answers_after_interrupt(self):
        """True if the kernel runs an empty cell within a few seconds (so the interrupt worked)."""
        probe = nbformat.v4.new_code_cell("pass")
        self.notebook.cells.append(probe)
        try:
            self.client.timeout = PROBE_TIMEOUT
            self.client.execute_cell(probe, len(self.notebook.cells) - 1)
            return not (self.timed_out and self.timed_out[-1] is probe)
        finally:
            self.notebook.cells.remove(probe)

    def run_notebook(self, notebook):
        """Run the notebook's code cells in order (on copies: the notebook is not changed)."""
        for cell in notebook.cells:
            if cell.cell_type == "code":
                self.run_cell(nbformat.v4.new_code_cell(cell.source), self.timeout)

    def start_task(self, tasks):
        """Start the clock of a task: its calls together get ``timeout`` seconds."""
        self.deadline, self.tasks = time.monotonic() + self.timeout, tasks

    def request(self, message, limits=None):
        """Send ``message`` to the kernel, run one serving cell, return its answer (data only)."""
        if self.stopped:
            raise NotGraded(self.stopped)
        seconds = self.deadline - time.monotonic()
        if seconds <= 0:
            raise NotGraded(f"the task's calls took longer than {self.timeout:g} s in all")
        name = uuid.uuid4().hex
        request, response = self.messages / f"{name}-request.npz", self.messages / f"{name}-response.npz"
        if limits is not None:
            message = {**message, "limits": {"cpu_seconds": seconds, "cpu_total": self.timeout * (self.tasks + 1),
                                             "memory_bytes": self.memory}}
        write_message(request, message)
        try:
            problem = self.run_cell(nbformat.v4.new_code_cell(SERVE_CELL.format(request=str(request),
                                                                                response=str(response))), seconds)
            if problem:
                raise NotGraded(problem)
            try:
                return read_message(response)
            except Exception as error:  # no answer, or not one the grader can read as data
                raise NotGraded(f"the kernel gave no readable answer ({type(error).__name__}: {error})") from None
        finally:
            for path in (request, response):
                path.unlink(missing_ok=True)

    def namespace(self, names):
        """{name: RemoteFunction or value} for the names the notebook defined."""
        described = self.request({"describe": list(names)})
        if not isinstance(described, dict):
            raise NotGraded("the kernel did not describe the notebook's names")
        namespace = {}
        for name in names:
            kind = described.get(name)
            if kind == ("function",):
                namespace[name] = RemoteFunction(name, self)
            elif isinstance(kind, tuple) and len(kind) == 2 and kind[0] == "value":
                namespace[name] = kind[1]
        return namespace


class RemoteFunction(StudentFunction):
    """A function of the student's kernel: each call sends the arguments and reads the outcome back."""

    def __init__(self, name, kernel):
        super().__init__(name)
        self.kernel = kernel

    def run(self, args, kwargs):
        outcome = self.kernel.request({"call": self.name, "args": list(args), "kwargs": dict(kwargs),
                                       "references": {key: where_defined(function)
                                                      for key, function in self.references.items()}}, limits=True)
        if not (isinstance(outcome, dict) and isinstance(outcome.get("case"), str)
                and any(key in outcome for key in ("result", "not_implemented", "crash", "reference"))):
            raise NotGraded("the kernel's answer is not an outcome of a call")
        outcome.setdefault("after", {})
        return outcome

    def inspect(self, inspector):
        return self.kernel.request({"inspect": self.name, "inspector": where_defined(inspector)})


def describe_cell(cell):
    """'the cell that starts with `for i in range(10):`': how a student finds a cell again."""
    first_line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return f"the cell that starts with `{first_line[:50]}`"
