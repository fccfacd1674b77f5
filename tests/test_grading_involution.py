"""The graded checks of exercise 04_involution (tinyinvo/grading/tasks/involution.py).

Each check runs with core.run_tasks on a namespace of small functions, as a notebook's globals()
would hold them: correct answers score full marks; untouched stubs score "not implemented"; each
usual mistake fails its own task only, with a message that says what is wrong.
"""

from functools import partial

import numpy as np
import pytest

from grading_helpers import only_failure, statuses, stub
from tinyinvo import ops
from tinyinvo.grading.core import ERROR, FAILED, NOT_IMPLEMENTED, PASSED
from tinyinvo.grading.tasks import involution
from tinyinvo.nn import Involution2d


def test_the_points_are_the_specs():
    assert sum(task.points for task in involution.TASKS) == 10


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


# ---- the usual mistakes of the involution get a hint, as those of exercises 01-03 do ----
def loop_forward(group_of=lambda c, C, G: c // (C // G), none_is_zero=False):
    """involution_forward as a student writes it with loops, with a rule for the group of channel c."""
    def forward(x, kernel, stride=1, padding=None):
        N, C, H, W = x.shape
        _, G, K, _, Ho, Wo = kernel.shape
        padding = (0 if none_is_zero else (K - 1) // 2) if padding is None else padding
        xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
        for c in range(C):
            g = group_of(c, C, G)
            for p in range(K):
                for q in range(K):
                    out[:, c] += kernel[:, g, p, q] * xpad[:, c, p:p + stride * Ho:stride, q:q + stride * Wo:stride]
        return out
    return forward


def assigning_backward(dy, x, kernel, stride=1, padding=None):
    """dx with each window's share assigned (=) instead of added (+=)."""
    dx, dkernel = INVOLUTION_CORRECT["involution_backward"](dy, x, kernel, stride, padding)
    N, C, H, W = x.shape
    _, G, K, _, Ho, Wo = kernel.shape
    padding = (K - 1) // 2 if padding is None else padding
    dxpad = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
    for p in range(K):
        for q in range(K):
            share = kernel[:, :, None, p, q] * dy.reshape(N, G, C // G, Ho, Wo)
            dxpad[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] = share.reshape(N, C, Ho, Wo)
    return dxpad[:, :, padding:padding + H, padding:padding + W], dkernel


@pytest.mark.parametrize("wrong, task, status, words", [
    (loop_forward(group_of=lambda c, C, G: c // G), "involution_forward", ERROR,
     ["crashed: IndexError", "in forward, line", "c // (C // G)", "c // G"]),
    (loop_forward(group_of=lambda c, C, G: c % G), "involution_forward", FAILED,
     ["out is wrong at index", "c % G", "c // (C // G)"]),
    (loop_forward(none_is_zero=True), "involution_forward", ERROR,
     ["padding=None) crashed: ValueError", "\"same\" padding (K - 1) // 2", "take None as 0"]),
], ids=["c // G", "c % G", "padding=None as 0"])
def test_involution_forward_mistakes_get_their_hint(wrong, task, status, words):
    message = only_failure(involution, involution_with(involution_forward=wrong), task, status)
    assert all(word in message for word in words), message


def test_a_dx_assigned_instead_of_summed_gets_the_overlap_hint():
    message = only_failure(involution, involution_with(involution_backward=assigning_backward),
                           "involution_backward: dx")
    assert "dx is wrong at index" in message and "lies in" in message and "(+=), do not assign it (=)" in message


def test_a_backward_taking_none_as_zero_padding_gets_the_hint():
    def backward(dy, x, kernel, stride=1, padding=None):
        return INVOLUTION_CORRECT["involution_backward"](dy, x, kernel, stride, 0 if padding is None else padding)
    results = statuses(involution, involution_with(involution_backward=backward))
    for task in ("involution_backward: dx", "involution_backward: dkernel"):
        assert results[task].points == 0 and "take None as 0" in results[task].message, results[task]


def test_a_float64_result_for_float32_input_loses_its_points():
    def forward(x, kernel, stride=1, padding=None):
        return INVOLUTION_CORRECT["involution_forward"](x, kernel, stride, padding).astype(np.float64)
    message = only_failure(involution, involution_with(involution_forward=forward), "involution_forward")
    assert "float32" in message and "out has dtype float64, expected float32 (the input's dtype)" in message

