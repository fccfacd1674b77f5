"""Sliding windows, the one idea behind all three ops, and its adjoint for the backward passes.

Each op reads the same thing: the K x K window of the zero-padded input under every output pixel,

    windows[n, c, p, q, i, j] = xpad[n, c, i*stride + p, j*stride + q]

``sliding_windows`` builds that 6-D array as a *view* of the padded input (no copy: the same
memory is read with different strides). ``im2col`` flattens it into a matrix for the dense conv.
``col2im`` goes the other way for the backward pass: a pixel of x lies in up to K*K windows,
so its gradient is the sum of the window gradients at those places.

Backend-neutral: the NumPy backend, the naive loops (``naive.py``) and the pooling layers
(``tinyinvo.nn.pool``) all read windows through this module; the Numba kernels have their own
padded plane buffers (``numba_backend/planes.py``).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad(x, padding):
    """Zero-pad the two spatial axes of x (N, C, H, W) on all four sides.

    Returns xpad: (N, C, H + 2*padding, W + 2*padding); x itself when padding == 0.
    """
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def sliding_windows(x, K, stride, padding):
    """Every K x K window of the padded input, as a read-only view: no data is copied.

    windows[n, c, p, q, i, j] = xpad[n, c, i*stride + p, j*stride + q]

    Inputs:
    - x: (N, C, H, W)
    - K, stride, padding: ints
    Returns windows: (N, C, K, K, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    xpad = pad(x, padding)
    windows = sliding_window_view(xpad, (K, K), axis=(2, 3))  # (N, C, Hp-K+1, Wp-K+1, K, K): every position
    windows = windows[:, :, ::stride, ::stride]               # keep every stride-th one: (N, C, Ho, Wo, K, K)
    return windows.transpose(0, 1, 4, 5, 2, 3)                # kernel offsets first, like the weights


def im2col(x, K, stride, padding):
    """The windows as one matrix per image: column i*Wo + j is the window under output pixel (i, j).

    Inputs: x (N, C, H, W); K, stride, padding ints.
    Returns cols: (N, C*K*K, Ho*Wo). A copy in general; for K=1, stride=1, padding=0 it is x itself,
    reshaped, so a 1x1 convolution costs just one matrix product.
    """
    windows = sliding_windows(x, K, stride, padding)
    N, C, _, _, Ho, Wo = windows.shape
    return windows.reshape(N, C * K * K, Ho * Wo)


def col2im(dwindows, x_shape, stride, padding):
    """Backward of sliding_windows: add the gradient of every window entry onto the pixel it was read from.

    dx[n, c, i*stride + p - padding, j*stride + q - padding] += dwindows[n, c, p, q, i, j]

    Written as a loop over the K*K kernel offsets (p, q): for a fixed offset, the entries of all
    windows come from a strided grid of pixels, so one slice assignment adds them all.

    Inputs:
    - dwindows: (N, C, K, K, Ho, Wo), the gradient with respect to sliding_windows(x, K, stride, padding)
    - x_shape: (N, C, H, W); stride, padding: ints
    Returns dx: (N, C, H, W), same dtype as dwindows.
    """
    N, C, K, _, Ho, Wo = dwindows.shape
    H, W = x_shape[2:]
    if K == 1 and stride == 1 and padding == 0:  # every pixel lies in exactly one window: nothing to add up
        return dwindows.reshape(x_shape)
    dxpad = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=dwindows.dtype)
    for p in range(K):
        for q in range(K):
            dxpad[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] += dwindows[:, :, p, q]
    return np.ascontiguousarray(dxpad[:, :, padding:padding + H, padding:padding + W])  # drop the padding
