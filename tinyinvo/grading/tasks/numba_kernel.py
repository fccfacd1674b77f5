"""Checks for exercise 06_numba_kernel: a ReLU and a depthwise convolution compiled with Numba.

The student's functions are called for real, so each check compiles them once per dtype (a few
seconds the first time). Both functions must keep the input's dtype: float32 in, float32 out.
Speed is shown in the notebook, never graded.
"""

import numpy as np
from numba.core.registry import CPUDispatcher

from tinyinvo.grading.compare import (GradingFailure, describe_call, expect_array, expect_unchanged,
                                      hidden_rng)
from tinyinvo.grading.core import Task
from tinyinvo.ops import depthwise_conv2d_forward

EXERCISE = "06_numba_kernel"

# float32 sums in another order differ in the last bits; float64 must agree closely
TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),
             np.dtype(np.float64): dict(rtol=1e-7, atol=1e-9)}

NO_JIT_HINT = ("(with NUMBA_DISABLE_JIT=1 in the environment, Numba returns plain Python functions: "
               "useful for debugging, but unset it and restart the kernel to be graded)")

# (N, C, H, W, K, stride, padding)
DEPTHWISE_CASES = [(1, 2, 6, 6, 3, 1, 1), (2, 3, 7, 9, 3, 2, 1), (2, 2, 9, 8, 5, 1, 2),
                   (1, 3, 8, 7, 5, 2, 0), (2, 4, 5, 6, 3, 1, 0)]


def numba_facts(function):
    """What the checks need to know about a function besides its answers, as data (it is computed
    where the function lives: in the student's kernel when grading a notebook)."""
    if not isinstance(function, CPUDispatcher):
        return {"numba": False, "parallel": False, "prange_loops": None}
    parallel = bool(function.targetoptions.get("parallel"))
    return {"numba": True, "parallel": parallel, "prange_loops": user_prange_loops(function) if parallel else None}


def expect_numba_function(function, name, decorator):
    """Fail unless ``function`` was compiled by Numba's @njit (it is a CPU dispatcher)."""
    if not function.inspect(numba_facts)["numba"]:
        raise GradingFailure(f"{name} is a plain Python function, not a Numba one: decorate it with "
                             f"{decorator} {NO_JIT_HINT}")


def expect_dtype(got, dtype, *, call, what):
    """Fail unless ``got`` is an array of the given dtype (checked before the values)."""
    if isinstance(got, np.ndarray) and got.dtype != dtype:
        raise GradingFailure(f"{call}: {what} has dtype {got.dtype}, expected {dtype} (the input's "
                             f"dtype): allocate it with dtype=x.dtype, e.g. np.empty_like(x)")


def check_relu(student_relu):
    expect_numba_function(student_relu, "relu_numba", "@njit")
    rng = hidden_rng("relu_numba")
    for dtype in (np.float32, np.float64):
        for shape in [(2, 3, 5, 4), (1, 4, 7, 7)]:
            x = rng.standard_normal(shape).astype(dtype)
            x_before = x.copy()
            call = describe_call("relu_numba", x=x)
            got = student_relu(x)
            expect_unchanged(x_before, x, call=call, name="x")
            expect_dtype(got, x.dtype, call=call, what="the result")
            expect_array(got, np.maximum(x, 0), call=call, what="the result", **TOLERANCE[x.dtype])


def check_depthwise(student_depthwise):
    rng = hidden_rng("depthwise_forward_numba")
    for dtype in (np.float32, np.float64):
        for N, C, H, W, K, stride, padding in DEPTHWISE_CASES:
            x = rng.standard_normal((N, C, H, W)).astype(dtype)
            w = rng.standard_normal((C, K, K)).astype(dtype)
            call = describe_call("depthwise_forward_numba", x=x, w=w, stride=stride, padding=padding)
            got = student_depthwise(x, w, stride, padding)
            expect_dtype(got, x.dtype, call=call, what="y")
            expected = depthwise_conv2d_forward(x, w, stride=stride, padding=padding, backend="numpy")
            expect_array(got, expected, call=call, what="y", **TOLERANCE[x.dtype])


def user_prange_loops(dispatcher):
    """How many loops the user wrote with prange, over the versions Numba compiled so far.

    Read from Numba's parallel diagnostics (the "initial parfors" and the pattern that made each
    one); None when Numba did not record them (e.g. a version loaded from the on-disk cache).
    """
    found = None
    for compiled in dispatcher.overloads.values():
        diagnostics = compiled.metadata.get("parfor_diagnostics")
        if diagnostics is None:
            continue
        found = (found or 0) + sum(
            any(tuple(pattern[:2]) == ("prange", "user") for pattern in parfor.patterns)
            for parfor in diagnostics.initial_parfors)
    return found


def check_parallel(student_depthwise):
    decorator = "@njit(parallel=True)"
    expect_numba_function(student_depthwise, "depthwise_forward_numba", decorator)
    if not student_depthwise.inspect(numba_facts)["parallel"]:
        raise GradingFailure(f"depthwise_forward_numba was compiled without parallel=True, so prange "
                             f"runs as a plain range on one thread: decorate it with {decorator}")
    x, w = np.ones((1, 2, 4, 4)), np.ones((2, 3, 3))
    student_depthwise(x, w, 1, 1)  # compiles it (once per dtype); the stub raises NotImplementedError
    if student_depthwise.inspect(numba_facts)["prange_loops"] == 0:
        raise GradingFailure("depthwise_forward_numba has parallel=True but no prange loop, so Numba "
                             "has no loop of yours to split among threads: write the loop over the "
                             "(n, c) planes as `for plane in prange(N * C)`")


TASKS = [
    Task("relu_numba", 2, ("relu_numba",), check_relu),
    Task("depthwise_forward_numba", 4, ("depthwise_forward_numba",), check_depthwise),
    Task("depthwise_forward_numba: parallel=True", 2, ("depthwise_forward_numba",), check_parallel),
]
