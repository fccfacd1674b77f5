"""Run the pieces of a kernel's work on all threads, each piece whole on one thread.

The convolutions (conv.py, depthwise.py) hand their work to this team in pieces: batches of
images, or runs of (channel, block of images) tasks. Each thread takes the next piece not yet
taken, so a thread on a busy core simply takes fewer, and the threads meet once per call.

Why not let BLAS use the threads? A dense convolution here is many small matrix products: one per
image for a 1x1 conv, one per batch of images for a KxK conv (see conv.py). BLAS splits every
product among its threads, and for small products the splitting costs about what it saves. Worse,
BLAS's idle threads keep spinning on their cores for a while after each product, just when the
other threads need those cores. So inside a team BLAS runs on one thread
(``tinyinvo.backend.blas_on_one_thread``), and the team supplies the parallelism.

Same bits for any number of threads: a piece's work never depends on which thread runs it, and
the results of the pieces come back in piece order, for the caller to add up in that order.

The helpers are Python threads. They run in parallel because NumPy's matrix products and copies
and the ``nogil`` Numba kernels release the GIL while they work. Between pieces a thread needs the
GIL back, so a piece must be worth milliseconds: the elementwise kernels (BatchNorm, ReLU, add),
whose pieces would be much shorter, keep Numba's own ``prange`` threads (handed to the team, they
made a 2-thread resnet26 step about 20% slower).
"""

import itertools
import os
from concurrent.futures import ThreadPoolExecutor, wait

import numba

from tinyinvo.backend import blas_on_one_thread

_helpers = None                   # the ThreadPoolExecutor, started on first use


def batches(total, size):
    """[(start, stop), ...]: consecutive batches of at most ``size`` of ``total`` items."""
    return [(start, min(total, start + size)) for start in range(0, total, size)]


# even_batches makes a multiple of this many batches (when there are that many items), so that 2
# or 4 threads get equal shares: 5 batches of 26 images on 2 threads would give one thread 78
# images and the other 52, and the whole call would wait for the first.
BATCHES_MULTIPLE = 4


def even_batches(total, largest):
    """[(start, stop), ...]: ``total`` items in consecutive batches of at most ``largest``, sizes
    within one of each other, as few batches as that allows once rounded up to a multiple of
    BATCHES_MULTIPLE (or ``total`` batches of one, if fewer). The split depends on ``total`` and
    ``largest`` only, never on the number of threads: same batches, same bits."""
    fewest = -(-total // largest)                                   # ceil(total / largest)
    count = min(total, -(-fewest // BATCHES_MULTIPLE) * BATCHES_MULTIPLE)
    bounds = [total * k // max(count, 1) for k in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def run_pieces(work, pieces):
    """[work(piece) for piece in pieces], computed on ``numba.get_num_threads()`` threads.

    The calling thread works too; each thread takes the next piece left. A piece's exception is
    raised here, after every thread has stopped.
    """
    results = [None] * len(pieces)
    next_piece = itertools.count()

    def take_pieces():
        index = next(next_piece)          # atomic under the GIL: each index is taken once
        while index < len(pieces):
            results[index] = work(pieces[index])
            index = next(next_piece)

    threads = min(numba.get_num_threads(), len(pieces))
    with blas_on_one_thread():
        helpers = [_helper_pool().submit(take_pieces) for _ in range(threads - 1)]
        try:
            take_pieces()
        finally:
            wait(helpers)
    for helper in helpers:
        helper.result()                   # re-raises a helper's exception
    return results


def _helper_pool():
    global _helpers
    if _helpers is None:
        _helpers = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                      thread_name_prefix="tinyinvo-team")
    return _helpers


def _forget_helpers():
    # a forked child inherits the pool object but none of its threads: start a new one when needed
    global _helpers
    _helpers = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)
