"""The graded checks of exercises 04-07 (tinyinvo/grading/tasks/involution.py, counting.py,
numba_kernel.py, mini_project.py).

Each check runs with core.run_tasks on a namespace of small functions, as a notebook's globals()
would hold them: correct answers (built on tinyinvo's reference, or written independently) score
full marks; untouched stubs score "not implemented"; each usual mistake fails its own task only,
with a message that says what is wrong.
"""

from functools import partial

import numpy as np
import pytest
from numba import njit, prange

from tinyinvo import ops
from tinyinvo.count import count
from tinyinvo.count.formulas import conv2d_cost, depthwise_conv2d_cost, involution_cost
from tinyinvo.grading.core import ERROR, FAILED, NOT_IMPLEMENTED, PASSED, run_tasks
from tinyinvo.grading.tasks import counting, involution, mini_project, numba_kernel
from tinyinvo.models import build
from tinyinvo.nn import Involution2d


def statuses(module, namespace, only=None):
    """{task name: TaskResult} of running the module's tasks on ``namespace``."""
    return {result.name: result for result in run_tasks(module.TASKS, namespace, only=only, watch=False)}


def only_failure(module, namespace, task_name, status=FAILED):
    """Assert that ``task_name`` ends with ``status`` and every other task passes; return its message."""
    results = statuses(module, namespace)
    assert {name: result.status for name, result in results.items() if name != task_name} == \
        {name: PASSED for name in results if name != task_name}
    assert results[task_name].status == status, results[task_name]
    assert results[task_name].points == 0
    return results[task_name].message


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


def test_points_per_exercise_are_the_specs():
    for module, points in [(involution, 10), (counting, 10), (numba_kernel, 8), (mini_project, 6)]:
        assert sum(task.points for task in module.TASKS) == points, module.EXERCISE


# ---- 04_involution ----

def einsum_generate_kernel(x, w_reduce, w_span, b_span, G, K, relu=True, bias=True, split="gpq"):
    """The kernel generator written with einsum. The keywords make the usual mistakes: no ReLU, no bias,
    the G*K*K channels read in another order than "gpq" (g first, then p, then q)."""
    N, _, H, W = x.shape
    hidden = np.einsum("oc,nchw->nohw", w_reduce, x)
    hidden = np.maximum(hidden, 0) if relu else hidden
    span = np.einsum("oc,nchw->nohw", w_span, hidden) + (b_span[:, None, None] if bias else 0)
    sizes = dict(g=G, p=K, q=K)
    kernel = span.reshape(N, *(sizes[axis] for axis in split), H, W)
    return kernel.transpose(0, *(1 + split.index(axis) for axis in "gpq"), 4, 5)


INVOLUTION_CORRECT = {
    "involution_forward": lambda x, kernel, stride=1, padding=None: ops.involution_forward(
        x, kernel, stride=stride, padding=padding, backend="numpy"),
    "involution_backward": lambda dy, x, kernel, stride=1, padding=None: ops.involution_backward(
        dy, x, kernel, stride=stride, padding=padding, backend="numpy"),
    "generate_kernel": einsum_generate_kernel,
}


def test_involution_correct_answers_pass():
    results = statuses(involution, INVOLUTION_CORRECT)
    assert all(result.status == PASSED for result in results.values()), results


def test_involution_stubs_are_not_implemented():
    results = statuses(involution, dict.fromkeys(INVOLUTION_CORRECT, stub))
    assert {result.status for result in results.values()} == {NOT_IMPLEMENTED}
    assert statuses(involution, {})["generate_kernel"].message.startswith("define generate_kernel")


def test_the_generator_reference_is_involution2d_without_batchnorm():
    """The grader's kernel (channel g*K*K + p*K + q is (g, p, q)) is the layer's ``last_kernel``
    when its BatchNorm does nothing (eval mode, running variance 1 - eps)."""
    layer = Involution2d(8, kernel_size=3, group_channels=4, reduction_ratio=2,
                         rng=np.random.default_rng(3), dtype=np.float64)
    layer.eval()
    layer.bn.buffers["running_var"][:] = 1 - layer.bn.eps
    x = np.random.default_rng(4).standard_normal((2, 8, 5, 6))
    layer.forward(x)
    kernel = involution.reference_kernel(x, layer.reduce.params["w"][:, :, 0, 0],
                                         layer.span.params["w"][:, :, 0, 0], layer.span.params["b"],
                                         G=2, K=3)
    np.testing.assert_allclose(kernel, layer.last_kernel, rtol=1e-12, atol=1e-12)


def involution_with(**changes):
    return {**INVOLUTION_CORRECT, **changes}


def test_involution_forward_with_flipped_kernel_fails():
    def flipped(x, kernel, stride=1, padding=None):  # a true convolution instead of a cross-correlation
        kernel = np.ascontiguousarray(kernel[:, :, ::-1, ::-1])
        return ops.involution_forward(x, kernel, stride=stride, padding=padding, backend="numpy")
    message = only_failure(involution, involution_with(involution_forward=flipped), "involution_forward")
    assert "out is wrong at index" in message and "involution_forward(x: (1, 2, 5, 5) float64" in message


def test_involution_forward_with_groups_swapped_fails_on_two_groups():
    def swapped(x, kernel, stride=1, padding=None):  # channel c takes the kernel of group G - 1 - g(c)
        kernel = np.ascontiguousarray(kernel[:, ::-1])
        return ops.involution_forward(x, kernel, stride=stride, padding=padding, backend="numpy")
    message = only_failure(involution, involution_with(involution_forward=swapped), "involution_forward")
    assert "(2, 4, 6, 7) float64" in message  # the first case with G = 2


def test_involution_forward_without_same_padding_default_fails():
    def forward(x, kernel, stride=1, padding=0):  # the default should be None, "same" padding
        K = kernel.shape[2]
        return ops.involution_forward(x, kernel, stride=stride,
                                      padding=(K - 1) // 2 if padding is None else padding, backend="numpy")
    # the default call gets kernel shapes that do not fit padding 0: tinyinvo's op refuses them
    message = only_failure(involution, involution_with(involution_forward=forward), "involution_forward", ERROR)
    assert "involution_forward(x: (1, 2, 5, 6) float64, kernel: (1, 1, 3, 3, 5, 6) float64) crashed: ValueError" \
        in message


def test_involution_forward_that_changes_x_fails():
    def forward(x, kernel, stride=1, padding=None):
        out = ops.involution_forward(x, kernel, stride=stride, padding=padding, backend="numpy")
        x *= 2
        return out
    message = only_failure(involution, involution_with(involution_forward=forward), "involution_forward")
    assert "changed its input x in place" in message


def test_a_wrong_dkernel_costs_only_dkernel():
    def backward(dy, x, kernel, stride=1, padding=None):
        dx, dkernel = INVOLUTION_CORRECT["involution_backward"](dy, x, kernel, stride, padding)
        group_size = x.shape[1] // kernel.shape[1]
        return dx, dkernel / group_size  # averaged over the group's channels instead of summed
    message = only_failure(involution, involution_with(involution_backward=backward),
                           "involution_backward: dkernel")
    assert "dkernel is wrong at index" in message


def test_a_dx_with_its_padding_costs_only_dx():
    def backward(dy, x, kernel, stride=1, padding=None):
        dx, dkernel = INVOLUTION_CORRECT["involution_backward"](dy, x, kernel, stride, padding)
        return np.pad(dx, ((0, 0), (0, 0), (1, 1), (1, 1))), dkernel  # padding not cropped
    message = only_failure(involution, involution_with(involution_backward=backward), "involution_backward: dx")
    assert "dx has shape (1, 2, 7, 7), expected (1, 2, 5, 5)" in message


def test_a_backward_returning_one_array_fails_both_gradients():
    def backward(dy, x, kernel, stride=1, padding=None):  # dx alone
        return ops.involution_backward(dy, x, kernel, stride=stride, padding=padding, backend="numpy")[0]
    results = statuses(involution, involution_with(involution_backward=backward))
    for name in ["involution_backward: dx", "involution_backward: dkernel"]:
        assert results[name].status == FAILED
        assert "should return a pair (dx, dkernel), got ndarray" in results[name].message


@pytest.mark.parametrize("mistake", [dict(relu=False), dict(bias=False), dict(split="pqg")], ids=str)
def test_generate_kernel_mistakes_fail(mistake):
    generate = partial(einsum_generate_kernel, **mistake)
    message = only_failure(involution, involution_with(generate_kernel=generate), "generate_kernel")
    assert "kernel (N, G, K, K, H, W) is wrong at index" in message


# ---- 05_counting ----

COUNTING_CORRECT = {
    "conv_params": lambda Ci, Co, K: conv2d_cost(Ci, Co, K, 1, 1).params,
    "conv_macs": lambda Ci, Co, K, Ho, Wo: conv2d_cost(Ci, Co, K, Ho, Wo).macs,
    "depthwise_params": lambda C, K: depthwise_conv2d_cost(C, K, 1, 1).params,
    "depthwise_macs": lambda C, K, Ho, Wo: depthwise_conv2d_cost(C, K, Ho, Wo).macs,
    "involution_params": lambda C, K, G, r: involution_cost(C, K, G, r, 1, 1).params,
    "involution_macs": lambda C, K, G, r, Ho, Wo: involution_cost(C, K, G, r, Ho, Wo).macs,
    # written out by hand, so that the grader's table is checked too
    "layer_table": {"conv3x3": (36864, 37748736), "dw7x7": (3136, 3211264),
                    "inv7x7 (G=4, r=4)": (4388, 7471104)},
}


def counting_with(**changes):
    return {**COUNTING_CORRECT, **changes}


def test_counting_correct_answers_pass():
    results = statuses(counting, COUNTING_CORRECT)
    assert all(result.status == PASSED for result in results.values()), results


def test_counting_stubs_are_not_implemented():
    namespace = {name: stub for name in COUNTING_CORRECT if name != "layer_table"}
    results = statuses(counting, namespace)  # layer_table is a value: the stub cell never defines it
    assert {result.status for result in results.values()} == {NOT_IMPLEMENTED}


@pytest.mark.parametrize("task_name, wrong, hint", [
    ("conv_params", lambda Ci, Co, K: Co * Ci * K * K + Co, "count no bias"),
    ("conv_macs", lambda Ci, Co, K, Ho, Wo: 2 * Co * Ci * K * K * Ho * Wo, "that is FLOPs"),
    ("depthwise_params", lambda C, K: C * K * K + C, "count no bias"),
    ("depthwise_macs", lambda C, K, Ho, Wo: C * K * Ho * Wo, "the count should be"),
    ("involution_params", lambda C, K, G, r: C * (C // r) + (C // r) * K * K * G + K * K * G,
     "BatchNorm on C // r channels"),
    ("involution_params", lambda C, K, G, r: C * (C // r) + 2 * (C // r) + (C // r) * K * K * G,
     "the span conv (C // r -> G*K*K) has a bias"),
    ("involution_macs", lambda C, K, G, r, Ho, Wo: (C * (C // r) + (C // r) * K * K * G) * Ho * Wo,
     "add the aggregation"),
    ("involution_macs", lambda C, K, G, r, Ho, Wo: C * K * K * Ho * Wo, "add the kernel generator"),
    ("involution_macs", lambda C, K, G, r, Ho, Wo: (C * C / r + C / r * K * K * G + C * K * K) * Ho * Wo + 1,
     "the count should be"),
])
def test_counting_mistakes_fail_their_own_task(task_name, wrong, hint):
    message = only_failure(counting, counting_with(**{task_name: wrong}), task_name)
    assert message.startswith(f"{task_name}(") and hint in message


@pytest.mark.parametrize("table, words", [
    ({"conv3x3": (36864, 37748736), "dw7x7": (3136, 3211264)}, "the keys should be"),
    ({"conv3x3": (36864, 37748736), "dw7x7": (3136 + 64, 3211264),
      "inv7x7 (G=4, r=4)": (4388, 7471104)}, "layer_table['dw7x7'] (params, macs) should be (3136, 3211264)"),
    ({"conv3x3": 36864, "dw7x7": (3136, 3211264), "inv7x7 (G=4, r=4)": (4388, 7471104)},
     "should be a pair (params, macs)"),
    ([36864, 3136, 4388], "should be a dict"),
])
def test_a_wrong_layer_table_fails(table, words):
    assert words in only_failure(counting, counting_with(layer_table=table), "layer_table")


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


# ---- 07_mini_project ----

BASELINE = dict(block="bottleneck", op="dw7", depth=26, width=17)  # +4.7% MACs of rednet26 at width 16


def test_the_budget_is_rednet26_at_width_16_measured():
    assert mini_project.rednet26_macs() == count(build("rednet26", width=16), (3, 32, 32)).total.macs == 31_562_752


def test_a_matched_baseline_and_its_counts_pass():
    measured = count(build(**BASELINE), (3, 32, 32)).total
    results = statuses(mini_project, dict(baseline_config=BASELINE,
                                          baseline_counts=(measured.params, measured.macs)))
    assert all(result.status == PASSED for result in results.values()), results


def test_mini_project_untouched_is_not_implemented():
    results = statuses(mini_project, {})
    assert {result.status for result in results.values()} == {NOT_IMPLEMENTED}


@pytest.mark.parametrize("config, words", [
    (dict(name="rednet26", width=16), "must not use involution, but layer 'layers.1.layers.0.branches.0"),
    (dict(name="dwnet26", width=16), "29.43 M MACs per image, -6.7% from rednet26's 31.56 M"),
    (dict(block="bottleneck", op="dw7", depth=27, width=17), "raised ValueError: depth for block='bottleneck'"),
    (dict(BASELINE, stem="imagenet"), "use stem='cifar' and num_classes=10"),
    (dict(BASELINE, num_classes=100), "use stem='cifar' and num_classes=10"),
    ([("width", 17)], "should be a dict of tinyinvo.models.build keyword arguments"),
])
def test_a_wrong_baseline_config_fails(config, words):
    (result,) = run_tasks(mini_project.TASKS, dict(baseline_config=config), only="baseline_config", watch=False)
    assert result.status == FAILED and words in result.message, result.message


@pytest.mark.parametrize("counts", [(33030592, 500745), (500745, 33030592 // 2), 500745])
def test_wrong_baseline_counts_fail(counts):
    message = only_failure(mini_project, dict(baseline_config=BASELINE, baseline_counts=counts),
                           "baseline_counts")
    assert "(500745, 33030592)" in message or "should be a pair (params, macs)" in message
