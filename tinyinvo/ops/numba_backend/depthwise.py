"""Depthwise 2-D convolution as fused Numba kernels, with the images of a batch side by side.

A depthwise filter belongs to one channel and is the same for every image, so the kernels take
one channel of a block of ``B`` images (``images_per_block``: 8 or 16) at a time and copy it into a
zero-padded buffer with the image index LAST ("batch-last"):

    buffer[r, v, n] = xpad[n0 + n, c, r, v]          (r, v: padded row and column)

Output row i of all B images is then one flat run of Wo*B numbers, y_row[j*B + n], and tap (p, q)
reads the buffer at row i + p, from column q on: Wo*B CONSECUTIVE numbers too. So one tap of one
output row is ONE long unit-stride loop with a single weight,

    y_row[u] += w[c, p, q] * buffer[i + p, q:, :].flat[u]        u = j*B + n

with no bounds test (the zero border supplies the zeros) and, unlike the flat rows of
``involution.py``, no garbage columns: every multiply-add is useful, however small the map. That is
what makes small maps (8x8, 4x4) fast, where a per-image plane would be mostly border. The forward
keeps a chunk of an output row in vector registers while all the taps go by
(``simd.add_taps_in_registers``), so it loads only the buffer, never the outputs; the backward
does both gradients in one pass per tap.

Row pairs (stride 1, K >= PAIRED_ROWS_MIN_K): output rows i and i + 1 read K - 1 buffer rows in
common (row i + m is tap row m of output row i and tap row m - 1 of row i + 1). So the forward
takes two output rows at once: for the tap pairs (m, q), m = 1 .. K-1, each number it loads from
the buffer feeds a multiply-add for each of the two (``simd.add_tap_pairs_in_registers``); row i
alone takes its tap row 0 and row i + 1 alone its tap row K - 1. For 3x3 filters, which share only
one tap row out of three, the extra passes cost more than the shared loads save.

The price of the batch-last layout: moving a block into the buffer, and its output rows (kept
batch-last in ``block`` until the last tap) back out, is a transposition. Numba's loops would move
one number at a time, which costs as much as a 3x3 filter's multiply-adds. So whole tiles of 8
images x 8 columns move as 8x8 transpositions in SIMD registers (``simd.py``), eight images at a
time through all their rows; a partial block, a stride above 1 and the last W % 8 columns move one
number at a time.

Stride s: output column j reads padded column j*s + q, every s-th column. So the buffer keeps the
columns in s phases (``planes.py`` explains polyphase buffers): phase b holds the padded columns
v = k*s + b, and tap (p, q) reads phase q % s from column q // s on, unit-stride again. Rows need
no phases: each output row reads its own buffer row i*s + p.

Threads: a task is (channel, block of images), and the team (``team.py``) hands out pieces of
consecutive tasks, a few per thread, each piece whole to one thread. Deterministic: every task
writes its own outputs, and dw is summed per task here and over the blocks afterwards, in block
order, so no result depends on the thread count.
"""

import numpy as np
from numba import get_num_threads, njit

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.numba_backend import team
from tinyinvo.ops.numba_backend.planes import inside_range
from tinyinvo.ops.numba_backend.simd import (CHUNK, LANES, add_tap_pairs_in_registers, add_taps_in_registers,
                                               transpose_8x8)

ROW_LANES = 128         # numbers in an output row of a block, at least: loops long enough for SIMD
PAIRED_ROWS_MIN_K = 5   # stride-1 filters this large or larger take output rows in pairs (see above)
PIECES_PER_THREAD = 4   # pieces of work per thread (team.py): a slow thread takes fewer of them


def images_per_block(Wo):
    """B: 8 images side by side if that makes output rows of ROW_LANES numbers or more, else 16.

    Fewer images are faster where they suffice: copying a block in reads B image planes at once,
    and 8 streams of reads are easier on the cache than 16. Small maps need 16 for long loops.
    """
    return 8 if 8 * Wo >= ROW_LANES else 16


class _Layout:
    """Where each pixel of a padded, column-phased, batch-last buffer lives (see the module docstring).

    buffer[((r*s + b)*columns + k)*B + n] = xpad[n0 + n, c, r, k*s + b]
    """

    def __init__(self, x_shape, K, stride, padding):
        N, C, H, W = x_shape
        self.rows = H + 2 * padding
        self.columns = -(-(W + 2 * padding) // stride)      # columns per phase
        self.B = min(images_per_block(output_size(W, K, stride, padding)), max(1, N))
        self.blocks = -(-N // self.B)
        self.size = self.rows * stride * self.columns * self.B
        tasks = C * self.blocks                              # (channel, block of images)
        self.pieces = team.batches(tasks, max(1, -(-tasks // (PIECES_PER_THREAD * get_num_threads()))))
        self.row_step = stride * stride * self.columns * self.B    # output row i -> i + 1
        self.offsets = self.tap_offsets(K, K, stride)

    def tap_offsets(self, tap_rows, K, stride):
        """Where tap (p, q) of output row 0 starts in the buffer, for p < tap_rows, in the order p*K + q."""
        return np.array([((p * stride + q % stride) * self.columns + q // stride) * self.B
                         for p in range(tap_rows) for q in range(K)], np.int64)

    def args(self, stride, padding):
        return stride, padding, self.columns, self.B, self.blocks, self.size, self.row_step


@njit(nogil=True, cache=True)
def _move_tiles(planes, plane_at, plane_step, plane_row_step, lanes, lanes_at, lanes_row_step, B, images, rows,
                columns, into_lanes):
    """The SIMD part of moving a block between image planes and batch-last lanes (1-D arrays):

        lanes[lanes_at + r*lanes_row_step + k*B + n]  <->  planes[plane_at + n*plane_step + r*plane_row_step + k]

    for rows r < rows and columns k < columns, in tiles of 8 images x 8 columns, each one 8x8
    transposition in registers (``simd.py``); into the lanes when into_lanes, else out of them.
    Eight images at a time go through all their rows, so few cache lines are in use at once (the
    planes of a batch lie a power of two apart, and would compete for the same few cache sets).
    Returns how many columns it moved: 0 for a partial block or a block of fewer than 8 images (a
    batch that small), else ``columns`` rounded down to a multiple of 8. The caller moves the rest."""
    if images < B or B % LANES != 0:
        return 0
    tiled = columns - columns % LANES
    for n0 in range(0, B, LANES):
        for r in range(rows):
            for k0 in range(0, tiled, LANES):
                at_plane = plane_at + n0 * plane_step + r * plane_row_step + k0
                at_lanes = lanes_at + r * lanes_row_step + k0 * B + n0
                if into_lanes:
                    transpose_8x8(planes, at_plane, plane_step, lanes, at_lanes, B)
                else:
                    transpose_8x8(lanes, at_lanes, B, planes, at_plane, plane_step)
    return tiled


@njit(nogil=True, cache=True)
def _move_block(x, c, n0, stride, padding, columns, B, buffer, into_buffer):
    """Channel c of images n0 .. n0+B-1 (fewer at the end of the batch) into the batch-last,
    column-phased buffer when into_buffer (a partial block zeroes the buffer first, so the missing
    images' lanes are 0), else the interior of the buffer back into x. The border is left alone.

    With stride 1 the block moves in 8x8 tiles (``_move_tiles``). The rest moves one number at a
    time, the innermost loop WRITING consecutive addresses and reading at a stride (the images
    innermost going in, the columns coming out): a strided read costs a load from cache, while a
    strided write would cost a whole cache line per number."""
    N, C, H, W = x.shape
    images = min(B, N - n0)
    if into_buffer and images < B:
        buffer[:] = 0
    tiled = 0 if stride > 1 else _move_tiles(x.reshape(-1), (n0 * C + c) * H * W, C * H * W, W, buffer,
                                               (padding * columns + padding) * B, columns * B, B, images, H, W,
                                               into_buffer)
    planes = x[n0:n0 + images, c]                       # (images, H, W)
    for h in range(H):
        for b in range(stride):
            k_lo, k_hi = inside_range(b - padding, stride, W, columns)
            k_lo += tiled                               # stride 1: phase column k is plane column k - padding
            lanes = buffer[(((h + padding) * stride + b) * columns + k_lo) * B:]
            first = k_lo * stride + b - padding         # the plane column of phase column k_lo
            if into_buffer:
                for k in range(k_hi - k_lo):
                    pixel, column = lanes[k * B:], first + k * stride
                    for n in range(images):
                        pixel[n] = planes[n, h, column]
            else:
                for n in range(images):
                    row = planes[n, h, first::stride]
                    for k in range(k_hi - k_lo):
                        row[k] = lanes[k * B + n]


@njit(nogil=True, cache=True)
def _move_output_block(block, y, n0, c, B, into_block):
    """Channel c of images n0, n0+1, ... (as many as y has) between y and the block's batch-last
    rows: y[n0 + n, c, i, j] = block[(i*Wo + j)*B + n]; out of the block, or into it when into_block.
    The same moves as _move_block's (tiles, then one number at a time, writing consecutive addresses)."""
    N, C, Ho, Wo = y.shape
    images = min(B, N - n0)
    tiled = _move_tiles(y.reshape(-1), (n0 * C + c) * Ho * Wo, C * Ho * Wo, Wo, block, 0, Wo * B, B, images, Ho,
                        Wo, into_block)
    planes = y[n0:n0 + images, c]                       # (images, Ho, Wo)
    for i in range(Ho):
        lanes = block[(i * Wo + tiled) * B:]
        if into_block:
            for j in range(Wo - tiled):
                pixel = lanes[j * B:]
                for n in range(images):
                    pixel[n] = planes[n, i, tiled + j]
        else:
            for n in range(images):
                row = planes[n, i, tiled:]
                for j in range(Wo - tiled):
                    row[j] = lanes[j * B + n]


@njit(nogil=True, fastmath=True, cache=True)
def _add_taps(row, weights, offsets, y):
    """y[s, u] += sum_t weights[s, t] * row[offsets[t] + u], for the S output rows of y (S, L), S = 1,
    or 2 for a row pair; weights (S, T). Chunks of CHUNK lanes go through ``simd.py`` with their
    sums in registers, the last L % CHUNK lanes through this loop, each sum in the same tap order."""
    S, L = y.shape
    done = L - L % CHUNK
    for at in range(0, done, CHUNK):
        if S == 2:
            add_tap_pairs_in_registers(row, weights, offsets, y, at)
        else:
            add_taps_in_registers(row, weights, offsets, y, at)
    for s in range(S):
        out = y[s, done:]
        for t in range(len(offsets)):
            weight, x = weights[s, t], row[done + offsets[t]:]
            for u in range(L - done):
                out[u] += weight * x[u]


@njit(nogil=True, fastmath=True, cache=True)
def _forward_kernel(x, tap_weights, offsets, pair_weights, pair_offsets, stride, padding, columns, B, blocks,
                    size, row_step, start, stop, y):
    # Tasks start .. stop-1, each (channel c, block of images), on one thread; the team (team.py)
    # runs the pieces of tasks in parallel. The buffer's border is zeroed once and stays zero.
    # Output rows in pairs while there are two left, if the tap pairs are given (pair_offsets not
    # empty), then one at a time. Row i of a pair alone takes tap row 0, the pair the tap pairs,
    # row i + 1 alone its tap row K - 1: each sum in tap order, as for a row alone. The block holds
    # the Ho output rows, batch-last, (Ho, Wo*B).
    Ho, Wo = y.shape[2], y.shape[3]
    K = len(offsets) - len(pair_offsets)       # with pairs: K*K taps, (K-1)*K of them in pairs
    buffer, block = np.zeros(size, x.dtype), np.empty((Ho, Wo * B), x.dtype)
    paired_rows = Ho - Ho % 2 if len(pair_offsets) > 0 else 0
    for task in range(start, stop):
        c, n0 = task // blocks, (task % blocks) * B
        _move_block(x, c, n0, stride, padding, columns, B, buffer, True)
        block[:] = 0
        for i in range(0, paired_rows, 2):
            _add_taps(buffer[i * row_step:], tap_weights[c, :, :K], offsets[:K], block[i:i + 1])
            _add_taps(buffer[i * row_step:], pair_weights[c], pair_offsets, block[i:i + 2])
            _add_taps(buffer[(i + 1) * row_step:], tap_weights[c, :, -K:], offsets[-K:], block[i + 1:i + 2])
        for i in range(paired_rows, Ho):
            _add_taps(buffer[i * row_step:], tap_weights[c], offsets, block[i:i + 1])
        _move_output_block(block.reshape(-1), y, n0, c, B, False)


@njit(nogil=True, fastmath=True, cache=True)
def _backward_kernel(dy, x, w, offsets, stride, padding, columns, B, blocks, size, row_step, start, stop,
                     dx, dw_per_block):
    # Same tasks and buffers as the forward, plus dx_buffer (same layout as the x buffer) and the
    # block's dy, batch-last like the forward's output block. In a partial block the missing images'
    # lanes of dy_block keep an earlier block's numbers, but their x lanes are 0 (_move_block), so
    # they add nothing to dw, and their dx lanes are never copied out.
    # One pass per tap and output row computes both gradients:
    #   dx_buffer[row + offset + u] += w[c, p, q] * dy_row[u]     (the forward's loop, transposed)
    #   dw[p, q]                    += dy_row[u] * x_buffer[row + offset + u]   (a dot product)
    # dw is summed in a fixed order within the task, and over the blocks after the kernel.
    K = w.shape[1]
    Ho, Wo = dy.shape[2], dy.shape[3]
    L = Wo * B
    buffer, dx_buffer, dy_block = np.zeros(size, x.dtype), np.empty(size, x.dtype), np.zeros(Ho * L, x.dtype)
    for task in range(start, stop):
        c, n0 = task // blocks, (task % blocks) * B
        _move_block(x, c, n0, stride, padding, columns, B, buffer, True)
        _move_output_block(dy_block, dy, n0, c, B, True)
        dx_buffer[:] = 0
        dw_sums = dw_per_block[task % blocks, c]
        dw_sums[:] = 0
        for i in range(Ho):
            dy_row = dy_block[i * L:(i + 1) * L]
            row, dx_row = buffer[i * row_step:], dx_buffer[i * row_step:]
            for t in range(K * K):
                weight = w[c, t // K, t % K]
                x_tap, dx_tap = row[offsets[t]:], dx_row[offsets[t]:]
                dw_sum = x.dtype.type(0)
                for u in range(L):
                    dw_sum += dy_row[u] * x_tap[u]
                    dx_tap[u] += weight * dy_row[u]
                dw_sums[t] += dw_sum
        _move_block(dx, c, n0, stride, padding, columns, B, dx_buffer, False)


def _tap_pairs(w, layout):
    """(pair_weights (C, 2, T), offsets (T,)), T = (K-1)*K: the taps (m, q), m = 1 .. K-1, of output
    row i, which are the taps (m - 1, q) of row i + 1 at the same buffer place (stride 1).
    pair_weights[:, 0] = w[:, m, q] and pair_weights[:, 1] = w[:, m - 1, q]."""
    C, K = w.shape[:2]
    return np.ascontiguousarray(np.stack([w[:, 1:], w[:, :-1]], axis=1).reshape(C, 2, -1)), layout.offsets[K:]


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
    layout = _Layout(x.shape, K, stride, padding)
    tap_weights = np.ascontiguousarray(w.reshape(C, 1, K * K))     # one output row at a time
    if stride == 1 and K >= PAIRED_ROWS_MIN_K:
        pair_weights, pair_offsets = _tap_pairs(w, layout)
    else:
        pair_weights, pair_offsets = np.zeros((C, 2, 0), w.dtype), np.zeros(0, np.int64)

    def forward_tasks(tasks):
        _forward_kernel(x, tap_weights, layout.offsets, pair_weights, pair_offsets,
                        *layout.args(stride, padding), *tasks, y)

    team.run_pieces(forward_tasks, layout.pieces)
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
    stride, padding = int(stride), int(padding)
    layout = _Layout(x.shape, K, stride, padding)
    dx = np.empty_like(x)
    dw_per_block = np.empty((layout.blocks, C, K * K), x.dtype)

    def backward_tasks(tasks):
        _backward_kernel(dy, x, w, layout.offsets, *layout.args(stride, padding), *tasks, dx, dw_per_block)

    team.run_pieces(backward_tasks, layout.pieces)
    # Sum over the blocks in float64, always in block order: bitwise reproducible.
    return dx, dw_per_block.sum(axis=0, dtype=np.float64).astype(x.dtype).reshape(C, K, K)
