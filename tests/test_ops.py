"""The ops of tinyinvo.ops on every backend: gradients, the naive loops as oracle, dtypes, identities between
the ops, and ReLU and BatchNorm against their definitions.

Every test but the 1x1 one (a NumPy-only detail) takes the ``backend`` fixture (conftest.py), so it runs
once per backend. The ops and their inputs come from one table, op_table.py.
"""

import numpy as np
import pytest
from op_table import OPS, make_batchnorm_inputs, make_inputs, make_relu_inputs, run, run_batchnorm, run_relu

from tinyinvo import backend as backend_module
from tinyinvo import gradcheck, set_backend
from tinyinvo.ops import (add, batchnorm_backward, batchnorm_forward, conv2d_backward, conv2d_forward,
                          depthwise_conv2d_backward, depthwise_conv2d_forward, involution_backward,
                          involution_forward, relu_backward, relu_forward)
from tinyinvo.ops.checks import output_size
from tinyinvo.ops.windows import im2col

# (N, H, W, K, stride, padding): a compact grid over stride 1 and 2, padding 0, 1 and 3, batch 1 and 2,
# non-square inputs and K = 1, 3, 7 (padding 3 with K=3 puts whole windows in the zero border).
GEOMETRIES = {
    "K1": (2, 4, 5, 1, 1, 0),
    "K1-stride2-pad1": (1, 5, 4, 1, 2, 1),
    "K3-pad1": (2, 5, 4, 3, 1, 1),
    "K3-stride2": (1, 7, 6, 3, 2, 0),
    "K3-stride2-pad3": (2, 4, 5, 3, 2, 3),
    "K7-pad3": (1, 5, 6, 7, 1, 3),
}

over_ops = pytest.mark.parametrize("op_name", OPS)
over_geometries = pytest.mark.parametrize("geometry", GEOMETRIES.values(), ids=GEOMETRIES.keys())


# Each op is linear in every single entry of x and of w (or kernel), so central differences have no
# truncation error at any step h: only rounding error, which a large h shrinks. With the default
# h=1e-5, entries whose gradient happens to be tiny (~1e-5) reach relative errors of a few 1e-6.
GRADCHECK_STEP = 0.1


@over_ops
@over_geometries
def test_gradients_match_finite_differences(backend, op_name, geometry):
    op = OPS[op_name]
    x, weight, _, kwargs = make_inputs(op_name, geometry)
    errors = gradcheck(lambda: op.forward(x, weight, backend=backend, **kwargs),
                       {"x": x, "weight": weight},
                       lambda dy: dict(zip(["x", "weight"], op.backward(dy, x, weight, backend=backend, **kwargs))),
                       h=GRADCHECK_STEP)
    assert max(errors.values()) < 1e-6, errors


@over_ops
@over_geometries
def test_forward_matches_naive_loops(backend, op_name, geometry):
    op = OPS[op_name]
    x, weight, _, kwargs = make_inputs(op_name, geometry)
    np.testing.assert_allclose(op.forward(x, weight, backend=backend, **kwargs),
                               op.naive(x, weight, **kwargs), rtol=1e-10, atol=1e-12)


@over_ops
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_and_gradients_keep_the_input_dtype(backend, op_name, dtype):
    op = OPS[op_name]
    x, weight, _, kwargs = make_inputs(op_name, GEOMETRIES["K3-stride2-pad3"], dtype=dtype)
    y = op.forward(x, weight, backend=backend, **kwargs)
    dy = np.ones_like(y)
    dx, dweight = op.backward(dy, x, weight, backend=backend, **kwargs)
    assert (y.dtype, dx.dtype, dweight.dtype) == (dtype, dtype, dtype)
    assert (dx.shape, dweight.shape) == (x.shape, weight.shape)
    # and the values agree with a float64 run up to float32 rounding
    x64, weight64, dy64 = x.astype(np.float64), weight.astype(np.float64), dy.astype(np.float64)
    expected = [op.forward(x64, weight64, backend=backend, **kwargs),
                *op.backward(dy64, x64, weight64, backend=backend, **kwargs)]
    for got, want in zip([y, dx, dweight], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@over_ops
def test_backend_none_uses_the_default_backend(backend, op_name, monkeypatch):
    op = OPS[op_name]
    x, weight, _, kwargs = make_inputs(op_name, GEOMETRIES["K3-pad1"])
    monkeypatch.setattr(backend_module, "_current", None)  # the global choice is restored after the test
    set_backend(backend)
    module = backend_module.resolve(backend)
    calls = []

    def spy_on(real):
        def spy(*args, **kwargs):
            calls.append(real.__name__)
            return real(*args, **kwargs)
        return spy

    for function in (op.forward, op.backward):
        monkeypatch.setattr(module, function.__name__, spy_on(getattr(module, function.__name__)))
    y = op.forward(x, weight, **kwargs)
    op.backward(y, x, weight, **kwargs)
    assert calls == [op.forward.__name__, op.backward.__name__]


def test_numpy_1x1_conv_reads_x_in_place(randn):
    # with K=1, stride 1, padding 0 the im2col matrix is x itself: the conv is one matrix product, no copy
    x = randn(2, 3, 4, 5)
    assert np.shares_memory(im2col(x, 1, 1, 0), x)
    assert not np.shares_memory(im2col(x, 1, 2, 0), x)  # a stride-2 1x1 conv has to gather pixels


@over_geometries
def test_depthwise_conv_is_a_conv_with_channel_diagonal_weight(backend, geometry, randn):
    # w_full[o, c] = w[c] if o == c else 0: output channel c only sees input channel c
    N, H, W, K, stride, padding = geometry
    C = 3
    x, w = randn(N, C, H, W), randn(C, K, K)
    w_full = np.zeros((C, C, K, K))
    w_full[np.arange(C), np.arange(C)] = w
    y = depthwise_conv2d_forward(x, w, stride=stride, padding=padding, backend=backend)
    np.testing.assert_allclose(y, conv2d_forward(x, w_full, stride=stride, padding=padding, backend=backend),
                               rtol=1e-12, atol=1e-12)
    dy = randn(*y.shape)
    dx, dw = depthwise_conv2d_backward(dy, x, w, stride=stride, padding=padding, backend=backend)
    dx_full, dw_full = conv2d_backward(dy, x, w_full, stride=stride, padding=padding, backend=backend)
    np.testing.assert_allclose(dx, dx_full, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dw_full[np.arange(C), np.arange(C)], rtol=1e-12, atol=1e-12)


@over_geometries
@pytest.mark.parametrize("G", [1, 2, 4])
def test_involution_with_pixel_constant_kernel_is_depthwise_conv(backend, geometry, G, randn):
    # kernel[n, g, p, q, i, j] = w_group[g, p, q] for every n, i, j,
    # so each channel c is filtered by w_group[c // (C // G)] everywhere
    N, H, W, K, stride, padding = geometry
    C = 4
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    x, w_group = randn(N, C, H, W), randn(G, K, K)
    kernel = np.ascontiguousarray(np.broadcast_to(w_group[None, :, :, :, None, None], (N, G, K, K, Ho, Wo)))
    w = np.repeat(w_group, C // G, axis=0)  # (C, K, K): channels 0 .. C//G - 1 get group 0, and so on
    out = involution_forward(x, kernel, stride=stride, padding=padding, backend=backend)
    np.testing.assert_allclose(out, depthwise_conv2d_forward(x, w, stride=stride, padding=padding, backend=backend),
                               rtol=1e-12, atol=1e-12)
    dy = randn(*out.shape)
    dx, dkernel = involution_backward(dy, x, kernel, stride=stride, padding=padding, backend=backend)
    dx_depthwise, dw = depthwise_conv2d_backward(dy, x, w, stride=stride, padding=padding, backend=backend)
    np.testing.assert_allclose(dx, dx_depthwise, rtol=1e-12, atol=1e-12)
    # a weight shared by all pixels and images gets the sum of their gradients, and by all channels of its group
    np.testing.assert_allclose(dkernel.sum(axis=(0, 4, 5)), dw.reshape(G, C // G, K, K).sum(axis=1),
                               rtol=1e-12, atol=1e-12)


@over_ops
@pytest.mark.parametrize("K, stride, padding", [(1, 1, 0), (1, 2, 0), (3, 2, 1)])
def test_an_empty_batch_gives_empty_results_of_the_right_shapes(backend, op_name, K, stride, padding):
    # tinyinvo.count runs models on a batch of 0 images to trace the shapes
    x, weight, dy, kwargs = make_inputs(op_name, (1, 8, 7, K, stride, padding), dtype=np.float32)
    if op_name.startswith("involution"):
        weight = weight[:0]
    y, dx, dweight = run(op_name, backend, x[:0], weight, dy[:0], kwargs)
    assert y.shape == (0, *dy.shape[1:]) and dx.shape == (0, *x.shape[1:])
    assert dweight.shape == weight.shape and not dweight.any()


def test_involution_padding_none_is_same_padding(backend):
    # the front door resolves None to (K - 1) // 2 before a backend sees it
    x, kernel, dy, _ = make_inputs("involution-G2", (2, 5, 6, 3, 1, 1))
    same = run("involution-G2", backend, x, kernel, dy, dict(padding=None))
    for a, b in zip(same, run("involution-G2", backend, x, kernel, dy, dict(padding=1))):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------- ReLU and BatchNorm


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5, 4), (1, 1, 1, 1)])
def test_relu_is_bitwise_its_definition(backend, shape, dtype):
    x, dy = make_relu_inputs(shape, dtype)            # x[0] = 0: the kink itself, y = 0 and no gradient
    y, dx = run_relu(backend, x, dy)
    assert y.dtype == dtype and dx.dtype == dtype and y.shape == dx.shape == shape
    assert np.array_equal(y, np.maximum(x, 0))
    assert np.array_equal(dx, np.where(x > 0, dy, 0))


def test_nan_passes_through_the_relu(backend):
    # a diverging run must show NaN in its loss, not have it hidden as 0 by the activation
    y = relu_forward(np.array([np.nan, -1.0, 2.0], np.float32), backend=backend)
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_add_is_bitwise_a_plus_b_in_a_new_array(backend, dtype):
    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal((2, 3, 5, 4)).astype(dtype) for _ in range(2))
    total = add(a, b, backend=backend)
    assert total.dtype == dtype and np.array_equal(total, a + b)
    assert total is not a and not np.shares_memory(total, a) and not np.shares_memory(total, b)
    assert np.array_equal(add(a.T, b.T, backend=backend), a.T + b.T)   # non-contiguous views too


def test_relu_takes_non_contiguous_arrays(backend):
    # the front door hands the backend C-contiguous copies: a transposed view (the ReLU layer passes
    # on whatever it gets) must give the same numbers
    x = np.arange(-12, 12, dtype=np.float32).reshape(4, 6)
    y = relu_forward(x.T, backend=backend)
    assert np.array_equal(y, np.maximum(x.T, 0))
    dx = relu_backward(np.ones((6, 4), np.float32)[:, ::-1], y, backend=backend)
    assert np.array_equal(dx, (x.T > 0).astype(np.float32))


def test_relu_gradients(backend):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 1.0, (2, 3, 4)) * rng.choice([-1.0, 1.0], (2, 3, 4))  # no kink inside a difference
    errors = gradcheck(lambda: relu_forward(x, backend=backend), {"x": x},
                       lambda dy: {"x": relu_backward(dy, relu_forward(x, backend=backend), backend=backend)})
    assert errors["x"] < 1e-6, errors


def test_batchnorm_normalises_each_channel(backend):
    x = make_batchnorm_inputs((4, 3, 5, 5))[0]
    y, mean, var = batchnorm_forward(x, np.ones(3), np.zeros(3), 1e-12, backend=backend)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-9)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=1e-12)


def test_numba_batchnorm_variance_survives_a_mean_far_larger_than_the_spread():
    # float32 activations around 10^4 that differ by 0.05: a variance taken as E[x^2] - E[x]^2
    # loses digits even in float64 (here about 1e-5 of it), and float32 sums lose more. The Numba
    # kernel sums in float64 and centres on the mean before squaring, so it must keep the variance
    # to float32 rounding. (The reference computes in x's own float32 throughout, and its float32
    # mean alone is off by more than this tolerance.)
    rng = np.random.default_rng(5)
    x = (1e4 + 0.05 * rng.standard_normal((8, 2, 6, 6))).astype(np.float32)
    _, mean, var = batchnorm_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32), 1e-5, backend="numba")
    exact = x.astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(var, exact.var(axis=(0, 2, 3)), rtol=1e-6)


@pytest.mark.parametrize("relu", [False, True], ids=["alone", "fused-relu"])
def test_batchnorm_gradients(backend, relu):
    x, _, gamma, beta = make_batchnorm_inputs((2, 3, 4, 5))
    eps = 1e-5

    def backward(dy):
        y, mean, var = batchnorm_forward(x, gamma, beta, eps, relu=relu, backend=backend)
        grads = batchnorm_backward(dy, x, mean, var, gamma, eps, y=y if relu else None, backend=backend)
        return dict(zip(["x", "gamma", "beta"], grads))

    forward = lambda: batchnorm_forward(x, gamma, beta, eps, relu=relu, backend=backend)[0]  # noqa: E731
    if relu:  # about half the outputs are clipped, so the check covers both sides of the ReLU
        assert 0.2 < np.mean(forward() == 0) < 0.8
    errors = gradcheck(forward, {"x": x, "gamma": gamma, "beta": beta}, backward)
    assert max(errors.values()) < 1e-6, errors


def test_batchnorm_relu_is_batchnorm_then_relu(backend):
    x, dy, gamma, beta = make_batchnorm_inputs((2, 3, 4, 5))
    y, mean, var = batchnorm_forward(x, gamma, beta, 1e-5, backend=backend)
    fused_y = batchnorm_forward(x, gamma, beta, 1e-5, relu=True, backend=backend)[0]
    np.testing.assert_array_equal(fused_y, relu_forward(y, backend=backend))
    apart = batchnorm_backward(relu_backward(dy, fused_y, backend=backend), x, mean, var, gamma, 1e-5,
                               backend=backend)
    fused = batchnorm_backward(dy, x, mean, var, gamma, 1e-5, y=fused_y, backend=backend)
    for a, b in zip(fused, apart):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_batchnorm_keeps_the_input_dtype(backend, dtype):
    outputs = run_batchnorm(backend, *make_batchnorm_inputs((2, 3, 4, 5), dtype))
    assert [a.dtype for a in outputs] == [dtype] * 6
