"""The student release (python -m tinyinvo release): what it holds and leaves out, that it passes its
own tests, what it refuses; and the answer keys, which only the instructor tree has."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tinyinvo.__main__ import main
from tinyinvo.grading.generate import write_exercises
from tinyinvo.release import INSTRUCTOR_ONLY, ReleaseError, build_release, student_readme

ROOT = Path(__file__).resolve().parents[1]


# ---- the release of this course ----

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "course"
    return out, build_release(ROOT, out)


@pytest.mark.solutions
def test_the_release_has_the_course_and_no_answers(release):
    out, files = release
    assert not (out / "solutions").exists()
    assert not [name for name in files if "answer" in name.lower() or "solution" in Path(name).parts[0]]
    for folder in ("notebooks", "exercises"):
        assert sorted(p.name for p in (out / folder).glob("*.ipynb")) == \
            sorted(p.name for p in (ROOT / folder).glob("*.ipynb"))
    for notebook in (out / "notebooks").glob("*.ipynb"):   # the lectures come with their outputs
        assert any(cell.get("outputs") for cell in json.loads(notebook.read_text())["cells"])
    for notebook in [*(out / "notebooks").glob("*.ipynb"), *(out / "exercises").glob("*.ipynb")]:
        assert "### BEGIN SOLUTION" not in notebook.read_text(), notebook.name
    readme = (out / "README.md").read_text()
    assert "python -m tinyinvo exercises --check" in (ROOT / "README.md").read_text()
    assert "python -m tinyinvo exercises --check" not in readme and INSTRUCTOR_ONLY[0] not in readme
    assert (out / "tinyinvo" / "ops" / "__init__.py").is_file() and (out / "pyproject.toml").is_file()
    assert not [name for name in files if "__pycache__" in name or name.endswith((".pyc", ".nbi", ".nbc"))]


@pytest.mark.solutions
def test_the_release_passes_its_own_tests_with_the_solution_tests_skipped(release):
    out, _ = release
    env = {**os.environ, "PYTHONPATH": str(out), "NUMBA_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                             "tests/test_notebook_markers.py", "tests/test_grading.py", "-k",
                             "markers or course_has or up_to_date or each_solution or untouched or one_wrong"],
                            cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "needs the instructor's solutions/" in result.stdout
    assert " passed" in result.stdout and "failed" not in result.stdout


# ---- the release command, on a tiny instructor tree ----

def tiny_tree(root):
    """An instructor tree with one solution, its exercise, one lecture and a README."""
    (root / "tinyinvo").mkdir(parents=True)
    (root / "tinyinvo" / "__init__.py").write_text("")
    (root / "tinyinvo" / "__pycache__").mkdir()
    (root / "tinyinvo" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "README.md").write_text(f"# x\nfor all\n{INSTRUCTOR_ONLY[0]}\nsecret\n{INSTRUCTOR_ONLY[1]}\nend\n")
    (root / "solutions").mkdir()
    solution = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")])
    nbformat.write(solution, root / "solutions" / "01_a.ipynb")
    (root / "solutions" / "answer_keys.md").write_text("the answers")
    write_exercises(root / "solutions", root / "exercises")
    (root / "notebooks").mkdir()
    write_lecture(root, "print(1)")
    (root / "runs").mkdir()
    (root / "runs" / "private.txt").write_text("not released")
    return root


def test_release_copies_the_allowlist_only_and_strips_the_instructor_readme(tmp_path, capsys):
    source = tiny_tree(tmp_path / "instructor")
    assert main(["release", str(tmp_path / "out"), "--source", str(source)]) == 0
    assert "no solutions/" in capsys.readouterr().out
    released = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert released == ["README.md", "exercises/01_a.ipynb", "notebooks/01_lecture.ipynb", "pyproject.toml",
                        "tinyinvo/__init__.py"]
    assert (tmp_path / "out" / "README.md").read_text() == "# x\nfor all\nend\n"


def write_lecture(root, source):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]),
                   root / "notebooks" / "01_lecture.ipynb")


SPOILERS = {  # name: (how the instructor tree is spoilt, what the error says)
    "stale exercises": (lambda root: (root / "exercises" / "01_a.ipynb").unlink(),
                        "exercises/ is out of date with solutions/ (missing 01_a.ipynb)"),
    "answer in a lecture": (lambda root: write_lecture(root, "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
                            "notebooks/01_lecture.ipynb"),
    "unclosed readme section": (lambda root: (root / "README.md").write_text(f"{INSTRUCTOR_ONLY[0]}\nsecret\n"),
                                "an instructor-only section has no"),
    "no solutions": (lambda root: shutil.rmtree(root / "solutions"), "is not the instructor tree (it has no solutions)"),
}


@pytest.mark.parametrize("spoil, message", SPOILERS.values(), ids=SPOILERS)
def test_release_refuses_to_give_answers_away(tmp_path, capsys, spoil, message):
    source = tiny_tree(tmp_path / "instructor")
    spoil(source)
    assert main(["release", str(tmp_path / "out"), "--source", str(source)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_release_refuses_a_full_or_inner_output_folder(tmp_path):
    source = tiny_tree(tmp_path / "instructor")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ReleaseError, match="not an empty folder"):
        build_release(source, tmp_path / "full")
    with pytest.raises(ReleaseError, match="inside the instructor tree"):
        build_release(source, source / "release")


def test_a_failed_copy_keeps_nothing(tmp_path, monkeypatch):
    source = tiny_tree(tmp_path / "instructor")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)
    with pytest.raises(ReleaseError, match="No space left on device"):
        build_release(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_student_readme_rejects_unbalanced_markers():
    with pytest.raises(ReleaseError, match="without a"):
        student_readme(f"a\n{INSTRUCTOR_ONLY[1]}\n")


# ---- the answer keys ----

@pytest.mark.solutions
def test_every_lecture_with_questions_has_an_answer_key():
    keys = (ROOT / "solutions" / "answer_keys.md").read_text()
    asking = [path for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
              if any(word in path.read_text() for word in ("Think about it", "Think:", "Questions", "Look and think"))]
    assert len(asking) >= 5
    for path in asking:
        assert f"## Lecture {int(path.name[:2])}:" in keys, f"no answer key for {path.name}"
