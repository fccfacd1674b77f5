"""Shared test fixtures (the backend under test, seeded random arrays), and the skips that let the
suite run anywhere: without the instructor's solutions/ (a student release) and without CIFAR-10."""

import json
from pathlib import Path

import numpy as np
import pytest

from tinyinvo.data import cifar10

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """The name of each backend in turn; every test that takes it runs once per backend."""
    return request.param


@pytest.fixture
def randn():
    """randn(*shape, dtype=np.float64): standard normal arrays from a generator seeded afresh for each test.

    The seed is not gradcheck's (0): with the same seed, gradcheck's random dy would equal x.
    """
    rng = np.random.default_rng(2021)

    def make(*shape, dtype=np.float64):
        return rng.standard_normal(shape).astype(dtype)

    return make


@pytest.fixture(scope="module")
def study_on_numpy():
    """The study tests' tiny models train fast on the numpy backend; workers get the caller's backend."""
    import tinyinvo.backend

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tinyinvo.backend, "_current", "numpy")
        yield


@pytest.fixture(scope="module")
def serial(study_on_numpy, tmp_path_factory):
    """The tiny study run in this process, one run after the other: the reference."""
    from study_helpers import compare

    rows = compare(tmp_path_factory.mktemp("serial"))
    assert len(rows) == 4 and len({row["run_id"] for row in rows}) == 4
    return rows
