"""Exercise 01_conv_forward: zero padding, the convolution as loops, im2col, the convolution as a matrix product.

Every check runs the student's function on the hidden cases of ``CASES`` (float64, small enough for
plain Python loops, then the last two in float32: the answer keeps the input's dtype), checks that it
left its input arrays alone, and compares the answer with the reference in ``tinyinvo.ops``. The cases and the helpers above the checks are shared with the
exercises conv_backward and depthwise.
"""

from functools import partial
from typing import Callable, NamedTuple

import numpy as np

from tinyinvo import ops
from tinyinvo.grading.compare import GradingFailure, describe_call, expect_array, expect_unchanged, hidden_rng
from tinyinvo.grading.core import Task
from tinyinvo.grading.student import StudentFunction
from tinyinvo.ops.checks import output_size
from tinyinvo.ops import windows

EXERCISE = "01_conv_forward"


class Case(NamedTuple):
    """One hidden geometry: N images, Ci -> Co channels, an H x W input, a K x K kernel, stride, padding."""

    N: int
    Ci: int
    Co: int
    H: int
    W: int
    K: int
    stride: int
    padding: int

    @property
    def Ho(self):
        return output_size(self.H, self.K, self.stride, self.padding)

    @property
    def Wo(self):
        return output_size(self.W, self.K, self.stride, self.padding)


# Simplest first: a wrong answer is reported on the simplest case that shows the bug.
CASES = (
    Case(1, 1, 1, 4, 4, 3, 1, 0),  # one channel, square, no padding
    Case(2, 2, 3, 5, 7, 3, 1, 0),  # non-square input, Co != Ci
    Case(2, 3, 2, 5, 6, 3, 1, 1),  # padding 1
    Case(1, 2, 3, 7, 6, 3, 2, 0),  # stride 2: the last column of x lies in no window
    Case(2, 2, 4, 8, 5, 3, 2, 1),  # stride 2 and padding 1: (8 + 2 - 3) // 2 + 1 = 4 rounds down
    Case(1, 3, 2, 4, 6, 2, 1, 2),  # even K, padding 2: the corner windows lie entirely in the zero border
    Case(2, 3, 2, 4, 5, 1, 1, 0),  # a 1x1 convolution
    Case(2, 4, 3, 6, 9, 5, 2, 2),  # K = 5
)


def with_float32(cases):
    """[(case, dtype)]: every case in float64, then the last two again in float32."""
    return [(case, np.float64) for case in cases] + [(case, np.float32) for case in cases[-2:]]


class Op(NamedTuple):
    """A reference op with the layout of its weight, so that one check serves conv and depthwise."""

    forward: Callable       # forward(x, w, stride=, padding=) -> y
    backward: Callable      # backward(dy, x, w, stride=, padding=) -> (dx, dw)
    weight_shape: Callable  # case -> the shape of w


CONV = Op(partial(ops.conv2d_forward, backend="numpy"), partial(ops.conv2d_backward, backend="numpy"),
          lambda case: (case.Co, case.Ci, case.K, case.K))


def run_student(name, function, arguments, **keywords):
    """Call ``function(*arguments.values(), **keywords)`` and fail if it changed an input array in place.

    arguments: the positional arguments by name (the names appear in messages).
    Returns (call, result): call describes the case for messages, as describe_call writes it.
    """
    call = describe_call(name, **arguments, **keywords)
    before = {key: value.copy() for key, value in arguments.items() if isinstance(value, np.ndarray)}
    result = function(*arguments.values(), **keywords)
    for key, value in before.items():
        expect_unchanged(value, arguments[key], call=call, name=key)
    return call, result


def isolated(function, references):
    """The student's ``function``, calling the reference versions of ``references`` instead of theirs.

    references: name -> module-level reference function, for the exercise's other graded functions
    (e.g. the student's pad_input, called inside their conv_forward_naive). A bug in pad_input then
    costs pad_input's points only. A value that is not a function is returned as it is.
    """
    return function.isolated(references) if isinstance(function, StudentFunction) else function


def extend_failure(check, hint):
    """Run ``check()``; if it fails, fail again with ``hint()`` (a string, may be empty) added to the message."""
    try:
        check()
    except GradingFailure as failure:
        extra = hint()
        if not extra:
            raise
        raise GradingFailure(f"{failure}. {extra}", hint=extra) from None


def size_mistake(case, got, shape_for):
    """Name the usual output-size mistake behind the shape of ``got``, or return ''.

    shape_for(Ho, Wo): the shape the answer has for an output of Ho x Wo pixels.
    """
    if not isinstance(got, np.ndarray) or got.shape == shape_for(case.Ho, case.Wo):
        return ""
    mistakes = {  # mistake: (can it show in this case, the output size it gives)
        "the padding was left out": (case.padding > 0, lambda size: output_size(size, case.K, case.stride, 0)),
        "the stride was left out": (case.stride > 1, lambda size: output_size(size, case.K, 1, case.padding)),
        "the + 1 is missing": (True, lambda size: output_size(size, case.K, case.stride, case.padding) - 1),
    }
    for mistake, (applies, size) in mistakes.items():
        if applies and got.shape == shape_for(size(case.H), size(case.W)):
            return f"That is the output size when {mistake}: Ho = (H + 2*padding - K) // stride + 1"
    return ""


def expect_output(got, expected, *, call, what, case):
    """expect_array for a (N, C, Ho, Wo) output, naming the usual mistake when its size is off."""
    extend_failure(lambda: expect_array(got, expected, call=call, what=what),
                   lambda: size_mistake(case, got, lambda Ho, Wo: expected.shape[:2] + (Ho, Wo)))


def check_forward(name, function, op, cases):
    """Compare ``function(x, w, stride=, padding=)`` with ``op.forward`` on ``cases``."""
    rng = hidden_rng(name)
    for case, dtype in with_float32(cases):
        x = rng.standard_normal((case.N, case.Ci, case.H, case.W)).astype(dtype)
        w = rng.standard_normal(op.weight_shape(case)).astype(dtype)
        call, y = run_student(name, function, {"x": x, "w": w}, stride=case.stride, padding=case.padding)
        expect_output(y, op.forward(x, w, stride=case.stride, padding=case.padding), call=call, what="y", case=case)


def reference_pad_input(x, padding):
    """pad_input as the student writes it: always a new array (np.pad copies even for padding 0)."""
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def reference_im2col(x, K, stride=1, padding=0):
    """im2col as the student writes it: (N, Ci*K*K, Ho*Wo), rows ordered (c, p, q), a new array."""
    return np.array(windows.im2col(x, K, stride, padding))


def check_pad_input(pad_input):
    rng = hidden_rng("pad_input")
    for case, dtype in with_float32(CASES):
        x = rng.standard_normal((case.N, case.Ci, case.H, case.W)).astype(dtype)
        call, xpad = run_student("pad_input", pad_input, {"x": x, "padding": case.padding})
        expect_array(xpad, reference_pad_input(x, case.padding), call=call, what="xpad")


def check_conv_forward_naive(conv_forward_naive):
    check_forward("conv_forward_naive", isolated(conv_forward_naive, {"pad_input": reference_pad_input}),
                  CONV, CASES)


def misplaced(got, expected, axis):
    """If ``got`` (2-D) holds the slices of ``expected`` along ``axis`` in another order, return
    (position, source): the first position holding the wrong slice and where that slice belongs.
    Returns None when the slices differ in content or some slice is not unique."""
    got, expected = np.moveaxis(got, axis, 0), np.moveaxis(expected, axis, 0)
    same = np.all(np.isclose(got[:, None], expected[None, :]), axis=2)  # same[a, b]: got slice a == expected b
    if not (np.all(same.sum(axis=1) == 1) and np.all(same.sum(axis=0) == 1)):
        return None
    source = same.argmax(axis=1)
    wrong = np.flatnonzero(source != np.arange(len(source)))
    return (int(wrong[0]), int(source[wrong[0]])) if wrong.size else None


def order_mistake(cols, expected, case):
    """Explain a cols whose rows (or columns) are all there but in the wrong order, or return ''."""
    if not (isinstance(cols, np.ndarray) and cols.shape == expected.shape):
        return ""
    row = misplaced(cols[0], expected[0], axis=0)
    if row:
        where = [tuple(int(i) for i in np.unravel_index(r, (case.Ci, case.K, case.K))) for r in row]
        return (f"Your rows are in the wrong order: row {row[0]} should hold the window entries "
                f"(c, p, q) = {where[0]} but holds those of (c, p, q) = {where[1]}. "
                f"Rows go c, then p, then q: row = (c*K + p)*K + q")
    column = misplaced(cols[0], expected[0], axis=1)
    if column:
        where = [divmod(l, case.Wo) for l in column]
        return (f"Your columns are in the wrong order: column {column[0]} should be the window under "
                f"output pixel (i, j) = {where[0]} but is the one under (i, j) = {where[1]}. "
                f"Columns go row by row: column = i*Wo + j")
    return ""


def check_im2col(im2col):
    im2col = isolated(im2col, {"pad_input": reference_pad_input})
    rng = hidden_rng("im2col")
    for case, dtype in with_float32(CASES):
        x = rng.standard_normal((case.N, case.Ci, case.H, case.W)).astype(dtype)
        call, cols = run_student("im2col", im2col, {"x": x, "K": case.K}, stride=case.stride, padding=case.padding)
        expected = reference_im2col(x, case.K, case.stride, case.padding)
        extend_failure(
            lambda: expect_array(cols, expected, call=call, what="cols"),
            lambda: order_mistake(cols, expected, case)
            or size_mistake(case, cols, lambda Ho, Wo: expected.shape[:2] + (Ho * Wo,)))


def check_conv_forward_im2col(conv_forward_im2col):
    references = {"pad_input": reference_pad_input, "im2col": reference_im2col}
    check_forward("conv_forward_im2col", isolated(conv_forward_im2col, references), CONV, CASES)


TASKS = [
    Task("pad_input", 1, ("pad_input",), check_pad_input),
    Task("conv_forward_naive", 3, ("conv_forward_naive",), check_conv_forward_naive),
    Task("im2col", 3, ("im2col",), check_im2col),
    Task("conv_forward_im2col", 3, ("conv_forward_im2col",), check_conv_forward_im2col),
]
