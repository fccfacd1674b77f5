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
