"""Dense 2-D convolution: a Numba im2col / col2im around a BLAS matrix product.

A dense convolution mixes every input channel into every output channel, so most of its work is
a matrix product, and no hand-written loop beats the BLAS library that ``np.matmul`` calls.
Numba does the data movement around it, fast and in parallel:

- forward:  cols = im2col(x), (Ci*K*K, B*Ho*Wo) for a batch of B images; then y = w_matrix @ cols
- backward: dw = sum over batches of dy @ cols.T (in batch order); dcols = w_matrix.T @ dy;
            dx = col2im(dcols)

Images go through in small batches so that ``cols`` (K*K times the size of x) stays in cache and
the memory use stays bounded.

Rows at the pitch (lecture 5's flat-row trick): each image plane goes into a zero-padded phase
buffer (see ``planes``) whose rows are ``pitch`` entries apart. Output row i of tap (p, q) is then
Wo consecutive entries of that buffer, so im2col copies it with one unit-stride loop and no test
for the border. The cols rows hold exactly Ho*Wo entries per image: every column of the matrix
products is a real output pixel.

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

# Extra entries between two rows of a batch's matrices (see _Unfold): one cache line.
ROW_GAP = 16


@njit(parallel=True, fastmath=True, cache=True)
def _im2col_kernel(x, K, stride, padding, rows, pitch, plane_size, Ho, Wo, n_chunks, cols):
    # cols[(c*K + p)*K + q, n, i*Wo + j] = xpad[n, c, i*stride + p, j*stride + q]
    # Parallel over planes (n, c); each writes only its own K*K rows of cols (deterministic).
    # In the phase buffer, output row i of tap (p, q) is Wo consecutive entries, i*pitch past the
    # tap's first pixel, so the innermost loop is a unit-stride copy with no bounds test.
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
                    tap = x_flat[tap_offset(p, q, stride, rows, pitch):]
                    target = cols[(c * K + p) * K + q, n * Ho * Wo:]
                    for i in range(Ho):
                        source, row = tap[i * pitch:], target[i * Wo:]
                        for j in range(Wo):
                            row[j] = source[j]


@njit(parallel=True, fastmath=True, cache=True)
def _col2im_kernel(dcols, K, stride, padding, rows, pitch, plane_size, Ho, Wo, n_chunks, dx):
    # The adjoint of im2col: dxpad[n, c, i*stride + p, j*stride + q] += dcols[(c*K + p)*K + q, n, i*Wo + j]
    # Parallel over planes (n, c): a pixel only receives from its own plane's rows of dcols, and
    # one thread adds them in a fixed (p, q, i) order, so the sums are bitwise reproducible.
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
                    tap = dx_flat[tap_offset(p, q, stride, rows, pitch):]
                    source = dcols[(c * K + p) * K + q, n * Ho * Wo:]
                    for i in range(Ho):
                        target, row = tap[i * pitch:], source[i * Wo:]
                        for j in range(Wo):
                            target[j] += row[j]
            crop_phases(dx_flat, padding, stride, rows, pitch, dx[n, c])


class _Unfold:
    """The geometry of one conv2d call, and im2col / col2im on a batch of images.

    ``cols`` is a (Ci*K*K, B*Ho*Wo) matrix: the B images of a batch side by side, so that one
    matrix product per batch does the work of B (BLAS is most efficient on large matrices).

    Its rows, and those of the (Co, B*Ho*Wo) matrices of y and dy, lie ``row_length`` entries apart,
    a little more than B*Ho*Wo: rows a power-of-two multiple of 4 KiB apart (32x32 images) map to
    the same few cache sets, and that slows BLAS down by up to 2x.
    """

    def __init__(self, x_shape, K, stride, padding):
        N, Ci, H, W = x_shape
        self.H, self.W, self.Ci, self.K, self.stride, self.padding = H, W, Ci, K, int(stride), int(padding)
        self.Ho, self.Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
        self.rows, self.pitch, _ = buffer_geometry(H, W, self.padding, self.stride, 1)
        self.width = self.Ho * self.Wo                        # entries per image in a cols row
        self.plane_size = self.stride**2 * self.rows * self.pitch   # every tap reads inside its phase
        self.batch = max(1, min(N, COLS_BUDGET // (Ci * K * K * self.width)))
        self.row_length = self.batch * self.width + ROW_GAP

    def buffer(self, rows, dtype):
        """A buffer for a (rows, B*Ho*Wo) matrix of one batch: (rows, self.row_length)."""
        return np.empty((rows, self.row_length), dtype)

    def matrix(self, buffer, images):
        """The (rows, images*Ho*Wo) matrix of a batch of ``images`` in ``buffer`` (a view)."""
        return buffer[:, :images * self.width]

    def _args(self, images):
        n_chunks = buffer_geometry(self.H, self.W, self.padding, self.stride, images * self.Ci)[2]
        return (self.K, self.stride, self.padding, self.rows, self.pitch, self.plane_size,
                self.Ho, self.Wo, n_chunks)

    def im2col(self, x_batch, cols_buffer):
        _im2col_kernel(x_batch, *self._args(x_batch.shape[0]), cols_buffer)

    def col2im(self, dcols_buffer, dx_batch):
        _col2im_kernel(dcols_buffer, *self._args(dx_batch.shape[0]), dx_batch)


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
    cols_buffer, y_buffer = unfold.buffer(Ci * K * K, x.dtype), unfold.buffer(Co, x.dtype)
    for start, stop in _batches(N, unfold.batch):
        images = stop - start
        unfold.im2col(x[start:stop], cols_buffer)
        y_batch = unfold.matrix(y_buffer, images)            # (Co, B*Ho*Wo): one BLAS call
        np.matmul(w_matrix, unfold.matrix(cols_buffer, images), out=y_batch)
        y[start:stop] = y_batch.reshape(Co, images, unfold.Ho, unfold.Wo).transpose(1, 0, 2, 3)
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
    cols_buffer, dy_buffer = unfold.buffer(Ci * K * K, x.dtype), unfold.buffer(Co, x.dtype)
    for start, stop in _batches(N, unfold.batch):
        images = stop - start
        unfold.im2col(x[start:stop], cols_buffer)
        cols = unfold.matrix(cols_buffer, images)              # (Ci*K*K, B*Ho*Wo)
        dy_matrix = unfold.matrix(dy_buffer, images)           # (Co, B*Ho*Wo), images as in cols
        dy_matrix.reshape(Co, images, -1)[:] = dy[start:stop].reshape(images, Co, -1).transpose(1, 0, 2)
        # dw.T = cols @ dy.T: the same sums as dy @ cols.T, but with the big matrix as the
        # row-major left operand, which BLAS runs up to twice as fast when Co is small
        dw_matrix_t += cols @ dy_matrix.T                     # batches added in order
        np.matmul(w_matrix.T, dy_matrix, out=cols)            # dcols, in place of cols
        unfold.col2im(cols_buffer, dx[start:stop])
    return dx, dw_matrix_t.T.reshape(w.shape)
