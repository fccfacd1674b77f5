"""Keep freed memory in the process, so that a training step reuses the last step's pages.

A training step allocates the same large arrays every time: activations, gradients, im2col
columns (one activation of resnet26's first stage at width 16, batch 128, is 34 MB). By default
glibc hands every block over 32 MB straight back to the operating system when NumPy frees it, and
trims the heap above 128 kB. The next step then asks for fresh pages, and the kernel zeroes each
one before the process may touch it. That costs as much as a pass over the data, in every step.

``keep_freed_memory()`` tells glibc to serve every block from its heap (``M_MMAP_MAX = 0``) and to
give the heap back only when more than 2 GB of it are free (``M_TRIM_THRESHOLD``). The pages of
freed arrays are then reused as they are (benchmarks/bench_train.py measures the gain; see the
README). The price: the process keeps its peak memory until it exits. It changes no result, only
where arrays live.

Nothing calls it for you when you use the library: it changes malloc for the whole process. The
command line (``python -m tinyinvo ...``) calls it at start, and so do the study's worker
processes, ``benchmarks/bench_study_models.py`` and ``benchmarks/bench_train.py`` (unless
--default-malloc); call it yourself before training in your own script or notebook.

On other C libraries (macOS, Windows, musl) it does nothing.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_MAX = -4
_LARGEST_INT = 2**31 - 1  # mallopt takes a C int

_kept = False


def keep_freed_memory():
    """Make glibc keep freed memory for reuse (once per process). Returns True where it took effect."""
    global _kept
    if not _kept:
        mallopt = _glibc_mallopt()
        _kept = (mallopt is not None and mallopt(M_MMAP_MAX, 0) == 1
                 and mallopt(M_TRIM_THRESHOLD, _LARGEST_INT) == 1)
    return _kept


def _glibc_mallopt():
    """glibc's ``int mallopt(int, int)``, or None on another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version"):  # a symbol only glibc has
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt
