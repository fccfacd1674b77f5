"""The three forward ops as plain nested Python loops, written straight from their formulas.

One multiply-add at a time, so they are very slow (use tiny inputs), but there is nothing to
misread: use them to learn what each op computes, and as the oracle the vectorised backends are
tested against. Same checks and keyword arguments as the public ops in ``tinyinvo.ops``.
"""

import numpy as np

from tinyinvo.ops import checks
from tinyinvo.ops.windows import pad


def window_dot(weights, xpad, n, c, i, j, stride):
    """sum_{p,q} weights[p, q] * xpad[n, c, i*stride + p, j*stride + q]: one K x K filter on one window."""
    K = weights.shape[0]
    total = 0.0
    for p in range(K):
        for q in range(K):
            total += weights[p, q] * xpad[n, c, i * stride + p, j * stride + q]
    return total


def conv2d_forward_naive(x, w, *, stride=1, padding=0):
    """Dense convolution, y[n, o, i, j] = sum_{c,p,q} w[o, c, p, q] * xpad[n, c, i*stride + p, j*stride + q].

    Inputs: x (N, Ci, H, W); w (Co, Ci, K, K), same dtype; stride, padding ints.
    Returns y: (N, Co, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    y = np.zeros(checks.check_conv2d(x, w, stride, padding), dtype=x.dtype)
    xpad = pad(x, padding)
    for n, o, i, j in np.ndindex(y.shape):
        for c in range(x.shape[1]):  # every input channel contributes to every output channel
            y[n, o, i, j] += window_dot(w[o, c], xpad, n, c, i, j, stride)
    return y


def depthwise_conv2d_forward_naive(x, w, *, stride=1, padding=0):
    """Depthwise convolution, y[n, c, i, j] = sum_{p,q} w[c, p, q] * xpad[n, c, i*stride + p, j*stride + q].

    Inputs: x (N, C, H, W); w (C, K, K), same dtype; stride, padding ints.
    Returns y: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    y = np.zeros(checks.check_depthwise_conv2d(x, w, stride, padding), dtype=x.dtype)
    xpad = pad(x, padding)
    for n, c, i, j in np.ndindex(y.shape):
        y[n, c, i, j] = window_dot(w[c], xpad, n, c, i, j, stride)  # channel c only, with its own filter
    return y


def involution_forward_naive(x, kernel, *, stride=1, padding=None):
    """Involution, out[n, c, i, j] = sum_{p,q} kernel[n, g, p, q, i, j] * xpad[n, c, i*stride + p, j*stride + q],
    with g = c // (C // G) the group of channel c.

    Inputs: x (N, C, H, W); kernel (N, G, K, K, Ho, Wo), same dtype; stride int;
    padding int, or None for (K - 1) // 2.
    Returns out: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    out_shape, padding = checks.check_involution(x, kernel, stride, padding)
    out = np.zeros(out_shape, dtype=x.dtype)
    xpad = pad(x, padding)
    channels_per_group = x.shape[1] // kernel.shape[1]
    for n, c, i, j in np.ndindex(out.shape):
        g = c // channels_per_group
        out[n, c, i, j] = window_dot(kernel[n, g, :, :, i, j], xpad, n, c, i, j, stride)  # this pixel's filter
    return out
