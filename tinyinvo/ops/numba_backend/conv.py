"""Dense 2-D convolution: a Numba im2col / col2im around a BLAS matrix product.

A dense convolution mixes every input channel into every output channel, so most of its work is
a matrix product, and no hand-written loop beats the BLAS library that ``np.matmul`` calls.
Numba does the data movement around it, fast and in parallel:

- forward:  cols = im2col(x), (Ci*K*K, B*Ho*pitch) for a batch of B images; then y = w_matrix @ cols
- backward: dw = sum over batches of dy @ cols.T (in batch order); dcols = w_matrix.T @ dy;
            dx = col2im(dcols)

Images go through in small batches so that ``cols`` (K*K times the size of x) stays in cache and
the memory use stays bounded.

Rows at the pitch (lecture 5's flat-row trick): each image plane goes into a zero-padded phase
buffer (see ``planes``) whose rows are ``pitch`` >= Wo entries apart. A cols row holds the tap's
output rows at that pitch, Ho*pitch entries, so im2col copies each tap in ONE contiguous run
instead of Ho short ones. The last pitch - Wo columns of each output row are garbage (they see
pixels of the next row): the forward crops them from y, and the backward gives them dy = 0, so
they add exactly nothing to dw or dx. The price is (pitch - Wo) / Wo more matrix-product work.

A 1x1 convolution without padding needs no im2col at all: it IS one matrix product per image, of
the input's every stride-th pixel (the projection shortcuts of a ResNet are 1x1 convs with stride
2), so it takes that path directly.
"""

import numpy as np
from numba import njit, prange

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend.planes import buffer_geometry, crop_phases, fill_phases, split_tasks, tap_offset

# Entries of the im2col buffer, which sets the images per batch: 2 MiB in float32, about what the
# L2 caches of a small machine hold, so that col2im reads the dcols that the matrix product just
# wrote while they are still in cache. Larger budgets spill to memory, smaller ones make BLAS
# calls too small to run at full speed (benchmarks/bench_ops.py times the convs).
COLS_BUDGET = 1 << 19


@njit(parallel=True, fastmath=True, cache=True)
def _im2col_kernel(x, K, stride, padding, rows, pitch, plane_size, width, n_chunks, cols):
    # cols[(c*K + p)*K + q, n, i*pitch + j] = xpad[n, c, i*stride + p, j*stride + q] for j < Wo
    # (and a pixel of the next row for Wo <= j < pitch: the garbage columns)
    # Parallel over planes (n, c); each writes only its own K*K rows of cols (deterministic).
    # In the phase buffer tap (p, q) reads ``width`` = Ho*pitch consecutive entries, so the
    # innermost loop is one long unit-stride copy with no bounds test, no call and no allocation.
    B, Ci = x.shape[:2]
    x_buffers = np.empty((n_chunks, plane_size), x.dtype)
    for chunk in prange(n_chunks):
        x_flat = x_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, B * Ci)
        for plane in range(start, stop):
            n, c = plane // Ci, plane % Ci
            fill_phases(x[n, c], padding, stride, rows, pitch, x_flat)
            for p in range(K):
                for q in range(K):
                    source = x_flat[tap_offset(p, q, stride, rows, pitch):]
                    target = cols[(c * K + p) * K + q, n]
                    for t in range(width):
                        target[t] = source[t]


@njit(parallel=True, fastmath=True, cache=True)
def _col2im_kernel(dcols, K, stride, padding, rows, pitch, plane_size, width, n_chunks, dx):
    # The adjoint of im2col: dxpad[n, c, i*stride + p, j*stride + q] += dcols[(c*K + p)*K + q, n, i*pitch + j]
    # (the garbage columns of dcols are exactly 0, so they change nothing)
    # Parallel over planes (n, c): a pixel only receives from its own plane's rows of dcols, and
    # one thread adds them in a fixed (p, q) order, so the sums are bitwise reproducible.
    B, Ci = dx.shape[:2]
    dx_buffers = np.empty((n_chunks, plane_size), dx.dtype)
    for chunk in prange(n_chunks):
        dx_flat = dx_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, B * Ci)
        for plane in range(start, stop):
            n, c = plane // Ci, plane % Ci
            dx_flat[:] = 0
            for p in range(K):
                for q in range(K):
                    target = dx_flat[tap_offset(p, q, stride, rows, pitch):]
                    source = dcols[(c * K + p) * K + q, n]
                    for t in range(width):
                        target[t] += source[t]
            crop_phases(dx_flat, padding, stride, rows, pitch, dx[n, c])


class _Unfold:
    """The geometry of one conv2d call, and im2col / col2im on a batch of images.

    ``cols`` has the layout (Ci*K*K, B, Ho*pitch): the B images of a batch side by side, so that
    one matrix product per batch does the work of B (BLAS is most efficient on large matrices),
    each output row ``pitch`` wide (Wo real columns, then pitch - Wo garbage ones).
    """

    def __init__(self, x_shape, K, stride, padding):
        N, Ci, H, W = x_shape
        self.H, self.W, self.Ci, self.K, self.stride, self.padding = H, W, Ci, K, int(stride), int(padding)
        self.Ho, self.Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
        self.rows, self.pitch, _ = buffer_geometry(H, W, self.padding, self.stride, 1)
        self.width = self.Ho * self.pitch                     # entries per image in a cols row
        # the phase buffer, plus room for the last tap's garbage columns past its end
        last_tap_end = tap_offset(K - 1, K - 1, self.stride, self.rows, self.pitch) + self.width
        self.plane_size = max(self.stride**2 * self.rows * self.pitch, last_tap_end)
        self.batch = max(1, min(N, COLS_BUDGET // (Ci * K * K * self.width)))

    def buffer(self, dtype):
        """A flat buffer big enough for the cols of one batch."""
        return np.empty(self.Ci * self.K * self.K * self.batch * self.width, dtype)

    def cols(self, buffer, images):
        """The first part of ``buffer`` as a contiguous (Ci*K*K, images, Ho*pitch) array."""
        rows = self.Ci * self.K * self.K
        return buffer[:rows * images * self.width].reshape(rows, images, self.width)

    def crop(self, y_wide, images):
        """(Co, images*Ho*pitch) product -> (images, Co, Ho, Wo) view without the garbage columns."""
        Co = y_wide.shape[0]
        return y_wide.reshape(Co, images, self.Ho, self.pitch)[:, :, :, :self.Wo].transpose(1, 0, 2, 3)

    def dy_buffer(self, Co, dtype):
        """A zeroed flat buffer for the wide dy of one batch. Only the first Wo columns of each row
        are ever written, at the same flat positions for any batch size, so the garbage
        columns stay 0."""
        return np.zeros(Co * self.batch * self.width, dtype)

    def widen(self, buffer, dy_batch):
        """dy_batch (B, Co, Ho, Wo) -> (Co, B*Ho*pitch) in the column order of cols, 0 in the
        garbage columns."""
        B, Co = dy_batch.shape[:2]
        dy_wide = buffer[:Co * B * self.width].reshape(Co, B, self.Ho, self.pitch)
        dy_wide[:, :, :, :self.Wo] = dy_batch.transpose(1, 0, 2, 3)
        return dy_wide.reshape(Co, B * self.width)

    def _args(self, images):
        n_chunks = buffer_geometry(self.H, self.W, self.padding, self.stride, images * self.Ci)[2]
        return self.K, self.stride, self.padding, self.rows, self.pitch, self.plane_size, self.width, n_chunks

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
    buffer = unfold.buffer(x.dtype)
    for start, stop in _batches(N, unfold.batch):
        cols = unfold.cols(buffer, stop - start)              # (Ci*K*K, B, Ho*pitch)
        unfold.im2col(x[start:stop], cols)
        y_wide = w_matrix @ cols.reshape(cols.shape[0], -1)   # (Co, B*Ho*pitch): one BLAS call
        y[start:stop] = unfold.crop(y_wide, stop - start)
    return y


def conv2d_backward(dy, x, w, *, stride=1, padding=0):
    """Gradients of conv2d_forward.

    dw[o, c, p, q] = sum_{n,i,j} dy[n, o, i, j] * xpad[n, c, i*stride + p, j*stride + q]
    dx = col2im(w_matrix.T @ dy): each window's gradient added back onto the pixels it read.

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
    dw_matrix_t = np.zeros_like(w_matrix.T)   # dw as (Ci*K*K, Co): see below
    buffer, dy_buffer = unfold.buffer(x.dtype), unfold.dy_buffer(Co, x.dtype)
    for start, stop in _batches(N, unfold.batch):
        cols = unfold.cols(buffer, stop - start)
        unfold.im2col(x[start:stop], cols)
        dy_wide = unfold.widen(dy_buffer, dy[start:stop])           # (Co, B*Ho*pitch), like cols
        # dw.T = cols @ dy_wide.T: the same sums as dy_wide @ cols.T, but with the big matrix as
        # the row-major left operand, which BLAS runs up to twice as fast when Co is small
        dw_matrix_t += cols.reshape(cols.shape[0], -1) @ dy_wide.T  # batches added in order
        dcols = (w_matrix.T @ dy_wide).reshape(cols.shape)          # (Ci*K*K, B, Ho*pitch)
        unfold.col2im(dcols, dx[start:stop])
    return dx, dw_matrix_t.T.reshape(w.shape)
