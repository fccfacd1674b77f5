"""Dense 2-D convolution: a Numba im2col / col2im around a BLAS matrix product.

A dense convolution mixes every input channel into every output channel, so most of its work is
a matrix product, and no hand-written loop beats the BLAS library that ``np.matmul`` calls.
Numba does the data movement around it, fast and in parallel:

- forward:  cols = im2col(x), (Ci*K*K, B*Ho*Wo) for a batch of B images; then y = w_matrix @ cols
- backward: dw = sum over batches of dy @ cols.T (in batch order); dcols = w_matrix.T @ dy;
            dx = col2im(dcols)

Images go through in small batches so that ``cols`` (K*K times the size of x) stays in cache and
the memory use stays bounded. A 1x1 convolution without padding needs no im2col at all: it IS
one matrix product per image, of the input's every stride-th pixel (the projection shortcuts of a
ResNet are 1x1 convs with stride 2), so it takes that path directly.
"""

import numpy as np
from numba import njit, prange

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend.planes import buffer_geometry, crop_phases, fill_phases, split_tasks, tap_offset

# Entries of the im2col buffer, which sets the images per batch: 2 MiB in float32, the two L2 caches
# of this machine together, so that col2im reads the dcols that the matrix product just wrote while they are
# still in cache. Measured on the six 3x3 convs of resnet26 at width 16 (batch 128, 2 threads): the
# backward pass takes 89 ms in all with 2 MiB, 136-155 ms with 16 MiB, 92-96 ms with 1 MiB.
COLS_BUDGET = 1 << 19


@njit(parallel=True, fastmath=True, cache=True)
def _im2col_kernel(x, K, stride, padding, rows, pitch, Ho, Wo, n_chunks, cols):
    # cols[(c*K + p)*K + q, n, i*Wo + j] = xpad[n, c, i*stride + p, j*stride + q]
    # Parallel over planes (n, c); each writes only its own K*K rows of cols (deterministic).
    # The plane is first put into a zero-padded phase buffer, so the innermost loop, one output
    # row, is a unit-stride copy over j with no bounds test, no call and no allocation.
    B, Ci = x.shape[:2]
    x_buffers = np.empty((n_chunks, stride * stride * rows * pitch), x.dtype)
    for chunk in prange(n_chunks):
        x_flat = x_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, B * Ci)
        for plane in range(start, stop):
            n, c = plane // Ci, plane % Ci
            fill_phases(x[n, c], padding, stride, rows, pitch, x_flat)
            for p in range(K):
                for q in range(K):
                    x_tap = x_flat[tap_offset(p, q, stride, rows, pitch):]
                    col_row = cols[(c * K + p) * K + q, n]
                    for i in range(Ho):
                        source, target = x_tap[i * pitch:], col_row[i * Wo:]
                        for j in range(Wo):
                            target[j] = source[j]


@njit(parallel=True, fastmath=True, cache=True)
def _col2im_kernel(dcols, K, stride, padding, rows, pitch, Ho, Wo, n_chunks, dx):
    # The adjoint of im2col: dxpad[n, c, i*stride + p, j*stride + q] += dcols[(c*K + p)*K + q, n, i*Wo + j]
    # Parallel over planes (n, c): a pixel only receives from its own plane's rows of dcols, and
    # one thread adds them in a fixed (p, q, i) order, so the sums are bitwise reproducible.
    B, Ci = dx.shape[:2]
    dx_buffers = np.empty((n_chunks, stride * stride * rows * pitch), dx.dtype)
    for chunk in prange(n_chunks):
        dx_flat = dx_buffers[chunk]
        start, stop = split_tasks(chunk, n_chunks, B * Ci)
        for plane in range(start, stop):
            n, c = plane // Ci, plane % Ci
            dx_flat[:] = 0
            for p in range(K):
                for q in range(K):
                    dx_tap = dx_flat[tap_offset(p, q, stride, rows, pitch):]
                    dcol_row = dcols[(c * K + p) * K + q, n]
                    for i in range(Ho):
                        source, target = dcol_row[i * Wo:], dx_tap[i * pitch:]
                        for j in range(Wo):
                            target[j] += source[j]
            crop_phases(dx_flat, padding, stride, rows, pitch, dx[n, c])


class _Unfold:
    """The geometry of one conv2d call, and im2col / col2im on a batch of images.

    ``cols`` has the layout (Ci*K*K, B, Ho*Wo): the B images of a batch side by side, so that one
    matrix product per batch does the work of B (BLAS is most efficient on large matrices).
    """

    def __init__(self, x_shape, K, stride, padding):
        N, Ci, H, W = x_shape
        self.H, self.W, self.Ci, self.K, self.stride, self.padding = H, W, Ci, K, int(stride), int(padding)
        self.Ho, self.Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
        self.batch = max(1, min(N, COLS_BUDGET // (Ci * K * K * self.Ho * self.Wo)))

    def buffer(self, dtype):
        """A flat buffer big enough for the cols of one batch."""
        return np.empty(self.Ci * self.K * self.K * self.batch * self.Ho * self.Wo, dtype)

    def cols(self, buffer, images):
        """The first part of ``buffer`` as a contiguous (Ci*K*K, images, Ho*Wo) array."""
        rows, width = self.Ci * self.K * self.K, self.Ho * self.Wo
        return buffer[:rows * images * width].reshape(rows, images, width)

    def _args(self, images):
        rows, pitch, n_chunks = buffer_geometry(self.H, self.W, self.padding, self.stride, images * self.Ci)
        return self.K, self.stride, self.padding, rows, pitch, self.Ho, self.Wo, n_chunks

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
    y = np.empty((N, Co, unfold.Ho * unfold.Wo), x.dtype)
    buffer = unfold.buffer(x.dtype)
    for start, stop in _batches(N, unfold.batch):
        cols = unfold.cols(buffer, stop - start)              # (Ci*K*K, B, Ho*Wo)
        unfold.im2col(x[start:stop], cols)
        y_batch = w_matrix @ cols.reshape(cols.shape[0], -1)  # (Co, B*Ho*Wo): one BLAS call
        y[start:stop] = y_batch.reshape(Co, stop - start, -1).transpose(1, 0, 2)
    return y.reshape(N, Co, unfold.Ho, unfold.Wo)


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
    dy_matrices = dy.reshape(N, Co, dy.shape[2] * dy.shape[3])   # (N, Co, Ho*Wo)
    if _is_pointwise(K, padding):
        dx, dw_matrix = _pointwise_backward(dy_matrices, x, w_matrix, stride)
        return dx, dw_matrix.reshape(w.shape)
    unfold = _Unfold(x.shape, K, stride, padding)
    dx = np.empty_like(x)
    dw_matrix = np.zeros_like(w_matrix)
    buffer = unfold.buffer(x.dtype)
    for start, stop in _batches(N, unfold.batch):
        cols = unfold.cols(buffer, stop - start)
        unfold.im2col(x[start:stop], cols)
        # dy of the batch as (Co, B*Ho*Wo), matching the column order of cols
        dy_batch = np.ascontiguousarray(dy_matrices[start:stop].transpose(1, 0, 2)).reshape(Co, -1)
        dw_matrix += dy_batch @ cols.reshape(cols.shape[0], -1).T   # batches added in order
        dcols = (w_matrix.T @ dy_batch).reshape(cols.shape)         # (Ci*K*K, B, Ho*Wo)
        unfold.col2im(dcols, dx[start:stop])
    return dx, dw_matrix.reshape(w.shape)
