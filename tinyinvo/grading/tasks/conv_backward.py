"""Exercise 02_conv_backward: numerical gradients, col2im, and the gradients of the convolution.

conv_backward returns two outputs; dx and dw are separate tasks, so a wrong dx costs only dx's points.
The student's conv_backward runs with the reference col2im in place of theirs (a wrong col2im costs
only col2im's points).
"""

from functools import partial

import numpy as np

from tinyinvo.grading.compare import GradingFailure, expect_array, hidden_rng
from tinyinvo.grading.core import Task
from tinyinvo.grading.wire import KernelCall
from tinyinvo.grading.tasks.conv_forward import CASES, CONV, extend_failure, isolated, run_student
from tinyinvo.ops.checks import output_size
from tinyinvo.ops import windows

EXERCISE = "02_conv_backward"

# Smooth functions f(x, a) of an array x (a is a fixed random array of x's shape) with their exact
# gradients. Central differences match these to about 1e-10 in float64; one-sided ones do not.
KNOWN_FUNCTIONS = (
    ("sum(a * x**2)", (5,), lambda x, a: np.sum(a * x**2), lambda x, a: 2 * a * x),
    ("sum(a * x**3)", (2, 3), lambda x, a: np.sum(a * x**3), lambda x, a: 3 * a * x**2),
    ("sum(a * sin(x))", (2, 3, 4), lambda x, a: np.sum(a * np.sin(x)), lambda x, a: a * np.cos(x)),
    ("sum(a * exp(x)) + sum(x)**2", (1, 2, 3, 4), lambda x, a: np.sum(a * np.exp(x)) + np.sum(x)**2,
     lambda x, a: a * np.exp(x) + 2 * np.sum(x)),
)


def known_function(index, x, a):
    """f() = KNOWN_FUNCTIONS[index] at the current x: what the student's numerical_gradient calls.

    The check passes it as a KernelCall, so that it is built, and called, next to the student's code.
    """
    function = KNOWN_FUNCTIONS[index][2]
    return lambda: float(function(x, a))


def gradient_hint(got, expected):
    """Name the usual numerical_gradient mistake behind a wrong gradient of the right shape, or return ''."""
    if not (isinstance(got, np.ndarray) and got.shape == expected.shape):
        return ""
    if not got.any():
        return "Every entry is 0: f() never saw the nudge. Change x itself in place (x[index] = old + h), not a copy"
    if np.allclose(got, expected, rtol=1e-3, atol=1e-4):
        return ("Close, but only to about h: use the central difference (f(x + h) - f(x - h)) / (2h), "
                "whose error shrinks like h**2")
    return ""


def check_numerical_gradient(numerical_gradient):
    rng = hidden_rng("numerical_gradient")
    for index, (formula, shape, _, gradient) in enumerate(KNOWN_FUNCTIONS):
        x, a = rng.standard_normal(shape), rng.standard_normal(shape)
        before, expected = x.copy(), gradient(x, a)
        call = f"numerical_gradient(f, x: {shape} float64) with f() = {formula}"
        got = numerical_gradient(KernelCall(__name__, "known_function", index, x, a), x)
        moved = ~np.isclose(x, before, rtol=1e-12, atol=0)
        if moved.any():
            index = ", ".join(str(i) for i in np.argwhere(moved)[0])
            raise GradingFailure(f"{call}: x was not restored: x[{index}] was {before[moved][0]:.6g} before the "
                                 f"call and is {x[moved][0]:.6g} after it. Save each entry before nudging it "
                                 f"and put the saved value back")
        extend_failure(lambda: expect_array(got, expected, call=call, what="the gradient", rtol=1e-6, atol=1e-7),
                       lambda: gradient_hint(got, expected))


def reference_col2im(cols, x_shape, K, stride=1, padding=0):
    """col2im as the student writes it: cols (N, Ci*K*K, Ho*Wo) -> (N, Ci, H, W), overlaps summed."""
    N, Ci, H, W = x_shape
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    return windows.col2im(cols.reshape(N, Ci, K, K, Ho, Wo), x_shape, stride, padding)


def overlap_hint(got, expected, case):
    """How many windows cover the first wrong pixel of a gradient with respect to x (the usual bug
    is not adding up the overlaps), or '' when the shapes differ."""
    if not (isinstance(got, np.ndarray) and got.shape == expected.shape):
        return ""
    index = tuple(int(i) for i in np.argwhere(~np.isclose(got, expected, rtol=1e-5, atol=1e-6))[0])
    ones = np.ones((case.N, case.Ci * case.K * case.K, case.Ho * case.Wo))
    count = int(reference_col2im(ones, expected.shape, case.K, case.stride, case.padding)[index])
    windows_text = "1 window" if count == 1 else f"{count} windows"
    return (f"x[{', '.join(map(str, index))}] lies in {windows_text}: its gradient is the sum over those "
            f"windows (0 if the stride skips it); cut the padding border off at the end")


def expect_summed(got, expected, *, call, what, case):
    """expect_array for a gradient with respect to x, with overlap_hint when it fails."""
    extend_failure(lambda: expect_array(got, expected, call=call, what=what),
                   lambda: overlap_hint(got, expected, case))


def check_col2im(col2im):
    rng = hidden_rng("col2im")
    for case in CASES:
        x_shape = (case.N, case.Ci, case.H, case.W)
        cols = rng.standard_normal((case.N, case.Ci * case.K * case.K, case.Ho * case.Wo))
        call, dx = run_student("col2im", col2im, {"cols": cols, "x_shape": x_shape, "K": case.K},
                               stride=case.stride, padding=case.padding)
        expect_summed(dx, reference_col2im(cols, x_shape, case.K, case.stride, case.padding),
                      call=call, what="the result", case=case)


def check_backward(name, function, op, output, cases):
    """Compare output "dx" or "dw" of ``function(dy, x, w, stride=, padding=)`` with ``op.backward``."""
    rng = hidden_rng(f"{name}: {output}")
    for case in cases:
        x, w = rng.standard_normal((case.N, case.Ci, case.H, case.W)), rng.standard_normal(op.weight_shape(case))
        dy = rng.standard_normal(op.forward(x, w, stride=case.stride, padding=case.padding).shape)
        call, result = run_student(name, function, {"dy": dy, "x": x, "w": w}, stride=case.stride,
                                   padding=case.padding)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise GradingFailure(f"{call} should return the pair (dx, dw), got {type(result).__name__}")
        got = dict(zip(("dx", "dw"), result))[output]
        expected = dict(zip(("dx", "dw"), op.backward(dy, x, w, stride=case.stride, padding=case.padding)))[output]
        if output == "dx":
            expect_summed(got, expected, call=call, what="dx", case=case)
        else:
            expect_array(got, expected, call=call, what="dw")


def check_conv_backward(conv_backward, output):
    check_backward("conv_backward", isolated(conv_backward, {"col2im": reference_col2im}), CONV, output, CASES)


TASKS = [
    Task("numerical_gradient", 2, ("numerical_gradient",), check_numerical_gradient),
    Task("col2im", 3, ("col2im",), check_col2im),
    Task("conv_backward: dw", 3, ("conv_backward",), partial(check_conv_backward, output="dw")),
    Task("conv_backward: dx", 2, ("conv_backward",), partial(check_conv_backward, output="dx")),
]
