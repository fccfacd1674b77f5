"""Benchmark the three ops: NumPy reference vs Numba kernels vs PyTorch CPU (when importable).

    python benchmarks/bench_ops.py [--threads 2] [--repeat R] [--rounds P] [--json PATH] [--quick]

For N=64 and (C, H=W) in (64, 32), (128, 16), (256, 8): conv 3x3 (Co = C), depthwise 7x7 and
involution 7x7 (G = C/16), all with 'same' padding and stride 1, forward and forward+backward.
Prints median milliseconds, GFLOP/s (FLOPs = 2 x multiply-adds; forward+backward = 3 x forward),
the NumPy/Numba and PyTorch/Numba time ratios, and the fraction of the machine each Numba kernel
reaches, against a measured float32 SGEMM peak (compute) and a large parallel array copy (memory).
The PyTorch involution is the paper's reference code: unfold x, view it as (N, G, C/G, K*K, Ho, Wo),
multiply by the kernel, sum over K*K; all PyTorch backward passes are autograd's.

Each framework runs as a user runs it: in fresh processes of its own, with its own threads and its
own way of idling them (OMP_WAIT_POLICY stays unset unless you set it: PASSIVE would make
PyTorch's OpenMP threads sleep, and wake again, around every op). The Numba process never imports
torch, and the NumPy reference's BLAS threads, which keep spinning for a while after each
product, never run next to another framework's kernels. P rounds of processes, the frameworks
taking turns (who goes first rotates); in each process every variant runs once per round for R
rounds, interleaved, and its median is taken; the table gives the median
over the P processes. Also reported: the first-call time of the Numba kernels with a cold cache
(compilation) and a warm one (loading from the cache), each in a fresh subprocess.
Results go to a JSON file (default benchmarks/results/ops.json).
"""

import argparse
import os
import sys

from common import benchmark_parser, pin_threads

BACKENDS = ("numpy", "numba", "torch")


def parse_args():
    parser = benchmark_parser(__doc__, "ops.json")
    parser.add_argument("--repeat", type=int, default=None, help="timed rounds per variant (default 5, quick 2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="processes per framework, taking turns (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: batch 4 instead of 64, 2 rounds")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)  # one framework's process
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    pin_threads(ARGS.threads, idle_threads_sleep=False)   # every framework in processes of its own

import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tinyinvo import ops  # noqa: E402
from tinyinvo.backend import set_num_threads  # noqa: E402
from tinyinvo.ops.checks import output_size  # noqa: E402

torch = F = None  # imported by load_torch(), only in the PyTorch process


def load_torch():
    """Import PyTorch into this module's ``torch`` and ``F``, if installed (None otherwise)."""
    global torch, F
    try:
        import torch as module
        import torch.nn.functional as functional
    except ImportError:
        return None
    torch, F = module, functional
    return torch

CONFIGS = [(64, 32), (128, 16), (256, 8)]  # (C, H = W)
K_OF = {"conv": 3, "depthwise": 7, "involution": 7}


# ---------------------------------------------------------------- problem sizes


def problem(op, N, C, H, dtype=np.float32, seed=0):
    """Inputs (x, weight, dy), padding, forward FLOPs and the bytes every pass must at least move."""
    K = K_OF[op]
    padding = K // 2
    Ho = output_size(H, K, 1, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    if op == "conv":
        weight = (rng.standard_normal((C, C, K, K)) / np.sqrt(C * K * K)).astype(dtype)
        multiply_adds = N * C * Ho * Ho * C * K * K
    elif op == "depthwise":
        weight = rng.standard_normal((C, K, K)).astype(dtype)
        multiply_adds = N * C * Ho * Ho * K * K
    else:
        weight = rng.standard_normal((N, C // 16, K, K, Ho, Ho)).astype(dtype)
        multiply_adds = N * C * Ho * Ho * K * K
    dy = rng.standard_normal((N, C, Ho, Ho)).astype(dtype)
    # forward reads x and the weight and writes y; the backward reads dy, x, weight, writes dx, dweight
    forward_bytes = x.nbytes + weight.nbytes + dy.nbytes
    return (x, weight, dy), padding, 2 * multiply_adds, forward_bytes


# ---------------------------------------------------------------- the variants


def numpy_or_numba(op, backend, padding):
    forward = {"conv": ops.conv2d_forward, "depthwise": ops.depthwise_conv2d_forward,
               "involution": ops.involution_forward}[op]
    backward = {"conv": ops.conv2d_backward, "depthwise": ops.depthwise_conv2d_backward,
                "involution": ops.involution_backward}[op]

    def run(arrays, with_backward):
        x, weight, dy = arrays
        forward(x, weight, padding=padding, backend=backend)
        if with_backward:
            backward(dy, x, weight, padding=padding, backend=backend)
    return run


def torch_involution(x, kernel, padding):
    """The paper's reference involution: unfold, view, multiply by the kernel, sum over K*K."""
    N, C, H, W = x.shape
    G, K, _, Ho, Wo = kernel.shape[1:]
    unfolded = F.unfold(x, K, padding=padding).view(N, G, C // G, K * K, Ho, Wo)
    weight = kernel.reshape(N, G, K * K, Ho, Wo).unsqueeze(2)
    return (weight * unfolded).sum(dim=3).view(N, C, Ho, Wo)


def pytorch(op, padding):
    def forward(x, weight):
        if op == "conv":
            return F.conv2d(x, weight, padding=padding)
        if op == "depthwise":
            return F.conv2d(x, weight.unsqueeze(1), padding=padding, groups=x.shape[1])
        return torch_involution(x, weight, padding)

    def run(arrays, with_backward):
        x, weight, dy = arrays
        if not with_backward:
            with torch.no_grad():
                forward(x, weight)
            return
        x.grad = weight.grad = None
        forward(x, weight).backward(dy)
    return run


def torch_arrays(arrays):
    x, weight, dy = (torch.from_numpy(a.copy()) for a in arrays)
    return x.requires_grad_(), weight.requires_grad_(), dy


# ---------------------------------------------------------------- machine limits


@njit(parallel=True, cache=True)
def _parallel_copy(source, target):
    for k in prange(source.shape[0]):
        target[k] = source[k]


def machine_limits(repeat):
    """Measured float32 SGEMM GFLOP/s (BLAS) and copy bandwidth in GB/s (bytes read + written)."""
    n = 2048
    a, b = np.random.default_rng(0).standard_normal((2, n, n)).astype(np.float32)
    source = np.ones(1 << 26, np.float32)  # 256 MiB: far beyond the caches
    target = np.empty_like(source)
    a @ b
    _parallel_copy(source, target)
    gemm, copy = [], []
    for _ in range(max(3, repeat)):
        gemm.append(seconds(lambda: a @ b))
        copy.append(seconds(lambda: _parallel_copy(source, target)))
    return dict(sgemm_gflops=2 * n ** 3 / np.median(gemm) / 1e9,
                copy_gbytes_per_s=2 * source.nbytes / np.median(copy) / 1e9)


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# ---------------------------------------------------------------- compile time

FIRST_CALLS = r"""
import time, numpy as np
start = time.perf_counter()
from tinyinvo import ops
x = np.ones((2, 32, 8, 8), np.float32)
y = ops.conv2d_forward(x, np.ones((4, 32, 3, 3), np.float32), padding=1, backend="numba")
ops.conv2d_backward(y, x, np.ones((4, 32, 3, 3), np.float32), padding=1, backend="numba")
y = ops.depthwise_conv2d_forward(x, np.ones((32, 7, 7), np.float32), padding=3, backend="numba")
ops.depthwise_conv2d_backward(y, x, np.ones((32, 7, 7), np.float32), padding=3, backend="numba")
kernel = np.ones((2, 2, 7, 7, 8, 8), np.float32)
y = ops.involution_forward(x, kernel, backend="numba")
ops.involution_backward(y, x, kernel, backend="numba")
print(time.perf_counter() - start)
"""


def first_call_seconds():
    """Seconds for import + the first call of all six ops (float32): cold cache, then warm cache."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        times = [float(subprocess.run([sys.executable, "-c", FIRST_CALLS], env=env, cwd=root, check=True,
                                      capture_output=True, text=True).stdout.split()[-1]) for _ in range(2)]
    return dict(cold_cache_s=times[0], warm_cache_s=times[1])


# ---------------------------------------------------------------- main


def variants_of(backend, N, runnable=True):
    """Every (op, config, mode) variant of one framework: its sizes and, if ``runnable``, its inputs
    and a run(inputs, with_backward) (the driver process needs only the sizes: runnable=False)."""
    variants = []
    for op in K_OF:
        for C, H in CONFIGS:
            arrays, padding, flops, forward_bytes = problem(op, N, C, H)
            run = inputs = None
            if runnable and backend == "torch":
                run, inputs = pytorch(op, padding), torch_arrays(arrays)
            elif runnable:
                run, inputs = numpy_or_numba(op, backend, padding), arrays
            for mode in ("fwd", "fwd+bwd"):
                variants.append(dict(op=op, C=C, H=H, K=K_OF[op], mode=mode, backend=backend, run=run,
                                     inputs=inputs, flops=flops * (1 if mode == "fwd" else 3),
                                     bytes=forward_bytes * (1 if mode == "fwd" else 3)))
    return variants


def key_of(variant):
    return f"{variant['op']} {variant['C']} {variant['H']} {variant['mode']}"


def time_in_this_process(args, N, repeat):
    """A worker: time one framework's variants, interleaved, and print {variant: median seconds} as JSON."""
    set_num_threads(args.threads)  # Numba (started as the backend starts it) and BLAS
    if args.worker == "torch":
        load_torch().set_num_threads(args.threads)
    variants = variants_of(args.worker, N)
    for v in variants:  # warm-up: compile or load kernels, fill caches
        v["run"](v["inputs"], v["mode"] == "fwd+bwd")
    times = {key_of(v): [] for v in variants}
    for _ in range(repeat):
        for v in variants:
            times[key_of(v)].append(seconds(lambda: v["run"](v["inputs"], v["mode"] == "fwd+bwd")))
    print(json.dumps({key: float(np.median(seconds_)) for key, seconds_ in times.items()}))


def run_worker(args, backend, N, repeat):
    """Run one framework's process; its {variant key: median seconds}."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", backend, "--threads", str(args.threads),
               "--repeat", str(repeat)] + ["--quick"] * args.quick
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the {backend} process failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def main():
    args = ARGS
    repeat = args.repeat or (2 if args.quick else 5)
    rounds = args.rounds or (1 if args.quick else 3)
    N = 4 if args.quick else 64
    if args.worker:
        return time_in_this_process(args, N, repeat)
    set_num_threads(args.threads)
    backends = [b for b in BACKENDS if b != "torch" or importlib.util.find_spec("torch") is not None]
    print(f"threads={args.threads} (Numba layer {numba.config.THREADING_LAYER}, BLAS, PyTorch), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, N={N}, {rounds} processes per framework "
          f"x {repeat} rounds, float32", flush=True)
    print("compile time ...", flush=True)
    compile_time = first_call_seconds()
    print("machine limits ...", flush=True)
    limits = machine_limits(repeat)

    per_process = {b: [] for b in backends}
    for round_ in range(rounds):
        for b in backends[round_ % len(backends):] + backends[:round_ % len(backends)]:
            print(f"round {round_ + 1}/{rounds}: {b} ...", flush=True)
            per_process[b].append(run_worker(args, b, N, repeat))
    sizes = variants_of(None, N, runnable=False)   # the same variants for every framework
    variants = [dict(v, backend=b, times=[times[key_of(v)] for times in per_process[b]])   # a median per process
                for b in backends for v in sizes]

    rows = report(variants, limits, compile_time, N)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(dict(threads=args.threads, N=N, rounds=repeat, processes=rounds, dtype="float32",
                       omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
                       numba=numba.__version__, numpy=np.__version__,
                       torch=importlib.metadata.version("torch") if "torch" in backends else None,
                       cpu=platform.processor() or platform.machine(),
                       machine_limits=limits, numba_first_call=compile_time, results=rows), file, indent=1)
    print(f"\nwritten to {args.json}")


def report(variants, limits, compile_time, N):
    table = {(v["op"], v["C"], v["H"], v["mode"], v["backend"]): v for v in variants}
    rows = []
    print(f"\nmachine: float32 SGEMM {limits['sgemm_gflops']:.0f} GFLOP/s, "
          f"copy {limits['copy_gbytes_per_s']:.1f} GB/s (read + write)")
    print(f"Numba first call of all six ops (import included): cold cache {compile_time['cold_cache_s']:.1f} s, "
          f"warm cache {compile_time['warm_cache_s']:.1f} s")
    print("GFLOP/s counts 2 FLOPs per multiply-add; fwd+bwd = 3 x the forward's FLOPs. Times: median ms.")
    print("%peak = Numba GFLOP/s / SGEMM peak; %bw = (bytes that must move at least) / time / copy bandwidth.\n")
    header = (f"{'op':<13}{'C':>4}{'HxW':>7} {'pass':<8}{'NumPy ms':>10}{'Numba ms':>10}{'PyTorch ms':>11}"
              f"{'NumPy/Numba':>12}{'PyTorch/Numba':>14}{'GFLOP/s':>9}{'%peak':>7}{'%bw':>6}")
    print(header)
    print("-" * len(header))
    for v in variants:
        if v["backend"] != "numba":
            continue
        key = (v["op"], v["C"], v["H"], v["mode"])
        ms = {b: float(np.median(table[key + (b,)]["times"]) * 1e3) for b in ("numpy", "numba", "torch")
              if key + (b,) in table}
        gflops = v["flops"] / ms["numba"] / 1e6
        row = dict(op=v["op"], K=v["K"], C=v["C"], H=v["H"], W=v["H"], N=N, mode=v["mode"],
                   flops=v["flops"], min_bytes=v["bytes"], ms=ms, numba_gflops=gflops,
                   numpy_over_numba=ms["numpy"] / ms["numba"],
                   torch_over_numba=ms["torch"] / ms["numba"] if "torch" in ms else None,
                   fraction_of_sgemm_peak=gflops / limits["sgemm_gflops"],
                   fraction_of_copy_bandwidth=v["bytes"] / (ms["numba"] / 1e3) / 1e9 / limits["copy_gbytes_per_s"])
        rows.append(row)
        torch_ms = f"{ms['torch']:11.1f}" if "torch" in ms else f"{'-':>11}"
        torch_ratio = f"{row['torch_over_numba']:14.2f}" if "torch" in ms else f"{'-':>14}"
        name = f"{v['op']} {v['K']}x{v['K']}"
        print(f"{name:<13}{v['C']:>4}{str(v['H']) + 'x' + str(v['H']):>7} {v['mode']:<8}{ms['numpy']:10.1f}"
              f"{ms['numba']:10.1f}{torch_ms}{row['numpy_over_numba']:12.1f}{torch_ratio}{gflops:9.1f}"
              f"{100 * row['fraction_of_sgemm_peak']:6.0f}%{100 * row['fraction_of_copy_bandwidth']:5.0f}%")
    if not any(v["backend"] == "torch" for v in variants):
        print("\nPyTorch is not importable: install it with exactly `pip install torch==2.13.0` for that column.")
    return rows


if __name__ == "__main__":
    main()
