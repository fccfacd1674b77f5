"""The ``release`` command: build the student release of the course from the instructor's tree.

    python -m tinyinvo release ../tinyinvo-student          # from the instructor tree's root

The instructor tree holds everything, ``solutions/`` (the answers and the answer keys) included; it
stays private. The release is what students get: the library, the lectures with their outputs,
``exercises/``, the tests, the result files the lectures read, and a README without its
instructor-only parts. It is built from an allowlist, so a file that is not listed in ``RELEASED``
never reaches students, whatever else lies in the tree.

Before anything is written the command checks that ``exercises/`` is up to date with
``solutions/``; after, it checks that no released notebook contains a solution region.
"""

import json
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

# What students get, relative to the instructor tree's root. Everything else stays behind:
# solutions/ (solution notebooks, answer keys), .ci/, runs, caches, virtual environments.
RELEASED = ("README.md", "pyproject.toml", ".gitignore", "conftest.py", "tinyinvo", "notebooks", "exercises",
            "tests", "results", "docs", "benchmarks")
# Never copied, wherever they are: caches and editor leftovers.
SKIPPED = ("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".ipynb_checkpoints", "*.egg-info", ".pytest_cache",
           "benchmarks/results")
# A README section between these two lines is for instructors only; the release leaves it out.
INSTRUCTOR_ONLY = ("<!-- instructor only -->", "<!-- end instructor only -->")


class ReleaseError(Exception):
    """The release cannot be built; the message says why and what to do."""


def add_arguments(parser):
    parser.add_argument("out", help="the folder to write the student release to (must not exist, or be empty)")
    parser.add_argument("--source", default=".",
                        help="the instructor tree, with solutions/ (default: the current folder)")


def run(args):
    try:
        written = build_release(args.source, args.out)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the student release to {args.out}: {len(written)} files, no solutions/ and no "
          f"answer keys. Students install it with: pip install -e \"{args.out}[course]\"")
    return 0


def build_release(source, out):
    """Copy the released parts of the instructor tree ``source`` into the new folder ``out``.

    Returns the released files' paths relative to ``out``, sorted. Raises ReleaseError when the
    source is not an instructor tree, ``out`` is not empty, ``exercises/`` is stale, or a released
    notebook holds a solution region.
    """
    source, out = Path(source).resolve(), Path(out).resolve()
    check_source(source)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} already exists and is not an empty folder; choose a new one")
    if out == source or source in out.parents:
        raise ReleaseError(f"{out} is inside the instructor tree {source}; write the release elsewhere")
    files = released_files(source)
    try:
        for relative in files:
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if relative == Path("README.md"):
                text = student_readme((source / relative).read_text(encoding="utf-8"))
                target.write_text(text, encoding="utf-8")
            else:
                shutil.copy2(source / relative, target)
        leaks = [str(relative) for relative in files if holds_solution(out / relative)]
    except ReleaseError:  # a README with unbalanced instructor-only markers
        shutil.rmtree(out, ignore_errors=True)
        raise
    except OSError as error:  # a full disk, an unreadable file
        shutil.rmtree(out, ignore_errors=True)
        raise ReleaseError(f"writing the release failed ({error}); nothing was kept") from error
    if leaks:
        shutil.rmtree(out)
        raise ReleaseError(f"these notebooks hold a solution region and would give answers away: "
                           f"{', '.join(leaks)}. Move the answers to solutions/; nothing was written.")
    return [relative.as_posix() for relative in files]


def check_source(source):
    """Refuse anything but an instructor tree whose exercises/ matches its solutions/."""
    from tinyinvo.grading.generate import check_exercises  # imports nbformat: only when releasing

    missing = [name for name in ("pyproject.toml", "tinyinvo", "solutions", "exercises") if not (source / name).exists()]
    if missing:
        raise ReleaseError(f"{source} is not the instructor tree (it has no {', '.join(missing)}); run the "
                           f"command from the tree's root or pass --source")
    stale = check_exercises(source / "solutions", source / "exercises")
    if stale:
        listed = ", ".join(f"{state} {path.name}" for state, path in stale)
        raise ReleaseError(f"exercises/ is out of date with solutions/ ({listed}); run "
                           f"python -m tinyinvo exercises first")


def released_files(source):
    """The files of RELEASED under source, minus SKIPPED, as sorted paths relative to source."""
    files = []
    for name in RELEASED:
        top = source / name
        candidates = [top] if top.is_file() else sorted(path for path in top.rglob("*") if path.is_file())
        files += [path.relative_to(source) for path in candidates if not skipped(path.relative_to(source))]
    return sorted(files)


def skipped(relative):
    """True for a path (relative to the tree) that lies in or is a SKIPPED name or folder."""
    parts = relative.parts
    return any(fnmatch(part, pattern) for part in parts for pattern in SKIPPED) or \
        any("/".join(parts[:length]) == pattern for pattern in SKIPPED for length in range(1, len(parts) + 1))


def student_readme(text):
    """The README without the sections between the INSTRUCTOR_ONLY marker lines."""
    begin, end = INSTRUCTOR_ONLY
    kept, inside = [], False
    for number, line in enumerate(text.split("\n"), start=1):
        marker = line.strip()
        if marker == begin:
            if inside:
                raise ReleaseError(f"README.md, line {number}: {begin} inside another instructor-only section")
            inside = True
        elif marker == end:
            if not inside:
                raise ReleaseError(f"README.md, line {number}: {end} without a {begin} before it")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ReleaseError(f"README.md: an instructor-only section has no {end}")
    return "\n".join(kept)


def holds_solution(path):
    """True for a notebook with a cell line that is a solution marker (the markers generate.py reads)."""
    from tinyinvo.grading.generate import BEGIN, END

    if path.suffix != ".ipynb":
        return False
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return any(line.strip() in (BEGIN, END)
               for cell in cells for line in "".join(cell.get("source", "")).split("\n"))
