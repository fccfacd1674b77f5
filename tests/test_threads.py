"""How the Numba backend starts its threads (tinyinvo/ops/numba_backend/threads.py).

Each case runs in a fresh interpreter: thread pools and OpenMP runtimes start once per process.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

# Numba's threads started by the user's own parallel loop BEFORE tinyinvo's kernels, and PyTorch
# imported (a stand-in module will do: tinyinvo only looks it up): tinyinvo can no longer choose
# how idle threads wait, with another OpenMP runtime in the process, so it must say so, once.
STARTED_BEFORE = """
import sys, types, warnings
import numpy as np
from numba import njit, prange
if "torch" in sys.argv:
    sys.modules["torch"] = types.ModuleType("torch")

@njit(parallel=True)
def fill(values):
    for k in prange(values.size):
        values[k] = k

fill(np.empty(4))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from tinyinvo.ops import numba_backend
    numba_backend.threads.start_threads()   # a second call: still one warning
print(sum("OMP_WAIT_POLICY=PASSIVE" in str(w.message) for w in caught))
"""

# The usual order: tinyinvo starts the threads; the environment is left as it was.
USUAL = """
import os, warnings
import numpy as np
warnings.simplefilter("error")
from tinyinvo import ops
x = np.ones((1, 2, 5, 5), np.float32)
ops.depthwise_conv2d_forward(x, np.ones((2, 3, 3), np.float32), padding=1, backend="numba")
import numba
print(os.environ.get("OMP_WAIT_POLICY"), numba.threading_layer())
"""


def run(program, *args, **env):
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True,
                            env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_warns_once_when_numba_threads_started_before_tinyinvo_next_to_torch():
    assert run(STARTED_BEFORE, "torch") == ["1"]


def test_no_warning_without_another_runtime_or_with_a_chosen_wait_policy():
    assert run(STARTED_BEFORE) == ["0"]           # Numba's own runtime only
    assert run(STARTED_BEFORE, "torch", OMP_WAIT_POLICY="PASSIVE") == ["0"]


def test_importing_and_running_leaves_the_environment_alone():
    policy, layer = run(USUAL)
    assert policy == "None"   # PASSIVE was set only while Numba's runtime started
    assert layer in ("omp", "tbb", "workqueue")
