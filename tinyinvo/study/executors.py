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

from tinyinvo.backend import set_backend, set_num_threads

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
        threads = threads_per_worker or default_threads(workers)
        # "spawn": a fresh interpreter per worker; forking a process whose Numba threads already
        # run is unsafe, and spawn is what macOS and Windows do anyway
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=limit_threads_at_start, initargs=(threads,))
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        yield None


def default_workers(runs):
    """Local workers when the user gives none: one per core, but no more than there are runs.

    Measured on 2 cores (benchmarks/bench_study.py, README): 2 workers x 1 thread finish 1.2x the
    runs per hour of one run at a time on 2 threads. Independent runs use every core all the time;
    one run's Numba loops and small BLAS calls leave a core idle at every synchronisation.
    """
    return max(1, min(os.cpu_count() or 1, runs))


def default_threads(workers):
    """Threads per worker when the user gives none: the machine's cores shared out evenly."""
    return max(1, (os.cpu_count() or 1) // workers)


def limit_threads_at_start(threads):
    """Initializer of a local worker process: ``threads`` threads for the libraries loaded later.

    Numba's thread pool and OpenMP read these variables when they start, i.e. at the first
    parallel kernel of the worker. BLAS, already loaded with NumPy, is limited per run by
    ``train_on_worker`` (through ``set_num_threads``), as is Numba's count of the running thread.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def train_on_worker(train, run, run_dir, progress, backend, threads):
    """The task a worker executes: the caller's backend and thread count, then ``train(run)``.

    The backend travels with the task, so every worker computes what the caller would have. Numba's
    thread count belongs to the thread that sets it, and Dask runs tasks in worker threads: so the
    count is set here, in the task, on every kind of worker (None: leave it).
    """
    set_backend(backend)
    if threads is not None:
        set_num_threads(threads)
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
