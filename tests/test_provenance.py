"""provenance(): the versions and commit recorded with every run."""

import numba
import numpy

import tinyinvo
from tinyinvo.provenance import git_commit, provenance


def test_provenance_names_the_versions_in_use():
    record = provenance()
    assert record["tinyinvo"] == tinyinvo.__version__
    assert record["numpy"] == numpy.__version__
    assert record["numba"] == numba.__version__


def test_commit_is_a_short_hash_or_none():
    commit = git_commit()
    if commit is not None:  # None in an installed copy, which is not a git checkout
        assert len(commit.split("+")[0]) == 12
        int(commit.split("+")[0], 16)
