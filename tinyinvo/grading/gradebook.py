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
import re
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from tinyinvo.grading.core import NOT_IMPLEMENTED, PASSED
from tinyinvo.grading.registry import CannotGrade, exercises
from tinyinvo.grading.report import Report

AWAITING = "awaiting manual points"
COLUMNS = ["student", "exercise", "task", "points", "max_points", "status", "notebook"]


def student_name(path):
    """'alice' for alice.ipynb, and for alice/01_conv_forward.ipynb (a file named after an exercise)."""
    path = Path(path)
    return path.parent.name if path.stem in exercises() and path.parent.name else path.stem


def grade_one(path, exercise, timeout):
    """(student, Report or the reason it could not be graded): what one worker returns."""
    from tinyinvo.grading.notebook import grade_notebook  # nbclient takes seconds to import

    try:
        return student_name(path), grade_notebook(path, timeout=timeout, exercise=exercise)
    except CannotGrade as error:
        return student_name(path), str(error)


def grade_class(paths, exercise=None, timeout=None, workers=1):
    """[(student, Report or reason)] for the notebooks at ``paths``, in order, ``workers`` at a time."""
    arguments = [(path, exercise, timeout) for path in paths]
    if workers <= 1:
        return [grade_one(*args) for args in arguments]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:  # no forked kernels' state
        return list(pool.map(grade_one, *zip(*arguments)))


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
    lines = [f"Class summary: {len(graded)} notebooks"
             + (f", {len(not_graded)} not graded ({', '.join(not_graded)})" if not_graded else "")]
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
