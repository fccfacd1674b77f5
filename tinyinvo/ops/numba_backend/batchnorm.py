"""Batch normalisation in train mode: one fused Numba kernel per pass, parallel over channels.

Same functions and formulas as ``tinyinvo.ops.numpy_backend.batchnorm`` (the reference). Why it is
faster: the NumPy version makes about ten passes over the (N, C, H, W) tensor with as many
temporaries (x - mean, its square, xhat, gamma * xhat, ...). Here one thread takes one channel at a
time and does all the work on that channel's N*H*W values while they sit in its cache: forward =
a pass for the mean, one for the variance, one writing y; backward = one pass for both sums, one
writing dx. Only the first read of each channel comes from main memory.

BatchNorm followed by ReLU (most of them, in a CNN) is one call with ``relu=True``: the forward's
last pass writes max(y, 0) instead of y, and the backward reads the forward's output y and counts
dy only where y > 0, in its own two passes. Apart, the ReLU would cost a pass over memory of its
own each way (read y, write max(y, 0); read dy and y, write dx).

Deterministic: a channel is reduced by a single thread, in a fixed order, in float64
accumulators (also more accurate than float32 sums over up to ~10^5 values).
"""

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=True, cache=True)
def _forward_kernel(x, gamma, beta, eps, relu, y, mean, var):
    # x, y viewed as (N, C, H*W); mean, var (C,) float64
    N, C, P = x.shape
    M = N * P
    for c in prange(C):
        total = 0.0
        for n in range(N):
            for k in range(P):
                total += x[n, c, k]
        mean_c = total / M
        squares = 0.0
        for n in range(N):
            for k in range(P):
                centred = x[n, c, k] - mean_c
                squares += centred * centred
        var_c = squares / M
        # y = gamma * (x - mean) * inv_std + beta = x * scale + shift: one multiply-add per value
        scale = gamma[c] / np.sqrt(var_c + eps)
        shift = beta[c] - mean_c * scale
        for n in range(N):
            for k in range(P):
                value = x[n, c, k] * scale + shift
                y[n, c, k] = 0 if relu and value < 0 else value      # the ReLU, as relu.py's
        mean[c], var[c] = mean_c, var_c


@njit(cache=True)
def _through_relu(dy, y, n, c, k):
    # dy[n, c, k] sent back through the forward's ReLU: 0 where its output y was not positive.
    # With y None (no ReLU) Numba compiles this to dy[n, c, k] alone.
    return dy[n, c, k] if y is None or y[n, c, k] > 0 else 0


@njit(parallel=True, fastmath=True, cache=True)
def _backward_kernel(dy, x, y, mean, var, gamma, eps, dx, dgamma, dbeta):
    # dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma), xhat = (x - mean) * inv_std,
    # where dy is the gradient at the ReLU's input, dy * (y > 0), when the forward applied one
    # (y an array); y is None otherwise, and Numba compiles that case without the test.
    N, C, P = x.shape
    M = N * P
    for c in prange(C):
        inv_std = 1 / np.sqrt(var[c] + eps)
        sum_dy, sum_dy_xhat = 0.0, 0.0
        for n in range(N):
            for k in range(P):
                g = _through_relu(dy, y, n, c, k)
                sum_dy += g
                sum_dy_xhat += g * (x[n, c, k] - mean[c]) * inv_std
        # dx = a * dy + b * x + d, the formula above expanded so the last pass is two multiply-adds
        a = gamma[c] * inv_std
        b = -a * sum_dy_xhat * inv_std / M
        d = -a * sum_dy / M - b * mean[c]
        for n in range(N):
            for k in range(P):
                g = _through_relu(dy, y, n, c, k)
                dx[n, c, k] = a * g + b * x[n, c, k] + d
        dgamma[c], dbeta[c] = sum_dy_xhat, sum_dy


def _planes(array):
    """An (N, C, H, W) array as a C-contiguous (N, C, H*W) one: the kernels loop over flat planes."""
    N, C = array.shape[:2]
    return np.ascontiguousarray(array).reshape(N, C, -1)


def batchnorm_forward(x, gamma, beta, eps, *, relu=False):
    """Normalise x with its own batch statistics (then apply a ReLU if ``relu``).

    Inputs: x (N, C, H, W) C-contiguous; gamma, beta (C,), same dtype; eps > 0; relu: bool.
    Returns (y, mean, var): y (N, C, H, W), the batch mean and biased variance (C,), all in x's dtype.
    """
    C = x.shape[1]
    y = np.empty(x.shape, x.dtype)
    mean, var = np.empty(C), np.empty(C)
    _forward_kernel(_planes(x), gamma, beta, float(eps), bool(relu), _planes(y), mean, var)
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def batchnorm_backward(dy, x, mean, var, gamma, eps, *, y=None):
    """Gradients of batchnorm_forward.

    Inputs: dy, x (N, C, H, W) C-contiguous; mean, var (the forward's), gamma (C,); eps; y: None, or
    the forward's output if it applied the ReLU (dy then counts only where y > 0).
    Returns (dx, dgamma, dbeta): (N, C, H, W), (C,), (C,), in x's dtype.
    """
    C = x.shape[1]
    dx = np.empty(x.shape, x.dtype)
    dgamma, dbeta = np.empty(C), np.empty(C)
    _backward_kernel(_planes(dy), _planes(x), None if y is None else _planes(y), mean.astype(np.float64),
                     var.astype(np.float64), gamma, float(eps), _planes(dx), dgamma, dbeta)
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)
