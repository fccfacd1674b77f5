"""What the benchmarks share: the options every benchmark has, and pinning the thread counts.

Thread counts must be in the environment before NumPy (BLAS), Numba or PyTorch start their thread
pools, so a benchmark parses its arguments and calls ``pin_threads`` before importing any of them.
"""

import argparse
import os

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def benchmark_parser(description, json_name):
    """An argument parser with --threads and --json (default benchmarks/results/JSON_NAME)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for Numba, BLAS and PyTorch (default 2)")
    parser.add_argument("--json", default=os.path.join(RESULTS_DIR, json_name),
                        help="where to write the results (default %(default)s)")
    return parser


def pin_threads(threads, *, idle_threads_sleep=True):
    """Use ``threads`` threads in BLAS, OpenMP and Numba. With idle_threads_sleep, idle OpenMP
    threads sleep instead of spinning (spinning threads steal the cores the working ones need, when
    two frameworks share a process), unless OMP_WAIT_POLICY is set already. Without it, every
    framework keeps its own default, as a user runs it in a process of its own."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[variable] = str(threads)
    if idle_threads_sleep:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
