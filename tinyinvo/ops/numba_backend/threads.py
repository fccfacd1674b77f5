"""Start Numba's thread pool so that its idle threads sleep, whatever else the process has loaded.

Why it matters. Numba's parallel kernels run on an OpenMP runtime (GNU libgomp on Linux). Between
two kernels a training step calls BLAS (NumPy's matrix products), which has threads of its own.
By default, an idle OpenMP thread keeps spinning on its core for a while before it sleeps, and on
a small machine that is exactly the core a BLAS thread needs next: every step then waits for the
scheduler. ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep at once. libgomp reads it ONCE,
when the library is loaded.

The trap. PyTorch ships its own libgomp and loads it, globally, at ``import torch``. If torch is
imported first, Numba's kernels look their OpenMP functions up in that global runtime, which was
started with torch's environment (busy-waiting threads), so a tinyinvo training step runs several
times slower than in a process without torch.

``start_threads()`` (called once, when the Numba backend is first used or the thread count set):

- sets ``OMP_WAIT_POLICY=PASSIVE`` only while Numba loads its threading layer, unless you set the
  variable yourself, and restores the environment afterwards (nothing else in the process sees it);
- on Linux, loads that layer with ``RTLD_DEEPBIND``: it then binds to its own libgomp, freshly
  started with the setting above, not to a runtime another library started earlier;
- if that cannot be done (Numba's threads already started, or no ``RTLD_DEEPBIND`` on this system)
  while another OpenMP runtime is loaded and no wait policy is set, it warns once, naming the cause
  and the remedy.

It changes no result: only how idle threads wait.
"""

import os
import sys
import warnings

import numba
import numpy as np
from numba import njit, prange

OPENMP_RUNTIMES = ("libgomp", "libiomp", "libomp")  # GNU, Intel, LLVM

_started = False


@njit(parallel=True, cache=True)
def _first_parallel_loop(values):
    # any parallel loop: its first call makes Numba load and start its threading layer
    for k in prange(values.size):
        values[k] = k


def start_threads():
    """Start Numba's threads as described in the module docstring (once per process)."""
    global _started
    if _started:
        return
    _started = True
    user_policy = os.environ.get("OMP_WAIT_POLICY")
    runtimes = _openmp_runtimes_loaded()
    if _threading_layer() is None:
        other_runtime = bool(runtimes)             # loaded before Numba loads its own
        own_runtime = _start_with_own_runtime(user_policy)
    else:                                          # someone started Numba's threads before us:
        other_runtime = len(runtimes) > 1          # its own runtime is one of those loaded
        own_runtime = False
    if other_runtime and not own_runtime and user_policy is None and _threading_layer() == "omp":
        warnings.warn(
            f"tinyinvo: another OpenMP runtime ({', '.join(runtimes)}; PyTorch loads one at import) was "
            "loaded before Numba's threads started, and Numba's kernels may share it with busy-waiting "
            "idle threads: training steps can run several times slower. Remedy: set "
            "OMP_WAIT_POLICY=PASSIVE in the environment before importing torch (or the other "
            "library), or use tinyinvo before it in the process.", RuntimeWarning, stacklevel=2)


def _start_with_own_runtime(user_policy):
    """Start Numba's threading layer with PASSIVE idle threads (unless the user chose a policy) and,
    on Linux, bound to its own OpenMP runtime. True if it was bound to its own runtime."""
    deepbind = getattr(os, "RTLD_DEEPBIND", None)
    flags = sys.getdlopenflags()
    if user_policy is None:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if deepbind is not None:
        sys.setdlopenflags(flags | deepbind)
    try:
        _first_parallel_loop(np.empty(numba.config.NUMBA_NUM_THREADS))
    finally:
        sys.setdlopenflags(flags)
        if user_policy is None:
            del os.environ["OMP_WAIT_POLICY"]
    return deepbind is not None


def _threading_layer():
    """The name of Numba's running threading layer, or None before it starts."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def _openmp_runtimes_loaded():
    """Names of the OpenMP runtimes loaded in this process: the files found in /proc/self/maps
    (Linux), plus PyTorch's if torch is imported (the one way to tell on other systems)."""
    names = ["PyTorch's"] if "torch" in sys.modules else []
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return names
    return names + sorted({os.path.basename(path) for path in paths
                           if os.path.basename(path).startswith(OPENMP_RUNTIMES)})
