"""Dense 2-D convolution: a Numba im2col / col2im around a BLAS matrix product.

A dense convolution mixes every input channel into every output channel, so most of its work is
a matrix product, and no hand-written loop beats the BLAS library that ``np.matmul`` calls.
Numba does the data movement around it, fast and in parallel:

- forward:  cols = im2col(x), (B*Ho*Wo, K*K*Ci) for a batch of B images; then y = cols @ w_cols
- backward: dw = sum over batches of cols.T @ dy (in batch order); dcols = dy @ w_cols.T;
            dx = col2im(dcols)

where w_cols is w as a (K*K*Ci, Co) matrix, rows in the (p, q, c) order of a cols row. The
products come out channels last, a row per output pixel, and y (dy) is transposed from (to) that
layout per image. Every product keeps the tall matrices, with a row per output pixel (cols, dy),
on its left: the shape that BLAS runs fastest when Co is small.

Images go through in small batches so that ``cols`` (K*K times the size of x) stays in cache and
the memory use stays bounded.

Channels last: a row of cols is the window under one output pixel. Each image is first copied
into a zero-padded, channels-last buffer, (H + 2*padding, (W + 2*padding)*Ci): there, the K taps
(q, c) of window row p are K*Ci CONSECUTIVE entries, for any stride. So im2col is K long
unit-stride copies per output pixel, with no test for the border (the padding supplies the
zeros), and col2im the same loops adding instead of copying. In the channels-first layout the
runs would be only Wo long (4 entries for a 4x4 output), and the loop overhead would dominate.

A 1x1 convolution without padding needs no im2col at all: it IS one matrix product per image, of
the input's every stride-th pixel (the projection shortcuts of a ResNet are 1x1 convs with stride
2), so it takes that path directly.
"""

import numpy as np
from numba import get_num_threads, njit, prange

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend.planes import split_tasks

# Entries of the im2col buffer, which sets the images per batch: 2 MiB in float32, about what the
# L2 caches of a small machine hold, so that col2im reads the dcols that the matrix product just
# wrote while they are still in cache. Larger budgets spill to memory, smaller ones make BLAS
# calls too small to run at full speed (benchmarks/bench_ops.py times the convs).
COLS_BUDGET = 1 << 19

# Channels moved to or from the channels-last layout at a time (see _move_channels_last).
CHANNEL_BLOCK = 16


@njit(cache=True)
def _move_channels_last(image, padded, padding, into_padded):
    # padded[h + padding, (w + padding)*Ci + c] = image[c, h, w] when into_padded, else back:
    # image[c, h, w] = padded[h + padding, (w + padding)*Ci + c] (the border is left alone).
    # CHANNEL_BLOCK channels at a time: image rows (c, h) and (c + 1, h) lie a whole plane apart,
    # and going through all Ci of them for each h would keep Ci far-apart memory streams in flight
    # at once, which the prefetcher and the TLB cannot follow when Ci is large.
    Ci, H, W = image.shape
    for c0 in range(0, Ci, CHANNEL_BLOCK):
        for h in range(H):
            for c in range(c0, min(Ci, c0 + CHANNEL_BLOCK)):
                plane_row, padded_row = image[c, h], padded[h + padding, padding * Ci + c:]
                if into_padded:
                    for w in range(W):
                        padded_row[w * Ci] = plane_row[w]
                else:
                    for w in range(W):
                        plane_row[w] = padded_row[w * Ci]


@njit(parallel=True, fastmath=True, cache=True)
def _im2col_kernel(x, K, stride, padding, Ho, Wo, n_chunks, cols):
    # cols[(n*Ho + i)*Wo + j, (p*K + q)*Ci + c] = xpad[n, c, i*stride + p, j*stride + q]
    # Parallel over images; each writes only its own Ho*Wo rows of cols (deterministic).
    B, Ci, H, W = x.shape
    run = K * Ci                                    # taps (q, c) of one window row p
    padded = np.empty((n_chunks, H + 2 * padding, (W + 2 * padding) * Ci), x.dtype)
    for chunk in prange(n_chunks):
        xpad = padded[chunk]
        start, stop = split_tasks(chunk, n_chunks, B)
        for n in range(start, stop):
            xpad[:] = 0
            _move_channels_last(x[n], xpad, padding, True)
            for i in range(Ho):
                for j in range(Wo):
                    row = cols[(n * Ho + i) * Wo + j]
                    for p in range(K):
                        window, target = xpad[i * stride + p, j * stride * Ci:], row[p * run:]
                        for t in range(run):
                            target[t] = window[t]


@njit(parallel=True, fastmath=True, cache=True)
def _col2im_kernel(dcols, K, stride, padding, Ho, Wo, n_chunks, dx):
    # The adjoint of im2col:
    # dxpad[n, c, i*stride + p, j*stride + q] += dcols[(n*Ho + i)*Wo + j, (p*K + q)*Ci + c]
    # Parallel over images: a pixel only receives from its own image's rows of dcols, and one
    # thread adds them in a fixed (i, j, p) order, so the sums are bitwise reproducible.
    B, Ci, H, W = dx.shape
    run = K * Ci
    padded = np.empty((n_chunks, H + 2 * padding, (W + 2 * padding) * Ci), dx.dtype)
    for chunk in prange(n_chunks):
        dxpad = padded[chunk]
        start, stop = split_tasks(chunk, n_chunks, B)
        for n in range(start, stop):
            dxpad[:] = 0
            for i in range(Ho):
                for j in range(Wo):
                    row = dcols[(n * Ho + i) * Wo + j]
                    for p in range(K):
                        window, source = dxpad[i * stride + p, j * stride * Ci:], row[p * run:]
                        for t in range(run):
                            window[t] += source[t]
            _move_channels_last(dx[n], dxpad, padding, False)


class _Unfold:
    """The geometry of one conv2d call, and im2col / col2im on a batch of images.

    ``cols`` is a (B*Ho*Wo, K*K*Ci) matrix: the windows of the B images of a batch one under the
    other, so that one matrix product per batch does the work of B (BLAS is most efficient on
    large matrices).
    """

    def __init__(self, x_shape, K, stride, padding):
        N, Ci, H, W = x_shape
        self.K, self.stride, self.padding = K, int(stride), int(padding)
        self.Ho, self.Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
        self.pixels = self.Ho * self.Wo                       # output pixels = rows of cols per image
        self.batch = max(1, min(N, COLS_BUDGET // (Ci * K * K * self.pixels)))

    def buffer(self, columns, dtype):
        """A buffer for a (B*Ho*Wo, columns) matrix of one batch."""
        return np.empty((self.batch * self.pixels, columns), dtype)

    def matrix(self, buffer, images):
        """The (images*Ho*Wo, columns) matrix of a batch of ``images`` in ``buffer`` (a view)."""
        return buffer[:images * self.pixels]

    def _args(self, images):
        return self.K, self.stride, self.padding, self.Ho, self.Wo, min(get_num_threads(), images)

    def im2col(self, x_batch, cols):
        _im2col_kernel(x_batch, *self._args(x_batch.shape[0]), cols)

    def col2im(self, dcols, dx_batch):
        _col2im_kernel(dcols, *self._args(dx_batch.shape[0]), dx_batch)


def _is_pointwise(K, padding):
    return K == 1 and padding == 0


def _pointwise_forward(x, w_matrix, stride):
    """1x1 conv: y[n] = w_matrix @ x[n, :, ::stride, ::stride] as one (Ci, Ho*Wo) matrix per image."""
    x_sampled = np.ascontiguousarray(x[:, :, ::stride, ::stride])
    N, Ci, Ho, Wo = x_sampled.shape
    return np.matmul(w_matrix, x_sampled.reshape(N, Ci, Ho * Wo)).reshape(N, len(w_matrix), Ho, Wo)


def _pointwise_backward(dy_matrices, x, w_matrix, stride):
    """Gradients of _pointwise_forward: dw = sum_n dy[n] @ x_sampled[n].T, dx_sampled[n] = w.T @ dy[n],
    and dx is dx_sampled on the sampled pixels, zero on the others (which the conv never read)."""
    x_sampled = np.ascontiguousarray(x[:, :, ::stride, ::stride])
    N, Ci = x.shape[:2]
    x_matrices = x_sampled.reshape(N, Ci, dy_matrices.shape[2])
    dw_matrix = np.zeros_like(w_matrix)
    for n in range(N):                           # a fixed order of n: bitwise reproducible
        dw_matrix += dy_matrices[n] @ x_matrices[n].T
    dx_sampled = np.matmul(w_matrix.T, dy_matrices).reshape(x_sampled.shape)
    if stride == 1:
        return dx_sampled, dw_matrix
    dx = np.zeros_like(x)
    dx[:, :, ::stride, ::stride] = dx_sampled
    return dx, dw_matrix


def _batches(N, batch):
    """(start, stop) of consecutive batches of at most ``batch`` images."""
    return [(start, min(N, start + batch)) for start in range(0, N, batch)]


def _w_cols(w):
    """w (Co, Ci, K, K) as the (K*K*Ci, Co) matrix whose rows follow a cols row: (p, q, c)."""
    Co, Ci, K, _ = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(K * K * Ci, Co)


def _w_from_cols(w_cols, shape):
    """The inverse of _w_cols: (K*K*Ci, Co) -> a contiguous (Co, Ci, K, K)."""
    Co, Ci, K, _ = shape
    return np.ascontiguousarray(w_cols.reshape(K, K, Ci, Co).transpose(3, 2, 0, 1))


def conv2d_forward(x, w, *, stride=1, padding=0):
    """y[n, o, i, j] = sum_{c,p,q} w[o, c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs:
    - x: (N, Ci, H, W), C-contiguous float32 or float64
    - w: (Co, Ci, K, K), same dtype
    - stride, padding: ints
    Returns y: (N, Co, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    N, Ci, H, W = x.shape
    Co, _, K, _ = w.shape
    w_matrix = w.reshape(Co, Ci * K * K)
    if _is_pointwise(K, padding):             # 1x1: y[n] = w_matrix @ x[n], nothing to unfold
        return _pointwise_forward(x, w_matrix, stride)
    unfold = _Unfold(x.shape, K, stride, padding)
    y = np.empty((N, Co, unfold.Ho, unfold.Wo), x.dtype)
    w_cols = _w_cols(w)
    cols_buffer, y_buffer = unfold.buffer(K * K * Ci, x.dtype), unfold.buffer(Co, x.dtype)
    for start, stop in _batches(N, unfold.batch):
        images = stop - start
        cols = unfold.matrix(cols_buffer, images)             # (B*Ho*Wo, K*K*Ci)
        unfold.im2col(x[start:stop], cols)
        y_batch = unfold.matrix(y_buffer, images)             # (B*Ho*Wo, Co): one BLAS call
        np.matmul(cols, w_cols, out=y_batch)
        y[start:stop] = y_batch.reshape(images, unfold.Ho, unfold.Wo, Co).transpose(0, 3, 1, 2)
    return y


def conv2d_backward(dy, x, w, *, stride=1, padding=0):
    """Gradients of conv2d_forward.

    dw[o, c, p, q] = sum_{n,i,j} dy[n, o, i, j] * xpad[n, c, i*stride + p, j*stride + q]
    dx = col2im(dy @ w_cols.T): each window's gradient added back onto the pixels it read.

    Inputs: dy (N, Co, Ho, Wo); x, w, stride, padding as in the forward.
    Returns (dx, dw): (N, Ci, H, W) and (Co, Ci, K, K).
    """
    N, Ci, H, W = x.shape
    Co, _, K, _ = w.shape
    w_matrix = w.reshape(Co, Ci * K * K)
    if _is_pointwise(K, padding):
        dy_matrices = dy.reshape(N, Co, dy.shape[2] * dy.shape[3])   # (N, Co, Ho*Wo)
        dx, dw_matrix = _pointwise_backward(dy_matrices, x, w_matrix, stride)
        return dx, dw_matrix.reshape(w.shape)
    unfold = _Unfold(x.shape, K, stride, padding)
    dx = np.empty_like(x)
    w_cols = _w_cols(w)
    dw_cols = np.zeros_like(w_cols)
    cols_buffer, dy_buffer = unfold.buffer(K * K * Ci, x.dtype), unfold.buffer(Co, x.dtype)
    for start, stop in _batches(N, unfold.batch):
        images = stop - start
        cols = unfold.matrix(cols_buffer, images)             # (B*Ho*Wo, K*K*Ci)
        unfold.im2col(x[start:stop], cols)
        dy_batch = unfold.matrix(dy_buffer, images)           # (B*Ho*Wo, Co), rows as in cols
        dy_batch.reshape(images, -1, Co)[:] = dy[start:stop].reshape(images, Co, -1).transpose(0, 2, 1)
        dw_cols += cols.T @ dy_batch                          # batches added in order
        np.matmul(dy_batch, w_cols.T, out=cols)               # dcols, in place of cols
        unfold.col2im(cols, dx[start:stop])
    return dx, _w_from_cols(dw_cols, w.shape)
