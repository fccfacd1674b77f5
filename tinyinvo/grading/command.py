"""The ``grade`` and ``exercises`` commands of ``python -m tinyinvo``.

    python -m tinyinvo grade exercises/01_conv_forward.ipynb          # score table and total
    python -m tinyinvo grade exercises/01_conv_forward.ipynb --json   # the same report as JSON
    python -m tinyinvo grade class/*.ipynb --exercise 01_conv_forward --seed SECRET \\
        --csv gradebook.csv --feedback-dir feedback --workers 2       # a class (gradebook.py)
    python -m tinyinvo exercises            # rewrite exercises/ from solutions/ (instructors)
    python -m tinyinvo exercises --check    # exit 1, listing them, if exercise notebooks are out of date

nbformat and nbclient take seconds to import, so the modules that need them are imported inside
``run_grade`` and ``run_exercises``: the other commands of ``python -m tinyinvo`` do not wait for them.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from tinyinvo.grading.compare import SECRET_VARIABLE
from tinyinvo.grading.gradebook import CELL_TIMEOUT


# ---- grade ----
def positive_seconds(text):
    """argparse type: a number of seconds > 0 (0 or less would never interrupt anything)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return seconds


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def add_grade_arguments(parser):
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK",
                        help="the notebook(s) (.ipynb) to execute and grade: one, or a whole class")
    parser.add_argument("--exercise", help="the exercise to grade them as (a notebook that names another "
                                           "exercise is an error); default: the notebook's metadata")
    parser.add_argument("--json", action="store_true", help="print the report(s) as one JSON object")
    parser.add_argument("--timeout", type=positive_seconds, default=CELL_TIMEOUT,
                        help="seconds each cell may run, and each task's calls together (default: 120)")
    parser.add_argument("--seed", help="the secret the hidden cases derive from (instructors; default: "
                                       f"${SECRET_VARIABLE}, else the fixed cases students check against)")
    parser.add_argument("--csv", help="write the gradebook: one row per student and task")
    parser.add_argument("--feedback-dir", help="write one feedback file per student there, and the class summary")
    parser.add_argument("--workers", type=positive_int, default=1, help="notebooks graded at once (default: 1)")


def run_grade(args):
    """Exit code 0 whatever the scores; 2 when no notebook could be graded at all."""
    from tinyinvo.grading.gradebook import (class_summary, grade_class, no_process_left, write_feedback,
                                            write_gradebook)
    from tinyinvo.grading.report import Report

    if args.seed is not None:
        os.environ[SECRET_VARIABLE] = args.seed  # read by hidden_rng here; never passed to a kernel
    print(f"running {len(args.notebooks)} notebook(s) in fresh kernels, then grading them ...", file=sys.stderr)
    with no_process_left():
        graded = grade_class(args.notebooks, args.exercise, args.timeout, args.workers)
    for _, report in graded:
        if not isinstance(report, Report):
            print(f"error: {report}", file=sys.stderr)
    if args.csv:
        write_gradebook(graded, args.csv)
    if args.feedback_dir:
        write_feedback(graded, args.feedback_dir)
        (Path(args.feedback_dir) / "class_summary.txt").write_text(class_summary(graded))
    reports = [report.as_dict() if isinstance(report, Report) else {"notebook": path, "error": report}
               for (_, report), path in zip(graded, args.notebooks)]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else {"reports": reports}, indent=2))
    else:
        print("\n\n".join(report.table() for _, report in graded if isinstance(report, Report)))
        if len(graded) > 1:
            print("\n" + class_summary(graded))
    return 0 if any(isinstance(report, Report) for _, report in graded) else 2


# ---- exercises ----
def add_exercises_arguments(parser):
    parser.add_argument("--check", action="store_true",
                        help="change nothing: list stale, missing and extra exercise notebooks, exit 1 if any")
    parser.add_argument("--solutions", default="solutions", help="the solution notebooks (default: solutions)")
    parser.add_argument("--exercises", default="exercises", help="the generated notebooks (default: exercises)")


def run_exercises(args):
    from tinyinvo.grading.generate import check_exercises, write_exercises

    try:
        changes = (check_exercises if args.check else write_exercises)(args.solutions, args.exercises)
    except (OSError, ValueError) as error:  # no solutions, unbalanced markers, unreadable notebook
        print(f"error: {error}", file=sys.stderr)
        return 2
    verbs = {"missing": "wrote", "stale": "rewrote", "extra": "removed"}
    for state, path in changes:
        print(f"{state}: {path}" if args.check else f"{verbs[state]} {path}")
    if args.check and changes:
        print(f"{args.exercises} is out of date: run python -m tinyinvo exercises", file=sys.stderr)
        return 1
    print(f"{args.exercises} is up to date with {args.solutions}")
    return 0
