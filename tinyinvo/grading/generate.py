"""Write exercises/ from solutions/, the single source: solution regions become stubs, outputs go.

In a cell, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (markers included) become
one line at the BEGIN marker's indentation: ``raise NotImplementedError(...)`` in a code cell,
``*Your answer here.*`` in a markdown cell. Every output and execution count is cleared. The same
solutions always give the same bytes, and a file is only rewritten when its bytes change.
"""

from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUBS = {"code": 'raise NotImplementedError("your code here")', "markdown": "*Your answer here.*"}


def strip_solutions(source, stub, where):
    """``source`` with each solution region replaced by ``stub``; ``where`` names the cell in errors."""
    kept, begin_line = [], None
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begin_line is not None:
                raise ValueError(f"{where}, line {number}: {BEGIN} inside the region of line {begin_line}")
            begin_line = number
            kept.append(line[:len(line) - len(line.lstrip())] + stub)
        elif marker == END:
            if begin_line is None:
                raise ValueError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            begin_line = None
        elif begin_line is None:
            kept.append(line)
    if begin_line is not None:
        raise ValueError(f"{where}, line {begin_line}: {BEGIN} has no {END}")
    return "\n".join(kept)


def exercise_text(solution_path):
    """The exact text of the exercise notebook generated from the solution notebook at this path."""
    exercise = nbformat.read(solution_path, as_version=4)
    for number, cell in enumerate(exercise.cells, start=1):
        if cell.cell_type in STUBS:
            cell.source = strip_solutions(cell.source, STUBS[cell.cell_type], f"{solution_path}, cell {number}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)  # when nbclient ran the solution: not the student's business
    text = nbformat.writes(exercise)
    return text if text.endswith("\n") else text + "\n"  # what nbformat.write puts in a file


def expected_exercises(solutions, exercises):
    """{exercise path: its text}, one for each notebook in the solutions folder."""
    solution_paths = sorted(Path(solutions).glob("*.ipynb"))
    if not solution_paths:
        raise ValueError(f"no solution notebooks in {solutions}")
    return {Path(exercises) / path.name: exercise_text(path) for path in solution_paths}


def out_of_date(expected, exercises):
    """[(state, path)] for each exercise notebook that is "missing", "stale" or "extra" (no solution)."""
    present = set(Path(exercises).glob("*.ipynb"))
    problems = [("missing" if path not in present else "stale", path) for path, text in expected.items()
                if path not in present or path.read_bytes() != text.encode("utf-8")]
    return problems + [("extra", path) for path in sorted(present - expected.keys())]


def check_exercises(solutions="solutions", exercises="exercises"):
    """What ``write_exercises`` would change, as [(state, path)]; empty when exercises/ is up to date."""
    return out_of_date(expected_exercises(solutions, exercises), exercises)


def write_exercises(solutions="solutions", exercises="exercises"):
    """Bring the exercises folder up to date with the solutions folder; return what changed.

    Writes the missing and stale notebooks and deletes the extra ones (the folder is generated).
    """
    if Path(solutions).resolve() == Path(exercises).resolve():
        raise ValueError(f"the solutions and exercises folders are the same: {solutions}")
    expected = expected_exercises(solutions, exercises)
    Path(exercises).mkdir(parents=True, exist_ok=True)
    changes = out_of_date(expected, exercises)
    for state, path in changes:
        if state == "extra":
            path.unlink()
        else:
            path.write_bytes(expected[path].encode("utf-8"))
    return changes
