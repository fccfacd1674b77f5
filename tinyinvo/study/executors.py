"""Where the study's runs execute: in this process, on a local pool of worker processes, or on a
Dask cluster. All three are ``concurrent.futures.Executor``s, so the study submits every run as an
independent task the same way (``executor.submit(train_on_worker, ...)``) and never schedules
anything itself.

    with make_executor(workers=2, threads_per_worker=1) as executor:     # 2 processes x 1 thread
        rows = run_missing(study, "results.csv", train_run, executor=executor, threads=1)

    with make_executor(scheduler="tcp://10.0.0.5:8786") as executor:   # a running Dask cluster
        ...

A run reaches a worker as its small ``Run`` config: the data travel by path (``data_dir``) or are
made on the worker (shapes), never as pickled arrays.
"""

import concurrent.futures
import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import numba

from tinyinvo.backend import set_backend, set_num_threads
from tinyinvo.memory import keep_freed_memory
from tinyinvo.plumbing import sigterm_as_ctrl_c

# read once, when the library that owns the threads is loaded or starts its thread pool
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


@contextlib.contextmanager
def make_executor(workers=1, threads_per_worker=None, scheduler=None):
    """The executor for a study, as a context manager that shuts it down (cancelling queued runs).

    Inputs:
    - workers: local worker processes; 1 (and no scheduler) means "in this process" (yields None)
    - threads_per_worker: Numba and BLAS threads of each worker (None: the cores shared out evenly)
    - scheduler: address of a running Dask scheduler, e.g. "tcp://10.0.0.5:8786"; the cluster's
      workers then do the work and ``workers`` is ignored
    Yields: a concurrent.futures.Executor, or None for "run in this process".
    """
    if scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise SystemExit('error: --scheduler needs Dask: '
                             'pip install "tinyinvo[cluster]"') from None
        with Client(scheduler) as client:
            # pure=False: a retried run is a new task, not the cached failure of the first try
            yield client.get_executor(pure=False)
    elif workers > 1:
        pool = LocalPool(workers, threads_per_worker or default_threads(workers))
        try:
            yield pool
        except KeyboardInterrupt:
            pool.interrupt()   # each worker checkpoints its run; the shutdown below waits for that
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        yield None


def default_workers(runs):
    """Local workers when the user gives none: one per core, but no more than there are runs.

    Independent runs use every core all the time, while one run's Numba loops and small BLAS
    calls leave a core idle at every synchronisation (measured in benchmarks/bench_study.py).
    """
    return max(1, min(os.cpu_count() or 1, runs))


def default_threads(workers):
    """Threads per worker when the user gives none: the machine's cores shared out evenly."""
    return max(1, (os.cpu_count() or 1) // workers)


class LocalPool(concurrent.futures.Executor):
    """A pool of ``workers`` local processes that replaces itself when one of them dies.

    A ProcessPoolExecutor whose worker is killed (by the out-of-memory killer, say) is "broken":
    every run it holds fails with BrokenProcessPool and it refuses new ones. The study retries
    failed runs, so this pool only has to start afresh on the next submit. ``max_workers`` tells
    the study how many runs to keep in flight: one per worker, so a death fails only the runs
    that were training.
    """

    def __init__(self, workers, threads):
        self.max_workers, self.threads = workers, threads
        self.pool = self._start()

    def _start(self):
        # "spawn": a fresh interpreter per worker; forking a process whose Numba threads already
        # run is unsafe, and spawn is what macOS and Windows do anyway
        return concurrent.futures.ProcessPoolExecutor(
            self.max_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker, initargs=(self.threads, os.getpid()))

    def submit(self, fn, /, *args, **kwargs):
        try:
            return self.pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._start()
            return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def interrupt(self):
        """SIGTERM every worker: its run saves a checkpoint and stops (``train_on_worker``), as
        after Ctrl-C in the terminal, which reaches the workers by itself. The processes are the
        ProcessPoolExecutor's own (its ``_processes``: the standard library has no public list)."""
        processes = getattr(self.pool, "_processes", None) or {}
        for process in list(processes.values()):
            if process.is_alive():
                process.terminate()


def start_worker(threads, client_pid):
    """Initializer of a local worker process: its thread count, and an end when the client ends.

    Numba's thread pool and OpenMP read the THREAD_VARIABLES when they start, i.e. at the first
    parallel kernel of the worker. BLAS, already loaded with NumPy, is limited per run by
    ``train_on_worker`` (through ``set_num_threads``), as is Numba's count of the running thread.

    A client killed with ``kill -9`` cannot stop its workers, and a worker left alone would train
    on for hours, holding its memory. So a thread of the worker watches its parent process and
    ends the worker when the parent is no longer ``client_pid`` (the orphan was adopted).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # Numba read its configuration when it was imported, before this ran: make it read the new
    # count too, or its pool starts with every core, and the next kernel that compiles (one not yet
    # in the disk cache) stops the run with "Cannot set NUMBA_NUM_THREADS ... once launched".
    numba.config.reload_config()
    threading.Thread(target=_exit_when_orphaned, args=(client_pid,), daemon=True,
                     name="watch-client").start()


def _exit_when_orphaned(client_pid, every_seconds=0.5):
    while os.getppid() == client_pid:
        time.sleep(every_seconds)
    os._exit(1)  # no clean-up to wait for: the client that wanted the result is gone


def train_on_worker(train, run, run_dir, progress, backend, threads):
    """The task a worker executes: the caller's backend and thread count, then ``train(run)``.

    The backend travels with the task, so every worker computes what the caller would have. Numba's
    thread count belongs to the thread that sets it, and Dask runs tasks in worker threads: so the
    count is set here, in the task, on every kind of worker (None: leave it). A worker is a process
    that trains, as the ``train`` command is, so it keeps freed memory for reuse the same way
    (``tinyinvo.memory``; once per process).
    """
    keep_freed_memory()
    set_backend(backend)
    if threads is not None:
        set_num_threads(threads)
    with sigterm_as_ctrl_c():   # `kill` checkpoints the run as Ctrl-C does (on a process's main thread)
        return train(run, run_dir=run_dir, progress=progress)


class InProcessExecutor(concurrent.futures.Executor):
    """An Executor that runs each task at once, in this process, when it is submitted: the serial
    study (its runs keep their own progress bars, and a debugger can step into them)."""

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # KeyboardInterrupt still stops the study
            future.set_exception(error)
        return future
