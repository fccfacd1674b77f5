"""The three ops on every backend: gradients, the naive loops as oracle, dtypes, and identities between the ops.

Every test but the 1x1 one (a NumPy-only detail) takes the ``backend`` fixture (conftest.py), so it runs
once per backend.
"""

from typing import Callable, NamedTuple

import numpy as np
import pytest

from tinyinvo import backend as backend_module
from tinyinvo import gradcheck, set_backend
from tinyinvo.ops import (conv2d_backward, conv2d_forward, depthwise_conv2d_backward, depthwise_conv2d_forward,
                          involution_backward, involution_forward)
from tinyinvo.ops.checks import output_size
from tinyinvo.ops.naive import conv2d_forward_naive, depthwise_conv2d_forward_naive, involution_forward_naive
from tinyinvo.ops.numpy_backend.windows import im2col


class Op(NamedTuple):
    forward: Callable
    backward: Callable
    naive: Callable
    channels: int            # C (Ci for the conv) of the test input
    weight_shape: Callable   # (N, C, K, Ho, Wo) -> shape of w or kernel


OPS = {
    "conv": Op(conv2d_forward, conv2d_backward, conv2d_forward_naive, 2,
               lambda N, C, K, Ho, Wo: (3, C, K, K)),
    "depthwise": Op(depthwise_conv2d_forward, depthwise_conv2d_backward, depthwise_conv2d_forward_naive, 3,
                    lambda N, C, K, Ho, Wo: (C, K, K)),
    "involution-G1": Op(involution_forward, involution_backward, involution_forward_naive, 4,
                        lambda N, C, K, Ho, Wo: (N, 1, K, K, Ho, Wo)),
    "involution-G2": Op(involution_forward, involution_backward, involution_forward_naive, 4,
                        lambda N, C, K, Ho, Wo: (N, 2, K, K, Ho, Wo)),
}

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


def make_inputs(op, geometry, randn, dtype=np.float64):
    """Random (x, w or kernel, dict(stride=..., padding=...)) for ``op`` on ``geometry``."""
    N, H, W, K, stride, padding = geometry
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    x = randn(N, op.channels, H, W, dtype=dtype)
    weight = randn(*op.weight_shape(N, op.channels, K, Ho, Wo), dtype=dtype)
    return x, weight, dict(stride=stride, padding=padding)


# Each op is linear in every single entry of x and of w (or kernel), so central differences have no
# truncation error at any step h: only rounding error, which a large h shrinks. With the default
# h=1e-5, entries whose gradient happens to be tiny (~1e-5) reach relative errors of a few 1e-6.
GRADCHECK_STEP = 0.1


@over_ops
@over_geometries
def test_gradients_match_finite_differences(backend, op_name, geometry, randn):
    op = OPS[op_name]
    x, weight, kwargs = make_inputs(op, geometry, randn)
    errors = gradcheck(lambda: op.forward(x, weight, backend=backend, **kwargs),
                       {"x": x, "weight": weight},
                       lambda dy: dict(zip(["x", "weight"], op.backward(dy, x, weight, backend=backend, **kwargs))),
                       h=GRADCHECK_STEP)
    assert max(errors.values()) < 1e-6, errors


@over_ops
@over_geometries
def test_forward_matches_naive_loops(backend, op_name, geometry, randn):
    op = OPS[op_name]
    x, weight, kwargs = make_inputs(op, geometry, randn)
    np.testing.assert_allclose(op.forward(x, weight, backend=backend, **kwargs),
                               op.naive(x, weight, **kwargs), rtol=1e-10, atol=1e-12)


@over_ops
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_and_gradients_keep_the_input_dtype(backend, op_name, dtype, randn):
    op = OPS[op_name]
    x, weight, kwargs = make_inputs(op, GEOMETRIES["K3-stride2-pad3"], randn, dtype)
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
def test_backend_none_uses_the_default_backend(backend, op_name, randn, monkeypatch):
    op = OPS[op_name]
    x, weight, kwargs = make_inputs(op, GEOMETRIES["K3-pad1"], randn)
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
