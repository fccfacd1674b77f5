"""Involution in NumPy: a K x K filter per output pixel, shared by the channels of a group.

Splitting the channel axis C into (G, C // G) puts channel c in group g = c // (C // G), which is
the grouping of the formula; then the op is one einsum over the sliding windows.
(``optimize=True`` is passed only where it measured faster: it slows the two window sums down.)
"""

import numpy as np

from tinyinvo.ops.windows import col2im, sliding_windows


def grouped_windows(x, G, K, stride, padding):
    """sliding_windows with the channel axis split into groups (still a view of the padded input).

    Returns windows: (N, G, C // G, K, K, Ho, Wo), where windows[n, g, c'] is channel g * (C // G) + c'.
    """
    windows = sliding_windows(x, K, stride, padding)  # (N, C, K, K, Ho, Wo)
    N, C, _, _, Ho, Wo = windows.shape
    return windows.reshape(N, G, C // G, K, K, Ho, Wo)


def involution_forward(x, kernel, *, stride=1, padding):
    """out[n, c, i, j] = sum_{p,q} kernel[n, g(c), p, q, i, j] * xpad[n, c, i*stride + p, j*stride + q]

    where g(c) = c // (C // G) is the group of channel c.

    Inputs:
    - x: (N, C, H, W)
    - kernel: (N, G, K, K, Ho, Wo), same dtype as x; C divisible by G
    - stride, padding: ints (the public op resolves padding=None to (K - 1) // 2)
    Returns out: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    N, G, K, _, Ho, Wo = kernel.shape
    windows = grouped_windows(x, G, K, stride, padding)          # (N, G, C//G, K, K, Ho, Wo)
    out = np.einsum("ngpqij,ngcpqij->ngcij", kernel, windows)   # (N, G, C//G, Ho, Wo)
    return out.reshape(N, x.shape[1], Ho, Wo)


def involution_backward(dy, x, kernel, *, stride=1, padding):
    """Gradients of involution_forward.

    dkernel[n, g, p, q, i, j] = sum_{c in group g} dy[n, c, i, j] * xpad[n, c, i*stride + p, j*stride + q]
    dx: each window gets dwindows[n, c, p, q, i, j] = kernel[n, g(c), p, q, i, j] * dy[n, c, i, j],
        added back by col2im.

    Inputs:
    - dy: (N, C, Ho, Wo), upstream gradient
    - x, kernel, stride, padding: as in involution_forward
    Returns (dx, dkernel): (N, C, H, W) and (N, G, K, K, Ho, Wo).
    """
    N, C, Ho, Wo = dy.shape
    G, K = kernel.shape[1:3]
    windows = grouped_windows(x, G, K, stride, padding)          # (N, G, C//G, K, K, Ho, Wo)
    dy_groups = dy.reshape(N, G, C // G, Ho, Wo)
    dkernel = np.einsum("ngcij,ngcpqij->ngpqij", dy_groups, windows)
    dwindows = np.einsum("ngpqij,ngcij->ngcpqij", kernel, dy_groups, optimize=True)
    dx = col2im(dwindows.reshape(N, C, K, K, Ho, Wo), x.shape, stride, padding)
    return dx, dkernel
