"""Helpers shared by the Numba kernels: split the work among threads, and move one image plane
into and out of a flat, zero-padded, "polyphase" scratch buffer.

Why a padded buffer? Once a (H, W) plane sits inside a zero border, a kernel can read any window
position without asking "is this pixel inside the image?" in its innermost loop: the border
supplies the zeros. Each thread copies its plane into its own small buffer, which stays in the
L1/L2 cache, so the copy costs little next to the K*K multiply-adds per pixel.

Why polyphase? With stride s, output pixel (i, j) reads xpad[i*s + p, j*s + q]: every s-th
element, a strided read that the compiler cannot turn into fast SIMD loads. So the padded plane
is stored as s*s smaller "phase" planes, phase (a, b) holding the pixels whose row is a mod s and
column is b mod s:

    phase[a, b][r, k] = xpad[r*s + a, k*s + b]

Tap (p, q) then reads phase (p % s, q % s) at row i + p // s, column j + q // s: a unit-stride
read again, for any stride. For s = 1 there is a single phase: the padded plane itself.
Each phase is stored as ``rows`` rows of ``pitch`` elements; phase (a, b) starts at flat offset
(a*s + b) * rows * pitch. All functions here run on one plane, called from the parallel kernels.
"""

from numba import get_num_threads, njit


@njit(cache=True)
def split_tasks(chunk, n_chunks, n_tasks):
    """The range [start, stop) of tasks that chunk number ``chunk`` of ``n_chunks`` equal chunks gets."""
    return chunk * n_tasks // n_chunks, (chunk + 1) * n_tasks // n_chunks


@njit(cache=True)
def inside_range(offset, stride, size, limit):
    """The range [lo, hi) of k in [0, limit) for which k*stride + offset lies inside [0, size)."""
    lo = max(0, (stride - 1 - offset) // stride)      # ceil(-offset / stride)
    hi = min(limit, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


def buffer_geometry(H, W, padding, stride, n_tasks):
    """(rows, pitch, n_chunks): the shape of one phase of a padded (H, W) plane, ceil((H + 2*padding) / stride)
    by ceil((W + 2*padding) / stride), and the number of thread chunks for ``n_tasks`` independent tasks.
    Plain Python, called by the wrappers before they launch a kernel."""
    rows, pitch = -(-(H + 2 * padding) // stride), -(-(W + 2 * padding) // stride)
    return rows, pitch, min(get_num_threads(), n_tasks)


@njit(cache=True)
def tap_offset(p, q, stride, rows, pitch):
    """Flat offset in the phase buffer of the pixel read by output (0, 0) for tap (p, q)."""
    phase = (p % stride) * stride + q % stride
    return phase * rows * pitch + (p // stride) * pitch + q // stride


@njit(cache=True)
def fill_phases(plane, padding, stride, rows, pitch, buffer):
    """buffer <- the phases of plane (H, W) zero-padded by ``padding``; every other entry 0.

    phase[a, b][r, k] = plane[r*stride + a - padding, k*stride + b - padding] (0 outside the plane).
    """
    H, W = plane.shape
    buffer[:] = 0
    for a in range(stride):
        r_lo, r_hi = inside_range(a - padding, stride, H, rows)
        for b in range(stride):
            k_lo, k_hi = inside_range(b - padding, stride, W, pitch)
            first = k_lo * stride + b - padding   # first plane column that lands in phase (a, b)
            for r in range(r_lo, r_hi):
                source = plane[r * stride + a - padding, first::stride]
                target = buffer[((a * stride + b) * rows + r) * pitch + k_lo:]
                for t in range(k_hi - k_lo):
                    target[t] = source[t]


@njit(cache=True)
def crop_phases(buffer, padding, stride, rows, pitch, plane):
    """The inverse of fill_phases: plane (H, W) <- the interior of the phases, border dropped."""
    H, W = plane.shape
    for a in range(stride):
        r_lo, r_hi = inside_range(a - padding, stride, H, rows)
        for b in range(stride):
            k_lo, k_hi = inside_range(b - padding, stride, W, pitch)
            first = k_lo * stride + b - padding
            for r in range(r_lo, r_hi):
                target = plane[r * stride + a - padding, first::stride]
                source = buffer[((a * stride + b) * rows + r) * pitch + k_lo:]
                for t in range(k_hi - k_lo):
                    target[t] = source[t]
