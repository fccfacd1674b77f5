"""The three ops, plus ReLU and train-mode BatchNorm, each a forward/backward pair of plain functions
(and ``add``, a + b, whose gradient needs no function).

This module is the one door to a backend: it checks the input once (``checks.py``), resolves
involution's ``padding=None``, makes the arrays C-contiguous (all but BatchNorm's, see
``batchnorm_forward``), and hands them to the chosen backend,
``numpy_backend`` (the readable reference) or ``numba_backend`` (the fast kernels). Both backends
define exactly these functions with the same parameters minus ``backend=``; involution's ``padding``
arrives there as an int (tests/test_backends.py holds all of this). Layers call these functions,
never a backend directly.

Layout NCHW. Output size for the three ops: ``Ho = (H + 2*padding - K) // stride + 1`` (same for Wo).
"""

import numpy as np

from tinyinvo.backend import resolve
from tinyinvo.ops import checks


def _contiguous(*arrays):
    return [np.ascontiguousarray(a) for a in arrays]


def conv2d_forward(x, w, *, stride=1, padding=0, backend=None):
    """Dense 2-D convolution (cross-correlation, as in every deep learning library).

    y[n, o, i, j] = sum_{c,p,q} w[o, c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs:
    - x: (N, Ci, H, W) float32 or float64
    - w: (Co, Ci, K, K), same dtype as x
    - stride, padding: ints (zero padding on all four sides)
    Returns y: (N, Co, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    checks.check_conv2d(x, w, stride, padding)
    x, w = _contiguous(x, w)
    return resolve(backend).conv2d_forward(x, w, stride=stride, padding=padding)


def conv2d_backward(dy, x, w, *, stride=1, padding=0, backend=None):
    """Gradients of conv2d_forward: dy (N, Co, Ho, Wo) -> (dx (N, Ci, H, W), dw (Co, Ci, K, K))."""
    out_shape = checks.check_conv2d(x, w, stride, padding)
    checks.check_grad_output(dy, x, out_shape)
    dy, x, w = _contiguous(dy, x, w)
    return resolve(backend).conv2d_backward(dy, x, w, stride=stride, padding=padding)


def depthwise_conv2d_forward(x, w, *, stride=1, padding=0, backend=None):
    """Depthwise 2-D convolution: one K x K filter per channel, no mixing across channels.

    y[n, c, i, j] = sum_{p,q} w[c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs: x (N, C, H, W); w (C, K, K), same dtype as x; stride, padding ints.
    Returns y: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    checks.check_depthwise_conv2d(x, w, stride, padding)
    x, w = _contiguous(x, w)
    return resolve(backend).depthwise_conv2d_forward(x, w, stride=stride, padding=padding)


def depthwise_conv2d_backward(dy, x, w, *, stride=1, padding=0, backend=None):
    """Gradients of depthwise_conv2d_forward: dy (N, C, Ho, Wo) -> (dx (N, C, H, W), dw (C, K, K))."""
    out_shape = checks.check_depthwise_conv2d(x, w, stride, padding)
    checks.check_grad_output(dy, x, out_shape)
    dy, x, w = _contiguous(dy, x, w)
    return resolve(backend).depthwise_conv2d_backward(dy, x, w, stride=stride, padding=padding)


def involution_forward(x, kernel, *, stride=1, padding=None, backend=None):
    """Involution: a K x K filter per pixel and per group, shared by the C // G channels of the group.

    out[n, c, i, j] = sum_{p,q} kernel[n, g(c), p, q, i, j] * xpad[n, c, i*stride + p, j*stride + q],
    with g(c) = c // (C // G).

    Inputs:
    - x: (N, C, H, W) float32 or float64
    - kernel: (N, G, K, K, Ho, Wo), same dtype as x; C must be divisible by G
    - stride: int; padding: int, or None for (K - 1) // 2 (odd K only)
    Returns out: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    _, padding = checks.check_involution(x, kernel, stride, padding)
    x, kernel = _contiguous(x, kernel)
    return resolve(backend).involution_forward(x, kernel, stride=stride, padding=padding)


def involution_backward(dy, x, kernel, *, stride=1, padding=None, backend=None):
    """Gradients of involution_forward: dy (N, C, Ho, Wo) -> (dx (N, C, H, W), dkernel (N, G, K, K, Ho, Wo))."""
    out_shape, padding = checks.check_involution(x, kernel, stride, padding)
    checks.check_grad_output(dy, x, out_shape)
    dy, x, kernel = _contiguous(dy, x, kernel)
    return resolve(backend).involution_backward(dy, x, kernel, stride=stride, padding=padding)


def group_norm_forward(x, gamma, beta, *, groups, eps=1e-5, backend=None):
    """Group normalisation: each image's channels in ``groups`` groups, each normalised on its own.

    y[n, c] = gamma[c] * (x[n, c] - mean[n, g]) / sqrt(var[n, g] + eps) + beta[c],  g = c // (C // G)

    Inputs: x (N, C, H, W); gamma, beta (C,), same dtype; groups G dividing C; eps > 0.
    Returns (y, mean, var): y (N, C, H, W); mean, var (N, G), the biased statistics of each group.
    """
    checks.check_group_norm(x, gamma, beta, groups, eps)
    x, gamma, beta = _contiguous(x, gamma, beta)
    return resolve(backend).group_norm_forward(x, gamma, beta, groups=groups, eps=eps)


def group_norm_backward(dy, x, mean, var, gamma, *, groups, eps=1e-5, backend=None):
    """Gradients of group_norm_forward: dy (N, C, H, W) -> (dx (N, C, H, W), dgamma (C,), dbeta (C,))."""
    checks.check_group_norm_backward(dy, x, mean, var, gamma, groups, eps)
    dy, x, mean, var, gamma = _contiguous(dy, x, mean, var, gamma)
    return resolve(backend).group_norm_backward(dy, x, mean, var, gamma, groups=groups, eps=eps)
def relu_forward(x, *, backend=None):
    """ReLU, y = max(x, 0) elementwise (a NaN stays NaN).

    Inputs: x, any shape, float32 or float64. Returns y: same shape and dtype.
    """
    checks.check_relu(x)
    return resolve(backend).relu_forward(np.ascontiguousarray(x))


def relu_backward(dy, y, *, backend=None):
    """Gradient of relu_forward from its output y (y > 0 exactly where x > 0): dx = dy where y > 0, else 0.

    Inputs: dy and y, the same shape and dtype. Returns dx: same shape and dtype.
    """
    checks.check_relu_backward(dy, y)
    dy, y = _contiguous(dy, y)
    return resolve(backend).relu_backward(dy, y)


def add(a, b, *, backend=None):
    """The elementwise sum a + b (a residual block's output). Its gradient passes dy to a and b unchanged.

    Inputs: a and b, the same shape and dtype (float32 or float64). Returns a new array a + b.
    """
    checks.check_add(a, b)
    a, b = _contiguous(a, b)
    return resolve(backend).add(a, b)


def batchnorm_forward(x, gamma, beta, eps, *, relu=False, backend=None):
    """Batch normalisation in train mode: each channel c normalised with its own batch statistics.

    mean[c], var[c] = mean and biased variance of x[:, c] over its M = N*H*W values
    y = gamma[c] * (x - mean[c]) / sqrt(var[c] + eps) + beta[c]       (relu=True: y = max(that, 0))

    Inputs: x (N, C, H, W) float32 or float64; gamma, beta (C,), same dtype; eps > 0; relu: bool,
    a ReLU after the normalisation, fused into the same pass over memory (BatchNorm2d(relu=True)).
    Returns (y, mean, var): y (N, C, H, W), mean and var (C,), all in x's dtype.

    The arrays go to the backend in their own memory layout: the NumPy reference's sums run in the
    order of that layout, so copying x to C order here would change their last bits. (The Numba
    kernels copy what they need into contiguous planes themselves.)
    """
    checks.check_batchnorm(x, gamma, beta, eps, relu)
    return resolve(backend).batchnorm_forward(x, gamma, beta, eps, relu=relu)


def batchnorm_backward(dy, x, mean, var, gamma, eps, *, y=None, backend=None):
    """Gradients of batchnorm_forward (mean and var depend on x too):

        dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma),   inv_std = 1 / sqrt(var + eps)

    Inputs: dy, x (N, C, H, W); mean, var (the forward's), gamma (C,); eps; y: None, or the forward's
    output when it had relu=True, and then dy goes back through the ReLU first: dy * (y > 0).
    Returns (dx, dgamma, dbeta): (N, C, H, W), (C,), (C,).
    """
    checks.check_batchnorm_backward(dy, x, mean, var, gamma, eps, y)
    return resolve(backend).batchnorm_backward(dy, x, mean, var, gamma, eps, y=y)


__all__ = [
    "conv2d_forward", "conv2d_backward",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "involution_forward", "involution_backward",
    "group_norm_forward", "group_norm_backward",
    "batchnorm_forward", "batchnorm_backward",
    "relu_forward", "relu_backward",
    "add",
]
