"""Grade a class: many notebooks, one gradebook (CSV), one feedback file per student, a class summary.

    python -m tinyinvo grade submissions/*.ipynb --exercise 01_conv_forward \\
        --csv gradebook.csv --feedback-dir feedback --workers 2

A student is named by the notebook's file name (``alice.ipynb``), or by its folder when the file is
named after the exercise (``alice/01_conv_forward.ipynb``). The gradebook has one row per student and
task; a written answer (exercise 07's argument) gets a row "awaiting manual points" and its text goes
into the student's feedback for the instructor to read. The summary counts, per exercise and task,
how many students passed and how many made each mistake the checks recognise (their hint), which is
what to re-teach.
"""

import csv
import ctypes
import json
import os
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager, suppress
from multiprocessing import get_context, resource_tracker
from multiprocessing.connection import wait
from pathlib import Path

from tinyinvo.grading.core import NOT_IMPLEMENTED, PASSED
from tinyinvo.grading.registry import TASKS_PACKAGE, CannotGrade, exercises
from tinyinvo.grading.report import Report

AWAITING = "awaiting manual points"
CELL_TIMEOUT = 120  # as notebook.CELL_TIMEOUT, which this module does not import (nbclient is slow to import)
MAX_MESSAGE = 1 << 24  # bytes: a report is far smaller
PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
COLUMNS = ["student", "exercise", "task", "points", "max_points", "status", "notebook"]


def student_name(path, package=TASKS_PACKAGE):
    """'alice' for alice.ipynb, and for alice/01_conv_forward.ipynb (a file named after an exercise)."""
    path = Path(path)
    return path.parent.name if path.stem in exercises(package) and path.parent.name else path.stem


def grade_in_child(connection, path, exercise, timeout, package):
    """In a child process: grade one notebook; send the kernel's process group, then the report, as JSON."""
    from tinyinvo.grading.notebook import grade_notebook  # nbclient takes seconds to import

    def send(message):
        connection.send_bytes(json.dumps(message).encode())

    try:
        report = grade_notebook(path, timeout=timeout, exercise=exercise, package=package,
                                on_kernel=lambda group: send({"group": group}))
        send({"report": report.as_dict()})
    except (CannotGrade, ValueError) as error:
        send({"error": str(error)})
    except Exception as error:  # the grader's own bug: report it for this notebook, grade the others
        send({"error": f"the grader failed: {type(error).__name__}: {error}"})


def grade_class(paths, exercise=None, timeout=CELL_TIMEOUT, workers=1, package=TASKS_PACKAGE):
    """[(student, Report or why it was not graded)] for the notebooks at ``paths``, in order.

    Each notebook is graded in a child process of its own (``workers`` at a time), which starts the
    notebook's kernel: a notebook that kills its grader's process, or hangs it, costs only its own
    grade. The child sends back only JSON (never a pickle), and the kernel's process group is
    killed here when the child ends, however it ended.
    """
    context = get_context("spawn")  # a fresh interpreter: nothing inherited from this one but the environment
    pending, running, outcomes, started = list(enumerate(paths)), {}, {}, {}
    while pending or running:
        while pending and len(running) < workers:
            index, path = pending.pop(0)
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=grade_in_child, args=(sender, str(path), exercise, timeout, package),
                                      daemon=True)
            process.start()
            started[index] = time.monotonic()
            sender.close()
            deadline = time.monotonic() + time_limit(path, timeout)
            running[process.sentinel] = (index, process, receiver, [], deadline)
        nearest = min(entry[4] for entry in running.values())
        ready = wait([*running, *(entry[2] for entry in running.values())], max(0, nearest - time.monotonic()))
        for sentinel, (index, process, receiver, messages, deadline) in list(running.items()):
            if receiver in ready or sentinel in ready:
                read_messages(receiver, messages)  # as they come: a child never blocks on a full pipe
            overdue = time.monotonic() > deadline
            if sentinel in ready or overdue:
                del running[sentinel]
                process.kill()  # (already ended, or overdue: stopped or stuck outside any cell's timeout)
                process.join()
                read_messages(receiver, messages)
                outcomes[index] = outcome_of(process, messages) if not overdue else \
                    kill_kernels(messages, f"grading did not finish within {deadline - started[index]:.0f} s")
    return [(student_name(path, package), outcomes[index]) for index, path in enumerate(paths)]


def read_messages(receiver, messages):
    """Append the JSON messages waiting in ``receiver`` to ``messages``."""
    try:
        while receiver.poll():
            messages.append(json.loads(receiver.recv_bytes(MAX_MESSAGE)))
    except (EOFError, OSError, ValueError):  # the child is gone, or sent something that is not JSON
        pass


def time_limit(path, timeout):
    """Seconds one notebook's grading may take in all: its cells, at most 20 tasks, starting a kernel."""
    try:
        cells = sum(cell.get("cell_type") == "code" for cell in json.loads(Path(path).read_text())["cells"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        cells = 0  # the child will say what is wrong with it
    return timeout * (cells + 20) + 60


def kill_kernels(messages, outcome):
    """Kill the kernel process groups a child announced; return ``outcome``."""
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("group"), int):
            kill_group(message["group"])
    return outcome


def outcome_of(process, messages):
    """Kill the finished child's kernel process group; return the Report it sent, or why there is none."""
    kill_kernels(messages, None)
    for message in messages:
        if isinstance(message, dict) and "report" in message:
            try:
                return Report.from_dict(message["report"])
            except (KeyError, TypeError, ValueError) as error:
                return f"the grading process sent an unreadable report ({error})"
        if isinstance(message, dict) and "error" in message:
            return str(message["error"])
    return f"the grading process ended without a report (exit code {process.exitcode}): did the notebook kill it?"


@contextmanager
def no_process_left():
    """On Linux, adopt the orphaned descendants (PR_SET_CHILD_SUBREAPER) of what runs inside, and kill
    the ones left at the end: a process a notebook started in a new session escapes its kernel's
    process group, not this. Children this process had before, and multiprocessing's resource
    tracker, are left alone."""
    prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None
    adopted = prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    ours = set(child_processes())
    try:
        yield
    finally:
        ours.add(getattr(resource_tracker._resource_tracker, "_pid", None))
        while adopted and (left := [pid for pid in child_processes() if pid not in ours]):
            for pid in left:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in left:
                with suppress(ChildProcessError):
                    os.waitpid(pid, 0)
        if adopted:
            prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def child_processes():
    """The ids of this process's children (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.append(int(stat.parent.name))
    return children


def kill_group(group):
    """Kill every process of process group ``group`` (a kernel's), unless it is gone or is our own."""
    if group is not None and group > 1 and group != os.getpgid(0):
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def rows(graded):
    """The gradebook's rows: one per student and task (and written answer), or one saying why not graded."""
    for student, report in graded:
        if not isinstance(report, Report):
            yield dict(student=student, exercise="", task="", points=0, max_points="",
                       status=f"not graded: {report}", notebook="")
            continue
        for result in report:
            yield dict(student=student, exercise=report.exercise, task=result.name, points=result.points,
                       max_points=result.max_points, status=result.status, notebook=report.notebook)
        for title in report.written:
            yield dict(student=student, exercise=report.exercise, task=title, points="", max_points="",
                       status=AWAITING, notebook=report.notebook)


def write_gradebook(graded, path):
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(rows(graded))


def feedback_text(student, reports):
    """Every task's message of one student, each exercise as its score table, then their written answers."""
    parts = [f"Feedback for {student}"]
    for report in reports:
        if not isinstance(report, Report):
            parts.append(f"not graded: {report}")
            continue
        parts.append(report.table())
        parts += [f"{title} ({AWAITING}; the instructor reads it):\n{text}" for title, text in report.written.items()]
    return "\n\n".join(parts) + "\n"


def write_feedback(graded, folder):
    """One file per student, ``folder/<student>.txt``, with all their reports."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    by_student = defaultdict(list)
    for student, report in graded:
        by_student[student].append(report)
    for student, reports in by_student.items():
        (folder / f"{student}.txt").write_text(feedback_text(student, reports))


def hint_label(hint):
    """A hint's gist, the same for every student: its first clause, with numbers and indices blanked."""
    gist = re.split(r"[:;]|\. ", hint, maxsplit=1)[0]
    return re.sub(r"\d+", "#", gist).strip()


def class_summary(graded):
    """Per exercise and task: how many students passed, and how many hit each hint (the likely mistake)."""
    results = defaultdict(list)  # (exercise, task) -> [TaskResult], one per student
    not_graded = [student for student, report in graded if not isinstance(report, Report)]
    for _, report in graded:
        if isinstance(report, Report):
            for result in report:
                results[report.exercise, result.name].append(result)
    to_read = [f"{student} ({len(report.to_read)} line{'s' * (len(report.to_read) != 1)})" for student, report in graded
               if isinstance(report, Report) and report.to_read]
    lines = [f"Class summary: {len(graded)} notebooks"
             + (f", {len(not_graded)} not graded ({', '.join(not_graded)})" if not_graded else "")]
    lines += [f"Notebooks to read (they reach into the grading or the process): {', '.join(to_read)}"] if to_read else []
    for (exercise, task), task_results in sorted(results.items()):
        count = len(task_results)
        passed = sum(result.status == PASSED for result in task_results)
        lines.append(f"{exercise} / {task}: {passed} of {count} passed ({passed / count:.0%})")
        mistakes = Counter(hint_label(result.hint) if result.hint else
                           "not implemented" if result.status == NOT_IMPLEMENTED else "wrong, no hint"
                           for result in task_results if result.status != PASSED)
        lines += [f"    {number / count:4.0%}  ({number} of {count})  {label}"
                  for label, number in mistakes.most_common()]
    return "\n".join(lines) + "\n"
