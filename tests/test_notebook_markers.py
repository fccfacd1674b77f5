"""nbval reads a marker only when the comment line is the marker alone.

`# NBVAL_IGNORE_OUTPUT: because ...` is silently *not* a marker: the cell's output is then
compared, passes on the machine that stored it, and fails on any other. Explanations go on the
next line.
"""
import json
from pathlib import Path

import pytest
from nbval.plugin import comment_markers

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / folder).glob("*.ipynb"))


def nbval_comment_lines(path):
    """Yield (cell index, line) for every comment line in a code cell that mentions NBVAL."""
    cells = json.loads(path.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            stripped = line.strip()
            if stripped.startswith("#") and "NBVAL" in stripped:
                yield index, stripped


def test_the_course_has_notebooks():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nbval_markers_are_exact(path):
    wrong = [(index, line) for index, line in nbval_comment_lines(path)
             if line.lstrip("#").strip() not in comment_markers]
    assert not wrong, f"{path.name}: not nbval markers (put the reason on the next line): {wrong}"
