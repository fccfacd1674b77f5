"""Running the course's tests anywhere: find_cifar10() never downloads, and conftest skips, with a
reason that says how to get the data, the notebooks that need CIFAR-10 when no copy is found."""

import importlib.util
from pathlib import Path

import pytest

from tinyinvo.data import cifar10

ROOT = Path(__file__).resolve().parents[1]
# the repository root's conftest.py, under a name of its own (tests/conftest.py is "conftest" too)
_spec = importlib.util.spec_from_file_location("course_skips", ROOT / "conftest.py")
course_skips = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course_skips)


# ---- finding CIFAR-10 without downloading it ----

@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No $TINYINVO_CIFAR10, an empty cache, and a repository root with no ../shared next to it."""
    monkeypatch.delenv(cifar10.CIFAR10_VARIABLE, raising=False)
    monkeypatch.setenv("TINYINVO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar10, "REPOSITORY_ROOT", tmp_path / "repo")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text("")
    monkeypatch.setattr(cifar10, "download", pytest.fail)   # finding never downloads
    return tmp_path


def test_find_cifar10_looks_in_the_variable_then_the_cache_then_shared(nowhere, monkeypatch):
    assert cifar10.find_cifar10() is None
    shared = nowhere / "shared" / "data" / "cifar10-jpg.tar.gz"
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"")
    assert cifar10.find_cifar10() == shared
    (nowhere / "cache").mkdir()
    (nowhere / "cache" / cifar10.ARCHIVE_NAME).write_bytes(b"")
    assert cifar10.find_cifar10() == nowhere / "cache" / cifar10.ARCHIVE_NAME
    monkeypatch.setenv(cifar10.CIFAR10_VARIABLE, str(nowhere / "repo"))
    assert cifar10.find_cifar10() == nowhere / "repo"


def test_find_cifar10_refuses_a_variable_naming_nothing(nowhere, monkeypatch):
    monkeypatch.setenv(cifar10.CIFAR10_VARIABLE, str(nowhere / "missing"))
    with pytest.raises(FileNotFoundError, match="TINYINVO_CIFAR10 is .*missing.*does not exist"):
        cifar10.find_cifar10()


def test_an_installed_copy_does_not_look_for_shared(nowhere):
    (nowhere / "repo" / "pyproject.toml").unlink()          # site-packages has no pyproject.toml
    (nowhere / "shared" / "data").mkdir(parents=True)
    (nowhere / "shared" / "data" / "cifar10-jpg.tar.gz").write_bytes(b"")
    assert cifar10.find_cifar10() is None


class FakeItem:
    """What conftest's collection hook reads of a test item."""

    def __init__(self, path, marker=None):
        self.fspath, self.marker, self.added = path, marker, []

    def get_closest_marker(self, name):
        return self.marker if name == self.marker else None

    def add_marker(self, marker):
        self.added.append(marker)


def test_notebooks_that_need_cifar10_are_skipped_with_a_reason_when_it_is_missing(monkeypatch):
    lecture = ROOT / "notebooks" / "06_training.ipynb"
    assert course_skips.notebook_needs(lecture) == ["cifar10"]
    assert course_skips.notebook_needs(ROOT / "notebooks" / "01_convolution.ipynb") == []
    items = [FakeItem(lecture), FakeItem(lecture), FakeItem(ROOT / "notebooks" / "01_convolution.ipynb")]
    monkeypatch.setattr(cifar10, "find_cifar10", lambda: None)
    course_skips.pytest_collection_modifyitems(None, items)
    reasons = [[marker.kwargs["reason"] for marker in item.added] for item in items]
    assert reasons[0] == reasons[1] and len(reasons[0]) == 1 and reasons[2] == []
    assert "06_training.ipynb needs CIFAR-10" in reasons[0][0] and "TINYINVO_CIFAR10" in reasons[0][0]
    monkeypatch.setattr(cifar10, "find_cifar10", lambda: lecture)      # found: nothing is skipped
    items = [FakeItem(lecture)]
    course_skips.pytest_collection_modifyitems(None, items)
    assert items[0].added == []


def test_a_notebook_needing_an_unknown_data_set_is_an_error():
    with pytest.raises(ValueError, match="unknown data sets .*imagenet"):
        course_skips.missing_data(["imagenet"])
