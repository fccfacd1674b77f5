"""The global choice of backend: "numpy" (the readable reference) or "numba" (the fast kernels).

Every op in ``tinyinvo.ops`` takes ``backend=None``, which means "use the global default". The
default is, in order: the last ``set_backend(...)`` call, else the environment variable
``TINYINVO_BACKEND``, else "numba" (a required dependency, like NumPy).

Debugging tip: ``NUMBA_DISABLE_JIT=1 python ...`` runs the Numba kernels as plain Python, so you
can step through them with a debugger or add prints (slowly).
"""

import importlib
import os
from contextlib import contextmanager

BACKENDS = ("numpy", "numba")

_current = None  # set by set_backend(); None means "not chosen yet"


def _default_backend():
    name = os.environ.get("TINYINVO_BACKEND")
    if name:
        return _check_name(name, source="environment variable TINYINVO_BACKEND")
    return "numba"


def _check_name(name, source="backend"):
    if name not in BACKENDS:
        raise ValueError(f"{source} must be one of {BACKENDS}, got {name!r}")
    return name


def set_backend(name):
    """Choose the default backend for every op: "numpy" or "numba"."""
    global _current
    _current = _check_name(name)


def get_backend():
    """The name of the default backend."""
    global _current
    if _current is None:
        _current = _default_backend()
    return _current


def resolve(backend=None):
    """The module that implements the ops for ``backend`` (None: the global default).

    Only ``tinyinvo.ops`` calls this: the backends expect the inputs it has checked.
    """
    name = get_backend() if backend is None else _check_name(backend)
    return importlib.import_module(f"tinyinvo.ops.{name}_backend")


def set_num_threads(count):
    """Use ``count`` threads in the Numba kernels and in BLAS (NumPy's matrix products).

    BLAS is limited through threadpoolctl, which works after NumPy is loaded; Numba's count can go
    up to ``numba.config.NUMBA_NUM_THREADS`` (by default, the number of cores). Numba's threads are
    started first as the Numba backend starts them (idle threads sleep: see numba_backend/threads.py).
    """
    import numba
    from threadpoolctl import threadpool_limits

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    from tinyinvo.ops.numba_backend.threads import start_threads

    start_threads()
    if count > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"count={count} threads, but Numba was started with at most "
                         f"{numba.config.NUMBA_NUM_THREADS} (set NUMBA_NUM_THREADS before Python starts)")
    numba.set_num_threads(count)
    threadpool_limits(count)


_blas_libraries = None   # threadpoolctl's handle on the BLAS libraries loaded, found on first use


@contextmanager
def blas_on_one_thread():
    """Inside this ``with`` block, NumPy's matrix products (BLAS) run on the calling thread alone.

    tinyinvo runs its products this way and supplies the parallelism itself (see
    ``ops/numba_backend/team.py``). Why not let BLAS use its threads? After a product on several
    threads, OpenBLAS keeps its helper threads spinning on their cores for a long while (up to about
    a tenth of a second), waiting for the next product. The layers that run next need those cores
    for their own threads, and would run at one thread's speed until the spinning stops.
    """
    global _blas_libraries
    from threadpoolctl import ThreadpoolController

    if _blas_libraries is None:
        _blas_libraries = ThreadpoolController()
    with _blas_libraries.limit(limits=1, user_api="blas"):
        yield
