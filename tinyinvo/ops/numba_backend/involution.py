"""Involution as fused Numba kernels (no unfolded K*K-times copy of the input).

The "flat shifted rows" trick of lecture 5: each channel plane goes into a zero-padded
(polyphase) buffer with rows ``pitch`` apart, the output is computed at that pitch, and one tap
(p, q) is ONE long unit-stride loop over the flat output index u = i*pitch + j:

    y_flat[u] += kernel_flat[p, q, u] * x_flat[u + tap_offset(p, q)]

Unlike depthwise, the weight is not one number per tap but a whole (Ho, Wo)
plane per tap, generated for every pixel. So each thread first copies the kernel of its (n, g)
to the same pitch (``kernel_flat``, garbage columns zero) and reuses it for the C // G channels of
the group, which amortises the copy.

The forward adds three taps per pass over y_flat (``TAPS_PER_PASS``): one load and one store of
y_flat then serve three multiply-adds, and these loops are limited by their
loads and stores, not by the multiply-adds. (The backward cannot do the same: three taps' dx
slices overlap, so one pass would add into the same dx entries from different taps.)
"""

import numpy as np
from numba import njit, prange

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend.planes import buffer_geometry, crop_phases, fill_phases, split_tasks, tap_offset

TAPS_PER_PASS = 3   # taps added to y_flat in one pass over it (see _forward_kernel)


@njit(cache=True)
def _copy_kernel_to_pitch(kernel_ng, pitch, kernel_flat):
    """kernel_flat[p*K + q] <- kernel_ng[p, q] (Ho, Wo) at row pitch ``pitch``, garbage columns 0."""
    K, _, Ho, _ = kernel_ng.shape
    for p in range(K):
        for q in range(K):
            fill_phases(kernel_ng[p, q], 0, 1, Ho, pitch, kernel_flat[p * K + q])


@njit(parallel=True, fastmath=True, cache=True)
def _forward_kernel(x, kernel, stride, padding, rows, pitch, n_chunks, y):
    # Loop order: parallel over (n, g); each task writes the C // G output planes of its group,
    # no other thread touches them (deterministic). Per task the kernel is copied to the padded
    # pitch once, then for each channel, three taps at a time, one long loop over u that is
    # unit-stride in all seven arrays (y_flat, three kernel planes, three x slices): SIMD
    # multiply-adds, no allocation, call or branch. The K*K taps are padded to a multiple of three
    # with kernel planes of zeros (tap t = p*K + q reads x at offsets[t]; a padded tap at offset 0).
    N, C = x.shape[:2]
    G, K = kernel.shape[1], kernel.shape[2]
    Ho, Wo = y.shape[2], y.shape[3]
    Cg = C // G                                    # channels per group
    L = (Ho - 1) * pitch + Wo
    T = -(-K * K // TAPS_PER_PASS) * TAPS_PER_PASS
    offsets = np.zeros(T, np.int64)
    for t in range(K * K):
        offsets[t] = tap_offset(t // K, t % K, stride, rows, pitch)
    x_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    y_buffers = np.empty((n_chunks, Ho * pitch), x.dtype)
    kernel_buffers = np.zeros((n_chunks, T, Ho * pitch), x.dtype)   # planes K*K .. T-1 stay zero
    for chunk in prange(n_chunks):
        x_flat, y_flat, kernel_flat = x_buffers[chunk], y_buffers[chunk], kernel_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, N * G)
        for task in range(start, stop):
            n, g = task // G, task % G
            _copy_kernel_to_pitch(kernel[n, g], pitch, kernel_flat)
            for c in range(g * Cg, (g + 1) * Cg):
                fill_phases(x[n, c], padding, stride, rows, pitch, x_flat)
                y_flat[:] = 0
                for t in range(0, T, TAPS_PER_PASS):
                    w0, w1, w2 = kernel_flat[t], kernel_flat[t + 1], kernel_flat[t + 2]
                    x0, x1, x2 = x_flat[offsets[t]:], x_flat[offsets[t + 1]:], x_flat[offsets[t + 2]:]
                    for u in range(L):
                        y_flat[u] += w0[u] * x0[u] + w1[u] * x1[u] + w2[u] * x2[u]
                crop_phases(y_flat, 0, 1, Ho, pitch, y[n, c])


@njit(parallel=True, fastmath=True, cache=True)
def _backward_kernel(dy, x, kernel, stride, padding, rows, pitch, n_chunks, dx, dkernel):
    # Same (n, g)-parallel layout as the forward; a task owns dx of its C // G channels and
    # dkernel[n, g], so nothing is shared between threads. One pass per channel and tap:
    #   dkernel_flat[p, q, u] += dy_flat[u] * x_flat[u + offset]   (summed over the group's channels,
    #                                                                in channel order: deterministic)
    #   dx_flat[u + offset]   += kernel_flat[p, q, u] * dy_flat[u]
    # dy and the kernel are copied with ZERO garbage columns, so those add nothing to dx.
    N, C = x.shape[:2]
    G, K = kernel.shape[1], kernel.shape[2]
    Ho, Wo = dy.shape[2], dy.shape[3]
    Cg = C // G
    L = (Ho - 1) * pitch + Wo
    x_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    dx_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    dy_buffers = np.empty((n_chunks, Ho * pitch), x.dtype)
    kernel_buffers = np.empty((n_chunks, K * K, Ho * pitch), x.dtype)
    dkernel_buffers = np.empty((n_chunks, K * K, Ho * pitch), x.dtype)
    for chunk in prange(n_chunks):
        x_flat, dx_flat, dy_flat = x_buffers[chunk], dx_buffers[chunk], dy_buffers[chunk]
        kernel_flat, dkernel_flat = kernel_buffers[chunk], dkernel_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, N * G)
        for task in range(start, stop):
            n, g = task // G, task % G
            _copy_kernel_to_pitch(kernel[n, g], pitch, kernel_flat)
            dkernel_flat[:] = 0
            for c in range(g * Cg, (g + 1) * Cg):
                fill_phases(x[n, c], padding, stride, rows, pitch, x_flat)
                fill_phases(dy[n, c], 0, 1, Ho, pitch, dy_flat)
                dx_flat[:] = 0
                for p in range(K):
                    for q in range(K):
                        offset = tap_offset(p, q, stride, rows, pitch)
                        weights, dweights = kernel_flat[p * K + q], dkernel_flat[p * K + q]
                        x_tap, dx_tap = x_flat[offset:], dx_flat[offset:]
                        for u in range(L):
                            dweights[u] += dy_flat[u] * x_tap[u]
                            dx_tap[u] += weights[u] * dy_flat[u]
                crop_phases(dx_flat, padding, stride, rows, pitch, dx[n, c])
            for p in range(K):
                for q in range(K):
                    crop_phases(dkernel_flat[p * K + q], 0, 1, Ho, pitch, dkernel[n, g, p, q])


def involution_forward(x, kernel, *, stride=1, padding):
    """out[n, c, i, j] = sum_{p,q} kernel[n, g, p, q, i, j] * xpad[n, c, i*stride + p, j*stride + q],
    with g = c // (C // G).

    Inputs:
    - x: (N, C, H, W), C-contiguous float32 or float64
    - kernel: (N, G, K, K, Ho, Wo), same dtype; C divisible by G
    - stride: int; padding: int (the public op resolves None to (K - 1) // 2)
    Returns out: (N, C, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    N, C, H, W = x.shape
    G, K = kernel.shape[1:3]
    y = np.empty((N, C, output_size(H, K, stride, padding), output_size(W, K, stride, padding)), x.dtype)
    _forward_kernel(x, kernel, int(stride), int(padding), *buffer_geometry(H, W, padding, stride, N * G), y)
    return y


def involution_backward(dy, x, kernel, *, stride=1, padding):
    """Gradients of involution_forward.

    dkernel[n, g, p, q, i, j] = sum_{c in group g} dy[n, c, i, j] * xpad[n, c, i*stride + p, j*stride + q]
    dx[n, c, h, v] = sum of kernel[n, g, p, q, i, j] * dy[n, c, i, j] over the windows that read x[n, c, h, v]

    Inputs: dy (N, C, Ho, Wo); x, kernel, stride, padding as in the forward.
    Returns (dx, dkernel): (N, C, H, W) and (N, G, K, K, Ho, Wo).
    """
    N, C, H, W = x.shape
    G = kernel.shape[1]
    dx = np.empty_like(x)
    dkernel = np.empty_like(kernel)
    _backward_kernel(dy, x, kernel, int(stride), int(padding), *buffer_geometry(H, W, padding, stride, N * G),
                     dx, dkernel)
    return dx, dkernel
