"""The Numba kernels are compiled once and then loaded from the on-disk cache (``cache=True``).

A first subprocess runs every op, forward and backward, in float32 and float64, which compiles
each kernel twice and writes the machine code to a temporary NUMBA_CACHE_DIR. A second, fresh
subprocess does the same and reports Numba's own per-kernel statistics: every kernel must have
been loaded from the cache (a hit per dtype) and compiled never (zero misses). No timing involved.
"""

import json
import os
import subprocess
import sys


RUN_EVERY_KERNEL = r"""
import json
import numpy as np
import numba
from tinyinvo import ops
from tinyinvo.ops import numba_backend
from tinyinvo.ops.numba_backend import conv, depthwise, involution

rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    x = rng.standard_normal((2, 4, 6, 5)).astype(dtype)
    w = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    y = ops.conv2d_forward(x, w, padding=1, backend="numba")
    ops.conv2d_backward(y, x, w, padding=1, backend="numba")
    w = rng.standard_normal((4, 3, 3)).astype(dtype)
    y = ops.depthwise_conv2d_forward(x, w, stride=2, padding=1, backend="numba")
    ops.depthwise_conv2d_backward(y, x, w, stride=2, padding=1, backend="numba")
    kernel = rng.standard_normal((2, 2, 3, 3, 6, 5)).astype(dtype)
    y = ops.involution_forward(x, kernel, backend="numba")
    ops.involution_backward(y, x, kernel, backend="numba")

stats = {}
for module in (conv, depthwise, involution):
    for name, obj in vars(module).items():
        if isinstance(obj, numba.core.dispatcher.Dispatcher) and obj.py_func.__module__ == module.__name__:
            stats[f"{module.__name__}.{name}"] = dict(
                signatures=len(obj.signatures),
                hits=sum(obj.stats.cache_hits.values()),
                misses=sum(obj.stats.cache_misses.values()))
print(json.dumps(stats))
"""

KERNELS = {
    "tinyinvo.ops.numba_backend.conv._im2col_kernel", "tinyinvo.ops.numba_backend.conv._col2im_kernel",
    "tinyinvo.ops.numba_backend.depthwise._forward_kernel", "tinyinvo.ops.numba_backend.depthwise._backward_kernel",
    "tinyinvo.ops.numba_backend.involution._forward_kernel", "tinyinvo.ops.numba_backend.involution._backward_kernel",
}


def run_every_kernel(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_DISABLE_JIT", None)
    done = subprocess.run([sys.executable, "-c", RUN_EVERY_KERNEL], env=env, capture_output=True, text=True,
                          check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_loads_every_kernel_from_the_disk_cache(tmp_path):
    cold = run_every_kernel(tmp_path)
    assert KERNELS <= set(cold)
    for name in KERNELS:  # the first process compiled each kernel once per dtype and found nothing cached
        assert cold[name] == dict(signatures=2, hits=0, misses=2), (name, cold[name])

    warm = run_every_kernel(tmp_path)
    for name in KERNELS:
        assert warm[name] == dict(signatures=2, hits=2, misses=0), (name, warm[name])
