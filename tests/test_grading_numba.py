"""The graded checks of exercise 06_numba_kernel (tinyinvo/grading/tasks/numba_kernel.py).

Each check runs with core.run_tasks on a namespace of small functions, as a notebook's globals()
would hold them: correct answers score full marks; untouched stubs score "not implemented"; each
usual mistake fails its own task only, with a message that says what is wrong.
"""

import numpy as np
import pytest
from numba import njit, prange

from grading_helpers import only_failure, statuses
from tinyinvo.grading.core import FAILED, NOT_IMPLEMENTED, PASSED, run_tasks
from tinyinvo.grading.tasks import numba_kernel


def test_the_points_are_the_specs():
    assert sum(task.points for task in numba_kernel.TASKS) == 8


# ---- 06_numba_kernel ----

@njit
def relu_njit(x):
    out = np.empty_like(x)
    x_flat, out_flat = x.reshape(-1), out.reshape(-1)
    for u in range(x_flat.size):
        out_flat[u] = max(x_flat[u], 0)
    return out


@njit
def relu_njit_float64(x):  # allocates float64 whatever the input
    return np.maximum(x, 0).astype(np.float64)


def depthwise_loops(x, w, stride, padding):
    """The depthwise forward as loops over planes; compiled below with and without parallel=True."""
    N, C, H, W = x.shape
    K = w.shape[1]
    Ho, Wo = (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for plane in prange(N * C):
        n, c = plane // C, plane % C
        for i in range(Ho):
            for j in range(Wo):
                for p in range(K):
                    for q in range(K):
                        h, v = i * stride + p - padding, j * stride + q - padding
                        if 0 <= h < H and 0 <= v < W:
                            y[n, c, i, j] += w[c, p, q] * x[n, c, h, v]
    return y


def depthwise_zeros(x, w, stride, padding):
    """The right shape and no loop: with parallel=True, Numba runs np.zeros in parallel, but there is
    no prange loop of the student's."""
    N, C, H, W = x.shape
    K = w.shape[1]
    return np.zeros((N, C, (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1), x.dtype)


# the stubs of the exercise notebook: the decorators are outside the solution regions
@njit
def relu_stub(x):
    raise NotImplementedError("your code here")


@njit(parallel=True)
def depthwise_stub(x, w, stride, padding):
    raise NotImplementedError("your code here")


@pytest.fixture(scope="module")
def numba_correct():
    return {"relu_numba": relu_njit, "depthwise_forward_numba": njit(parallel=True)(depthwise_loops)}


def test_numba_correct_answers_pass(numba_correct):
    results = statuses(numba_kernel, numba_correct)
    assert all(result.status == PASSED for result in results.values()), results


# parallel=True on a function without a loop makes Numba warn that it found nothing to parallelise
NOTHING_TO_PARALLELISE = pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")


@NOTHING_TO_PARALLELISE
def test_numba_stubs_are_not_implemented():
    results = statuses(numba_kernel, {"relu_numba": relu_stub, "depthwise_forward_numba": depthwise_stub})
    assert {result.status for result in results.values()} == {NOT_IMPLEMENTED}


def test_plain_python_functions_fail_with_the_disable_jit_hint(numba_correct):
    namespace = {"relu_numba": lambda x: np.maximum(x, 0), "depthwise_forward_numba": depthwise_loops}
    results = statuses(numba_kernel, namespace)
    for name in ["relu_numba", "depthwise_forward_numba: parallel=True"]:
        assert results[name].status == FAILED
        assert "plain Python function" in results[name].message
        assert "NUMBA_DISABLE_JIT=1" in results[name].message
    assert results["depthwise_forward_numba"].status == PASSED  # the values are right, compiled or not


def test_a_relu_that_changes_the_dtype_fails(numba_correct):
    message = only_failure(numba_kernel, {**numba_correct, "relu_numba": relu_njit_float64}, "relu_numba")
    assert "the result has dtype float64, expected float32" in message


def test_depthwise_without_parallel_fails_only_the_parallel_task(numba_correct):
    namespace = {**numba_correct, "depthwise_forward_numba": njit(depthwise_loops)}
    message = only_failure(numba_kernel, namespace, "depthwise_forward_numba: parallel=True")
    assert "without parallel=True" in message


@NOTHING_TO_PARALLELISE
def test_parallel_without_a_prange_loop_fails():
    namespace = {"depthwise_forward_numba": njit(parallel=True)(depthwise_zeros)}
    (result,) = run_tasks(numba_kernel.TASKS, namespace, only="depthwise_forward_numba: parallel=True", watch=False)
    assert result.status == FAILED and "no prange loop" in result.message
