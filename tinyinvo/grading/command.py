"""The ``grade`` and ``exercises`` commands of ``python -m tinyinvo``.

    python -m tinyinvo grade exercises/01_conv_forward.ipynb          # score table and total
    python -m tinyinvo grade exercises/01_conv_forward.ipynb --json   # the same report as JSON
    python -m tinyinvo exercises            # rewrite exercises/ from solutions/ (instructors)
    python -m tinyinvo exercises --check    # exit 1, listing them, if exercise notebooks are out of date

nbformat and nbclient take seconds to import, so the modules that need them are imported inside
``run_grade`` and ``run_exercises``: the other commands of ``python -m tinyinvo`` do not wait for them.
"""

import json
import sys

from tinyinvo.grading.registry import CannotGrade


# ---- grade ----
def add_grade_arguments(parser):
    parser.add_argument("notebook", help="the notebook (.ipynb) to execute and grade")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds each cell may run before it is interrupted (default: 120)")


def run_grade(args):
    """Exit code 0 whatever the score; 2 when the notebook cannot be graded at all."""
    from tinyinvo.grading.notebook import CELL_TIMEOUT, grade_notebook

    print(f"running {args.notebook} in a fresh kernel, then grading it ...", file=sys.stderr)
    try:
        report = grade_notebook(args.notebook, timeout=args.timeout or CELL_TIMEOUT)
    except CannotGrade as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
    return 0


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
