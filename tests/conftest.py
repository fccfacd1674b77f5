"""Shared test fixtures: the backend under test and seeded random arrays."""

import numpy as np
import pytest


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
