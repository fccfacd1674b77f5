"""The skips that let the course's tests run on any copy of it: without the instructor's solutions/
(a student release) and without CIFAR-10. At the repository root, so that they apply to every test and
every notebook, whichever of them pytest is asked to run (tests/conftest.py holds the fixtures)."""

import json
from pathlib import Path

import pytest

from tinyinvo.data import cifar10

ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "solutions: needs the instructor's solutions/ folder, which a "
                                       "student release (python -m tinyinvo release) leaves out")


def pytest_collection_modifyitems(config, items):
    """Skip, with the reason, what this copy of the course cannot run.

    - Tests marked ``solutions`` when solutions/ is absent (a student release).
    - Every cell of a notebook whose metadata declares data that is not on this machine:
      ``{"tinyinvo": {"needs": ["cifar10"]}}`` and ``cifar10.find_cifar10()`` finds no copy.
    """
    no_solutions = None if (ROOT / "solutions").is_dir() else pytest.mark.skip(
        reason="needs the instructor's solutions/, which is not part of a student release")
    notebook_skips = {}
    for item in items:
        if no_solutions and item.get_closest_marker("solutions"):
            item.add_marker(no_solutions)
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            if path not in notebook_skips:
                reason = missing_data(notebook_needs(path))
                notebook_skips[path] = reason and pytest.mark.skip(reason=f"{path.name} {reason}")
            if notebook_skips[path]:
                item.add_marker(notebook_skips[path])


def notebook_needs(path):
    """The data sets a notebook declares in its metadata, e.g. ["cifar10"]."""
    metadata = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    return metadata.get("tinyinvo", {}).get("needs", [])


def missing_data(needs):
    """Why the data sets in ``needs`` cannot be used here (and how to get them), or None."""
    unknown = sorted(set(needs) - {"cifar10"})
    if unknown:
        raise ValueError(f"unknown data sets in a notebook's tinyinvo.needs: {unknown}; known: ['cifar10']")
    if "cifar10" in needs and cifar10.find_cifar10() is None:
        return f"needs CIFAR-10. {cifar10.HOW_TO_GET}"
    return None
