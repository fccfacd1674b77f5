"""The Numba batch-norm kernels against the NumPy reference, and their determinism."""

import numba
import numpy as np
import pytest

from tinyinvo.ops.numba_backend import batchnorm as numba_batchnorm
from tinyinvo.ops.numpy_backend import batchnorm as numpy_batchnorm

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}


def make_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (3 + 2 * rng.standard_normal(shape)).astype(dtype)   # mean 3, std 2: the centring matters
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = (1 + rng.standard_normal(C)).astype(dtype), rng.standard_normal(C).astype(dtype)
    return x, dy, gamma, beta


def run(module, x, dy, gamma, beta, eps=1e-5):
    """[y, mean, var, dx, dgamma, dbeta] from one implementation."""
    y, mean, var = module.batchnorm_forward(x, gamma, beta, eps)
    return [y, mean, var, *module.batchnorm_backward(dy, x, mean, var, gamma, eps)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 3, 2, 3), (2, 5, 7, 6), (16, 4, 8, 8)])
def test_numba_matches_numpy(shape, dtype):
    # The reference runs in float64: with few values per channel, dx is a difference of nearly
    # equal terms, and the float32 reference's own rounding error would exceed the tolerance.
    inputs = make_inputs(shape, dtype)
    tolerance = TOLERANCE[dtype]
    names = ["y", "mean", "var", "dx", "dgamma", "dbeta"]
    expected = run(numpy_batchnorm, *(array.astype(np.float64) for array in inputs))
    for name, a, b in zip(names, run(numba_batchnorm, *inputs), expected):
        assert a.dtype == dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(b).max(), err_msg=name)


def test_reference_normalises_each_channel():
    x, _, gamma, beta = make_inputs((4, 3, 5, 5), np.float64)
    y, mean, var = numpy_batchnorm.batchnorm_forward(x, np.ones(3), np.zeros(3), 1e-12)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-9)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)


def test_numba_kernels_are_bitwise_reproducible_for_any_thread_count():
    inputs = make_inputs((8, 6, 9, 7), np.float32, seed=1)
    threads = numba.get_num_threads()
    try:
        first, again = run(numba_batchnorm, *inputs), run(numba_batchnorm, *inputs)
        numba.set_num_threads(1)
        one_thread = run(numba_batchnorm, *inputs)
    finally:
        numba.set_num_threads(threads)
    for a, b, c in zip(first, again, one_thread):
        assert np.array_equal(a, b) and np.array_equal(a, c)
