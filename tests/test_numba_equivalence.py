"""The Numba backend against the NumPy reference, forward and backward, on a grid of geometries.

The grid covers stride 1 and 2, padding 0 up to K // 2, odd and even H and W, batch 1 and 2,
K = 1, 3, 7, involution with G = 1 and G = C / 16, float32 and float64. Tolerances: relative 1e-4
in float32 (plus an absolute 1e-4 of the output's largest entry, since a sum of many terms can be
near zero where its rounding error is not), 1e-10 in float64. Also: the results are bitwise the
same run to run and for any number of threads (a resumed training must equal an unbroken one).
"""

import numba
import numpy as np
import pytest

from tinyinvo.backend import set_num_threads
from tinyinvo.ops import (conv2d_backward, conv2d_forward, depthwise_conv2d_backward, depthwise_conv2d_forward,
                          involution_backward, involution_forward)
from tinyinvo.ops.checks import output_size

C = 32  # channels of every test input (G = C / 16 = 2 for the grouped involution)

# name -> (forward, backward, shape of w or kernel for (N, K, Ho, Wo))
OPS = {
    "conv": (conv2d_forward, conv2d_backward, lambda N, K, Ho, Wo: (8, C, K, K)),
    "depthwise": (depthwise_conv2d_forward, depthwise_conv2d_backward, lambda N, K, Ho, Wo: (C, K, K)),
    "involution-G1": (involution_forward, involution_backward, lambda N, K, Ho, Wo: (N, 1, K, K, Ho, Wo)),
    "involution-G2": (involution_forward, involution_backward, lambda N, K, Ho, Wo: (N, C // 16, K, K, Ho, Wo)),
}

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}

# (N, H, W): batch 1 with odd H and even W, batch 2 with even H and odd W; K=7 still fits with padding 0
SHAPES = [(1, 9, 8), (2, 8, 11)]

GRID = [(K, stride, padding, shape)
        for K in (1, 3, 7)
        for stride in (1, 2)
        for padding in sorted({0, 1, K // 2}) if padding <= K // 2
        for shape in SHAPES]


def make_inputs(op_name, K, stride, padding, shape, dtype, seed=0):
    N, H, W = shape
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    weight = rng.standard_normal(OPS[op_name][2](N, K, Ho, Wo)).astype(dtype)
    dy = rng.standard_normal((N, weight.shape[0] if op_name == "conv" else C, Ho, Wo)).astype(dtype)
    return x, weight, dy, dict(stride=stride, padding=padding)


def run(op_name, backend, x, weight, dy, kwargs):
    """[y, dx, dweight] from one backend."""
    forward, backward, _ = OPS[op_name]
    return [forward(x, weight, backend=backend, **kwargs), *backward(dy, x, weight, backend=backend, **kwargs)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op_name", OPS)
@pytest.mark.parametrize("K, stride, padding, shape", GRID,
                         ids=[f"K{K}-s{s}-p{p}-N{sh[0]}-{sh[1]}x{sh[2]}" for K, s, p, sh in GRID])
def test_numba_matches_numpy(op_name, K, stride, padding, shape, dtype):
    x, weight, dy, kwargs = make_inputs(op_name, K, stride, padding, shape, dtype)
    expected = run(op_name, "numpy", x, weight, dy, kwargs)
    got = run(op_name, "numba", x, weight, dy, kwargs)
    tolerance = TOLERANCE[dtype]
    for name, a, b in zip(["y", "dx", "dweight"], got, expected):
        assert a.dtype == dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(b).max(), err_msg=name)


@pytest.mark.parametrize("op_name", OPS)
def test_results_are_bitwise_reproducible_for_any_thread_count(op_name):
    # every output element is written by one thread and every sum runs in a fixed order, in the
    # Numba kernels and in BLAS (conv's matrix products: OpenBLAS splits a product among threads
    # by rows and columns, never along the sum), so neither a second run nor a different number
    # of threads may change a single bit. set_num_threads sets both Numba's and BLAS's threads.
    x, weight, dy, kwargs = make_inputs(op_name, 7, 1, 3, (4, 12, 10), np.float32, seed=1)
    threads = numba.get_num_threads()
    try:
        set_num_threads(threads)
        first = run(op_name, "numba", x, weight, dy, kwargs)
        again = run(op_name, "numba", x, weight, dy, kwargs)
        set_num_threads(1)
        one_thread = run(op_name, "numba", x, weight, dy, kwargs)
    finally:
        set_num_threads(threads)
    for a, b, c in zip(first, again, one_thread):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def assert_conv_backends_agree(x, weight, dy, kwargs):
    """y, dx and dw of the two backends agree to float64 rounding."""
    for a, b in zip(run("conv", "numba", x, weight, dy, kwargs), run("conv", "numpy", x, weight, dy, kwargs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_pointwise_conv_matches_numpy_on_a_larger_batch(stride):
    # 1x1 with padding 0 takes the pure matrix-product path (on every stride-th pixel for stride > 1,
    # a ResNet's projection shortcut): check it on more than a few pixels, H and W not multiples of 3
    x, weight, dy, kwargs = make_inputs("conv", 1, stride, 0, (3, 16, 17), np.float64)
    assert_conv_backends_agree(x, weight, dy, kwargs)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("op_name", OPS)
@pytest.mark.parametrize("K, stride, padding", [(1, 1, 0), (1, 2, 0), (3, 2, 1)])
def test_an_empty_batch_gives_empty_results_of_the_right_shapes(op_name, backend, K, stride, padding):
    # tinyinvo.count runs models on a batch of 0 images to trace the shapes
    x, weight, dy, kwargs = make_inputs(op_name, K, stride, padding, (1, 8, 7), np.float32)
    if op_name.startswith("involution"):
        weight = weight[:0]
    y, dx, dweight = run(op_name, backend, x[:0], weight, dy[:0], kwargs)
    assert y.shape == (0, *dy.shape[1:]) and dx.shape == (0, *x.shape[1:])
    assert dweight.shape == weight.shape and not dweight.any()


def test_conv_in_several_im2col_batches_matches_numpy(monkeypatch):
    # The Numba conv unfolds COLS_BUDGET entries' worth of images at a time; with a budget of two
    # images' cols, 5 images go through in batches of 2, 2 and 1: later batches start at an offset,
    # and the last one reuses the buffers (cols, and the wide dy with its garbage columns) at a
    # smaller size.
    from tinyinvo.ops.numba_backend import conv as numba_conv

    x, weight, dy, kwargs = make_inputs("conv", 3, 2, 1, (5, 9, 8), np.float64)
    one_image = C * 3 * 3 * numba_conv._Unfold(x.shape, 3, 2, 1).width
    monkeypatch.setattr(numba_conv, "COLS_BUDGET", 2 * one_image)
    assert numba_conv._Unfold(x.shape, 3, 2, 1).batch == 2
    assert_conv_backends_agree(x, weight, dy, kwargs)
