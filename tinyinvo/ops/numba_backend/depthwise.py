"""Depthwise 2-D convolution as fused Numba kernels (no unfolded K*K-times copy of the input).

The trick, "flat shifted rows": each thread copies one (H, W) plane into a zero-padded buffer
whose rows are ``pitch`` elements apart (``planes.fill_phases``; for stride s > 1 the buffer is
split into s*s phases so that every read below is still unit-stride). The output is computed at
the same row pitch, so output pixel u = i*pitch + j reads, for tap (p, q), the buffer at

    u + tap_offset(p, q)

and one tap is ONE long loop over u:  y_flat[u] += w[c, p, q] * x_flat[u + tap_offset(p, q)].
No bounds tests (the border supplies the zeros) and ~Ho*pitch iterations instead of Ho short
loops of Wo, so the compiler vectorises it well. The price: columns Wo..pitch-1 of each output
row are garbage (about (K-1)/stride extra columns) and are dropped when copying out.

The forward adds four taps per pass (``TAPS_PER_PASS``): a one-tap pass loads and stores y_flat[u]
for every single multiply-add, and on small planes those L1 loads and stores, not the arithmetic,
set the speed. With four taps per pass one load and one store serve four multiply-adds.

Why ``x_tap = x_flat[offset:]`` and then ``x_tap[u]``, rather than ``x_flat[u + offset]``? Numba
must treat a negative index Python-style (counting from the end), and it can only drop that check,
and vectorise, when it sees that the index is never negative, as for the loop counter u.
The slice moves the offset into the start of the view instead.
"""

import numpy as np
from numba import njit, prange

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend.planes import buffer_geometry, crop_phases, fill_phases, split_tasks, tap_offset


TAPS_PER_PASS = 4  # taps added to the output in one pass over it (see _forward_kernel)


@njit(parallel=True, fastmath=True, cache=True)
def _forward_kernel(x, tap_weights, offsets, stride, padding, rows, pitch, n_chunks, y):
    # Loop order: parallel over planes (n, c), each written by exactly one thread (deterministic),
    # cut into one chunk per thread, so the scratch buffers are allocated once, one per thread,
    # before the parallel loop.
    # Within a plane: FOUR taps per pass over the flat output index u. A pass with one tap loads
    # and stores y_flat[u] for a single multiply-add; with four taps the same load and store
    # serve four, so the loop runs at the speed of the multiply-adds, not of L1 stores. The taps
    # (p, q) are numbered t = p*K + q and grouped four by four; the last group is completed with
    # weight-0 taps reading offset 0 (tap_weights and offsets are padded in the wrapper).
    # Every loop is unit-stride in y_flat and in the four x slices: SIMD multiply-adds on
    # L1-resident data, with no allocation, call or branch.
    N, C = x.shape[:2]
    Ho, Wo = y.shape[2], y.shape[3]
    L = (Ho - 1) * pitch + Wo                    # flat length of the Ho output rows at this pitch
    x_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    y_buffers = np.empty((n_chunks, Ho * pitch), x.dtype)
    for chunk in prange(n_chunks):
        x_flat, y_flat = x_buffers[chunk], y_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, N * C)
        for plane in range(start, stop):
            n, c = plane // C, plane % C
            fill_phases(x[n, c], padding, stride, rows, pitch, x_flat)
            y_flat[:] = 0
            weights = tap_weights[c]
            for t in range(0, len(offsets), TAPS_PER_PASS):
                w0, w1, w2, w3 = weights[t], weights[t + 1], weights[t + 2], weights[t + 3]
                x0, x1 = x_flat[offsets[t]:], x_flat[offsets[t + 1]:]
                x2, x3 = x_flat[offsets[t + 2]:], x_flat[offsets[t + 3]:]
                for u in range(L):
                    y_flat[u] += w0 * x0[u] + w1 * x1[u] + w2 * x2[u] + w3 * x3[u]
            crop_phases(y_flat, 0, 1, Ho, pitch, y[n, c])


def _taps_in_groups(w, stride, rows, pitch):
    """(tap_weights (C, T), offsets (T,)): the K*K taps in the order t = p*K + q, padded with
    weight-0 taps at offset 0 to a multiple T of TAPS_PER_PASS. A padded tap adds 0 * x = 0."""
    C, K = w.shape[:2]
    T = -(-K * K // TAPS_PER_PASS) * TAPS_PER_PASS
    tap_weights = np.zeros((C, T), w.dtype)
    tap_weights[:, :K * K] = w.reshape(C, K * K)
    offsets = np.zeros(T, np.int64)
    offsets[:K * K] = [tap_offset(p, q, stride, rows, pitch) for p in range(K) for q in range(K)]
    return tap_weights, offsets


@njit(parallel=True, fastmath=True, cache=True)
def _backward_kernel(dy, x, w, stride, padding, rows, pitch, n_chunks, dx, dw_per_image):
    # Same plane-parallel layout as the forward. One pass per tap computes both gradients:
    #   dx_flat[u + offset] += w[c, p, q] * dy_flat[u]          (the forward's loop, transposed)
    #   dw[n, c, p, q]      += dy_flat[u] * x_flat[u + offset]  (a dot product)
    # dy is copied to the same pitch with ZERO garbage columns, so they add nothing to either.
    # dw is summed per plane here (vectorised reduction in a fixed order) and over the batch
    # afterwards, in the order of n: no thread ever adds into another thread's output.
    N, C, H, W = x.shape
    K = w.shape[1]
    Ho, Wo = dy.shape[2], dy.shape[3]
    L = (Ho - 1) * pitch + Wo
    x_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    dx_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    dy_buffers = np.empty((n_chunks, Ho * pitch), x.dtype)
    for chunk in prange(n_chunks):
        x_flat, dx_flat, dy_flat = x_buffers[chunk], dx_buffers[chunk], dy_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, N * C)
        for plane in range(start, stop):
            n, c = plane // C, plane % C
            fill_phases(x[n, c], padding, stride, rows, pitch, x_flat)
            fill_phases(dy[n, c], 0, 1, Ho, pitch, dy_flat)
            dx_flat[:] = 0
            for p in range(K):
                for q in range(K):
                    weight = w[c, p, q]
                    offset = tap_offset(p, q, stride, rows, pitch)
                    x_tap, dx_tap = x_flat[offset:], dx_flat[offset:]
                    dw_sum = x.dtype.type(0)
                    for u in range(L):
                        dw_sum += dy_flat[u] * x_tap[u]
                        dx_tap[u] += weight * dy_flat[u]
                    dw_per_image[n, c, p, q] = dw_sum
            crop_phases(dx_flat, padding, stride, rows, pitch, dx[n, c])


def depthwise_conv2d_forward(x, w, *, stride=1, padding=0):
    """y[n, c, i, j] = sum_{p,q} w[c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs:
    - x: (N, C, H, W), C-contiguous float32 or float64
    - w: (C, K, K), same dtype
    - stride, padding: ints
    Returns y: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    N, C, H, W = x.shape
    K = w.shape[1]
    stride, padding = int(stride), int(padding)
    y = np.empty((N, C, output_size(H, K, stride, padding), output_size(W, K, stride, padding)), x.dtype)
    rows, pitch, n_chunks = buffer_geometry(H, W, padding, stride, N * C)
    _forward_kernel(x, *_taps_in_groups(w, stride, rows, pitch), stride, padding, rows, pitch, n_chunks, y)
    return y


def depthwise_conv2d_backward(dy, x, w, *, stride=1, padding=0):
    """Gradients of depthwise_conv2d_forward.

    dx[n, c, h, v] = sum of w[c, p, q] * dy[n, c, i, j] over the (i, j, p, q) whose window reads x[n, c, h, v]
    dw[c, p, q]    = sum_{n,i,j} dy[n, c, i, j] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs: dy (N, C, Ho, Wo); x, w, stride, padding as in the forward.
    Returns (dx, dw): (N, C, H, W) and (C, K, K).
    """
    N, C, H, W = x.shape
    K = w.shape[1]
    dx = np.empty_like(x)
    dw_per_image = np.empty((N, C, K, K), x.dtype)
    _backward_kernel(dy, x, w, int(stride), int(padding), *buffer_geometry(H, W, padding, stride, N * C),
                     dx, dw_per_image)
    # Sum over the batch in float64, always in the order n = 0, 1, ..., N-1: bitwise reproducible.
    return dx, dw_per_image.sum(axis=0, dtype=np.float64).astype(x.dtype)
