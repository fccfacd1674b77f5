"""Exercise 03_depthwise: depthwise convolution forward and backward, as a dense conv, and grouped convolution.

The depthwise checks are the conv checks of 01 and 02 with the depthwise reference (w is (C, K, K),
C = the case's Ci); depthwise_backward's dx and dw are separate tasks.
"""

from functools import partial

import numpy as np

from tinyinvo import ops
from tinyinvo.grading.compare import expect_array, hidden_rng
from tinyinvo.grading.core import Task
from tinyinvo.grading.tasks.conv_backward import check_backward
from tinyinvo.grading.tasks.conv_forward import CASES, CONV, Case, Op, check_forward, expect_output, \
    extend_failure, run_student, with_float32

EXERCISE = "03_depthwise"

DEPTHWISE = Op(partial(ops.depthwise_conv2d_forward, backend="numpy"),
               partial(ops.depthwise_conv2d_backward, backend="numpy"),
               lambda case: (case.Ci, case.K, case.K))

# (case, groups); w is (Co, Ci // groups, K, K)
GROUPED_CASES = (
    (Case(2, 3, 2, 5, 6, 3, 1, 1), 1),  # groups = 1: a dense conv
    (Case(1, 4, 6, 6, 5, 3, 1, 0), 2),  # two groups: 2 input channels -> 3 output channels each
    (Case(2, 3, 3, 7, 6, 3, 2, 1), 3),  # groups = Ci = Co: a depthwise conv
    (Case(1, 2, 4, 5, 7, 2, 2, 2), 2),  # each input channel feeds 2 output channels of its own
)


def check_depthwise_forward(depthwise_forward):
    check_forward("depthwise_forward", depthwise_forward, DEPTHWISE, CASES)


def check_depthwise_backward(depthwise_backward, output):
    check_backward("depthwise_backward", depthwise_backward, DEPTHWISE, output, CASES)


def check_depthwise_as_dense(depthwise_as_dense):
    rng = hidden_rng("depthwise_as_dense")
    for shape in ((1, 3, 3), (3, 3, 3), (4, 5, 5), (2, 1, 1)):
        w = rng.standard_normal(shape)
        call, dense = run_student("depthwise_as_dense", depthwise_as_dense, {"w": w})
        expected = np.einsum("oc,cpq->ocpq", np.eye(shape[0]), w)  # w[c] on the diagonal o == c
        extend_failure(lambda: expect_array(dense, expected, call=call, what="the dense weight"),
                       lambda: "It is (C, C, K, K) with dense[o, c] = w[c] when o == c and zeros when o != c, "
                               "so that output channel c reads input channel c only")


def reference_grouped_conv(x, w, groups, stride, padding):
    """Split x's channels and w's filters into ``groups`` equal parts, convolve part g of x with part g
    of w, and stack the outputs along the channel axis."""
    return np.concatenate([CONV.forward(x_part, w_part, stride=stride, padding=padding)
                           for x_part, w_part in zip(np.split(x, groups, axis=1), np.split(w, groups, axis=0))],
                          axis=1)


GROUPS_HINT = ("Output channel o is in group g = o // (Co // groups), which reads only the input channels "
               "g*(Ci // groups) to (g+1)*(Ci // groups) - 1")


def check_grouped_conv_forward(grouped_conv_forward):
    rng = hidden_rng("grouped_conv_forward")
    for (case, groups), dtype in with_float32(GROUPED_CASES):
        x = rng.standard_normal((case.N, case.Ci, case.H, case.W)).astype(dtype)
        w = rng.standard_normal((case.Co, case.Ci // groups, case.K, case.K)).astype(dtype)
        call, y = run_student("grouped_conv_forward", grouped_conv_forward, {"x": x, "w": w, "groups": groups},
                              stride=case.stride, padding=case.padding)
        expected = reference_grouped_conv(x, w, groups, case.stride, case.padding)
        extend_failure(lambda: expect_output(y, expected, call=call, what="y", case=case),
                       lambda: GROUPS_HINT if isinstance(y, np.ndarray) and y.shape == expected.shape else "")


TASKS = [
    Task("depthwise_forward", 3, ("depthwise_forward",), check_depthwise_forward),
    Task("depthwise_backward: dx", 2, ("depthwise_backward",), partial(check_depthwise_backward, output="dx")),
    Task("depthwise_backward: dw", 2, ("depthwise_backward",), partial(check_depthwise_backward, output="dw")),
    Task("depthwise_as_dense", 1, ("depthwise_as_dense",), check_depthwise_as_dense),
    Task("grouped_conv_forward", 2, ("grouped_conv_forward",), check_grouped_conv_forward),
]
