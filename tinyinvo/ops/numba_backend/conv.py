"""Dense 2-D convolution: a Numba im2col / col2im around a BLAS matrix product.

A dense convolution mixes every input channel into every output channel, so most of its work is
a matrix product, and no hand-written loop beats the BLAS library that ``np.matmul`` calls.
Numba does the data movement around it:

- forward:  cols = im2col(x), (B*Ho*Wo, K*K*Ci) for a batch of B images; then y = cols @ w_cols
- backward: dw = sum over batches of cols.T @ dy (in batch order); dcols = dy @ w_cols.T;
            dx = col2im(dcols)

where w_cols is w as a (K*K*Ci, Co) matrix, rows in the (p, q, c) order of a cols row. The
products come out channels last, a row per output pixel, and y (dy) is transposed from (to) that
layout per image. Every product keeps the tall matrices, with a row per output pixel (cols, dy),
on its left: the shape that BLAS runs fastest when Co is small.

Images go through in small batches so that ``cols`` (K*K times the size of x) stays in cache and
the memory use stays bounded. The batches are the pieces of work that the threads share
(team.py): one thread does a batch's im2col, products and col2im, with BLAS on one thread, and
the batches' dw come back to be added in batch order. The batches are of equal size, and a
multiple of 4 of them (team.even_batches): otherwise one thread could be left with a batch more.

Channels last: a row of cols is the window under one output pixel. Each image is first copied
into a zero-padded, channels-last buffer, (H + 2*padding, (W + 2*padding)*Ci): there, the K taps
(q, c) of window row p are K*Ci CONSECUTIVE entries, for any stride. So im2col is K long
unit-stride copies per output pixel, with no test for the border (the padding supplies the
zeros), and col2im the same loops adding instead of copying. In the channels-first layout the
runs would be only Wo long (4 entries for a 4x4 output), and the loop overhead would dominate.

A 1x1 convolution without padding needs no im2col at all: it IS one matrix product per image, of
the input's every stride-th pixel (the projection shortcuts of a ResNet are 1x1 convs with stride
2), so it takes that path directly, POINTWISE_IMAGES images to a piece of work.
"""

import numpy as np
from numba import njit

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend import team

# Entries of the im2col buffer, which caps the images per batch: 2 MiB in float32, about what the
# L2 caches of a small machine hold, so that col2im reads the dcols that the matrix product just
# wrote while they are still in cache. Larger budgets spill to memory, smaller ones make BLAS
# calls too small to run at full speed (benchmarks/bench_ops.py times the convs).
COLS_BUDGET = 1 << 19

# Channels moved to or from the channels-last layout at a time (see _move_channels_last).
CHANNEL_BLOCK = 16

# Images per piece of work of a 1x1 conv (team.py): enough pieces for the threads to share them
# evenly, few enough that handing them out costs nothing next to the products.
POINTWISE_IMAGES = 8


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


@njit(nogil=True, fastmath=True, cache=True)
def _im2col_kernel(x, K, stride, padding, Ho, Wo, cols):
    # cols[(n*Ho + i)*Wo + j, (p*K + q)*Ci + c] = xpad[n, c, i*stride + p, j*stride + q]
    B, Ci, H, W = x.shape
    run = K * Ci                                    # taps (q, c) of one window row p
    xpad = np.empty((H + 2 * padding, (W + 2 * padding) * Ci), x.dtype)
    for n in range(B):
        xpad[:] = 0
        _move_channels_last(x[n], xpad, padding, True)
        for i in range(Ho):
            for j in range(Wo):
                row = cols[(n * Ho + i) * Wo + j]
                for p in range(K):
                    window, target = xpad[i * stride + p, j * stride * Ci:], row[p * run:]
                    for t in range(run):
                        target[t] = window[t]


@njit(nogil=True, fastmath=True, cache=True)
def _col2im_kernel(dcols, K, stride, padding, Ho, Wo, dx):
    # The adjoint of im2col:
    # dxpad[n, c, i*stride + p, j*stride + q] += dcols[(n*Ho + i)*Wo + j, (p*K + q)*Ci + c]
    # A pixel only receives from its own image's rows of dcols, added in a fixed (i, j, p) order.
    B, Ci, H, W = dx.shape
    run = K * Ci
    dxpad = np.empty((H + 2 * padding, (W + 2 * padding) * Ci), dx.dtype)
    for n in range(B):
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
    """The geometry of one conv2d call, its batches of images, and im2col / col2im on a batch.

    ``cols`` is a (B*Ho*Wo, K*K*Ci) matrix: the windows of the B images of a batch one under the
    other, so that one matrix product per batch does the work of B (BLAS is most efficient on
    large matrices). A batch is a piece of work for the team (team.py): one thread does its
    im2col, its products and its col2im.
    """

    def __init__(self, x_shape, K, stride, padding):
        N, Ci, H, W = x_shape
        self.K, self.stride, self.padding = K, int(stride), int(padding)
        self.Ho, self.Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
        self.pixels = self.Ho * self.Wo                       # output pixels = rows of cols per image
        largest = max(1, COLS_BUDGET // (Ci * K * K * self.pixels))     # images whose cols fit the budget
        self.batches = team.even_batches(N, largest)

    def im2col(self, x_batch):
        """The (B*Ho*Wo, K*K*Ci) cols of a batch x_batch (B, Ci, H, W)."""
        B, Ci = x_batch.shape[:2]
        cols = np.empty((B * self.pixels, self.K * self.K * Ci), x_batch.dtype)
        _im2col_kernel(x_batch, self.K, self.stride, self.padding, self.Ho, self.Wo, cols)
        return cols

    def col2im(self, dcols, dx_batch):
        """dx_batch (B, Ci, H, W) <- the windows' gradients dcols (B*Ho*Wo, K*K*Ci) added back."""
        _col2im_kernel(dcols, self.K, self.stride, self.padding, self.Ho, self.Wo, dx_batch)


def _is_pointwise(K, padding):
    return K == 1 and padding == 0


def _sampled(x, start, stop, stride):
    """Images start..stop-1 of x at every stride-th pixel, as (B, Ci, Ho*Wo) matrices (a view if stride is 1)."""
    x_sampled = np.ascontiguousarray(x[start:stop, :, ::stride, ::stride])
    return x_sampled.reshape(stop - start, x.shape[1], x_sampled.shape[2] * x_sampled.shape[3])


def _pointwise_forward(x, w_matrix, stride):
    """1x1 conv: y[n] = w_matrix @ x[n, :, ::stride, ::stride] as one (Ci, Ho*Wo) matrix per image."""
    N, Ci, H, W = x.shape
    Ho, Wo = output_size(H, 1, stride, 0), output_size(W, 1, stride, 0)
    y = np.empty((N, len(w_matrix), Ho * Wo), x.dtype)

    def forward_images(images):
        start, stop = images
        np.matmul(w_matrix, _sampled(x, start, stop, stride), out=y[start:stop])

    team.run_pieces(forward_images, team.batches(N, POINTWISE_IMAGES))
    return y.reshape(N, len(w_matrix), Ho, Wo)


def _pointwise_backward(dy, x, w_matrix, stride):
    """Gradients of _pointwise_forward: dw = sum_n dy[n] @ x_sampled[n].T, dx_sampled[n] = w.T @ dy[n],
    and dx is dx_sampled on the sampled pixels, zero on the others (which the conv never read)."""
    N, Co, Ho, Wo = dy.shape
    dy_matrices = dy.reshape(N, Co, Ho * Wo)
    dx = np.empty_like(x)

    def backward_images(images):
        start, stop = images
        x_matrices = _sampled(x, start, stop, stride)
        dw_matrix = np.zeros_like(w_matrix)
        for n in range(start, stop):                          # in image order
            dw_matrix += dy_matrices[n] @ x_matrices[n - start].T
        if stride == 1:                                       # dx_sampled is dx: write it in place
            np.matmul(w_matrix.T, dy_matrices[start:stop], out=dx[start:stop].reshape(x_matrices.shape))
        else:
            dx[start:stop] = 0
            dx[start:stop, :, ::stride, ::stride] = np.matmul(w_matrix.T, dy_matrices[start:stop]).reshape(
                stop - start, -1, Ho, Wo)
        return dw_matrix

    dw_matrix = _add_in_order(team.run_pieces(backward_images, team.batches(N, POINTWISE_IMAGES)), w_matrix)
    return dx, dw_matrix


def _add_in_order(parts, like):
    """0 + parts[0] + parts[1] + ..., in that order: the same bits whichever thread made which part."""
    total = np.zeros_like(like)
    for part in parts:
        total += part
    return total


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
    if _is_pointwise(K, padding):             # 1x1: y[n] = w_matrix @ x[n], nothing to unfold
        return _pointwise_forward(x, w.reshape(Co, Ci), stride)
    unfold = _Unfold(x.shape, K, stride, padding)
    y = np.empty((N, Co, unfold.Ho, unfold.Wo), x.dtype)
    w_cols = _w_cols(w)

    def forward_batch(batch):
        start, stop = batch
        y_rows = unfold.im2col(x[start:stop]) @ w_cols          # (B*Ho*Wo, Co): one BLAS call
        y[start:stop] = y_rows.reshape(stop - start, unfold.Ho, unfold.Wo, Co).transpose(0, 3, 1, 2)

    team.run_pieces(forward_batch, unfold.batches)
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
    if _is_pointwise(K, padding):
        dx, dw_matrix = _pointwise_backward(dy, x, w.reshape(Co, Ci), stride)
        return dx, dw_matrix.reshape(w.shape)
    unfold = _Unfold(x.shape, K, stride, padding)
    dx = np.empty_like(x)
    w_cols = _w_cols(w)

    def backward_batch(batch):
        start, stop = batch
        cols = unfold.im2col(x[start:stop])                     # (B*Ho*Wo, K*K*Ci)
        dy_rows = np.ascontiguousarray(dy[start:stop].transpose(0, 2, 3, 1)).reshape(-1, Co)
        dw_cols = cols.T @ dy_rows                              # (K*K*Ci, Co); dy_rows: rows as in cols
        np.matmul(dy_rows, w_cols.T, out=cols)                  # dcols, in place of cols
        unfold.col2im(cols, dx[start:stop])
        return dw_cols

    dw_cols = _add_in_order(team.run_pieces(backward_batch, unfold.batches), w_cols)
    return dx, _w_from_cols(dw_cols, w.shape)
