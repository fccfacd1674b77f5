"""Checks for exercise 04_involution: the involution op, its backward pass, and the kernel generator.

Every case is small (a student's loops finish in well under a second), float64 and then two in
float32, and is compared with the NumPy reference. The cases cover stride 1 and 2, "same" padding
(None) and explicit padding 0..2, G = 1, 2 and 3 groups, K = 3 and 5, and non-square images. The
usual mistakes get a hint: the group of channel c as c // G or c % G instead of c // (C // G), dx
assigned instead of summed over overlapping windows, padding=None taken as 0.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyinvo.grading.compare import (GradingFailure, StudentCrash, describe_call, expect_array, expect_unchanged,
                                      hidden_rng)
from tinyinvo.grading.core import Task
from tinyinvo.ops import conv2d_forward, involution_backward, involution_forward
from tinyinvo.ops.checks import involution_padding, output_size
from tinyinvo.ops import windows

EXERCISE = "04_involution"

TOLERANCE = {np.dtype(np.float64): dict(rtol=1e-6, atol=1e-8),  # float64: any real mistake is far larger
             np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5)}  # float32: sums in another order

# (N, C, H, W, G, K, stride, padding)
INVOLUTION_CASES = [
    (1, 2, 5, 5, 1, 3, 1, None),
    (2, 4, 6, 7, 2, 3, 1, None),
    (2, 4, 7, 6, 2, 5, 2, None),
    (1, 4, 8, 9, 1, 5, 1, 0),
    (2, 2, 9, 8, 2, 3, 2, 1),
    (1, 4, 5, 6, 2, 3, 2, 2),
    (1, 6, 6, 5, 3, 3, 1, 1),  # G = 3 groups of 2 channels: c // G and c % G both go wrong here
]
# every case in float64, then two in float32: the output keeps the input's dtype
DTYPED_CASES = [(case, np.float64) for case in INVOLUTION_CASES] + \
               [(case, np.float32) for case in (INVOLUTION_CASES[2], INVOLUTION_CASES[4])]

# (N, C, H, W, r, G, K): the generator's hidden width is C // r
GENERATOR_CASES = [
    (1, 4, 5, 5, 2, 1, 3),
    (2, 4, 6, 7, 4, 2, 3),
    (2, 8, 5, 6, 2, 2, 5),
    (1, 2, 4, 3, 1, 2, 5),
]

GROUP_HINT = ("Channel c belongs to group g = c // (C // G): the groups are blocks of C // G consecutive "
              "channels")
GROUP_MISTAKES = {  # a wrong group of channel c (C channels, G groups): the hint for it
    "c // G": (lambda c, C, G: c // G, "you computed the group as c // G; " + GROUP_HINT),
    "c % G": (lambda c, C, G: c % G, "you computed the group as c % G, which interleaves the groups; "
              + GROUP_HINT),
}
SAME_PADDING_HINT = ("padding=None means \"same\" padding (K - 1) // 2 (your function is right when it gets "
                     "that padding explicitly); it seems to take None as 0")


def involution_inputs(rng, case, dtype=np.float64):
    """Random x (N, C, H, W) and kernel (N, G, K, K, Ho, Wo) for one case, and its keyword args."""
    N, C, H, W, G, K, stride, padding = case
    resolved = involution_padding(K, padding)
    Ho, Wo = output_size(H, K, stride, resolved), output_size(W, K, stride, resolved)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    kernel = rng.standard_normal((N, G, K, K, Ho, Wo)).astype(dtype)
    return x, kernel, dict(stride=stride, padding=padding)


def involution_with_groups(x, kernel, stride, padding, group_of):
    """The involution with channel c read through kernel group ``group_of[c]`` (right: c // (C // G))."""
    K = kernel.shape[2]
    padding = involution_padding(K, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(xpad, (K, K), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, K, K)
    return np.einsum("nchwpq,ncpqhw->nchw", windows, kernel[:, group_of])


def group_mistake(got, x, kernel, options):
    """Name the wrong channel-to-group rule that gives ``got``, or return ''."""
    C, G = x.shape[1], kernel.shape[1]
    for rule, hint in GROUP_MISTAKES.values():
        group_of = np.array([rule(c, C, G) for c in range(C)])
        if np.all(group_of < G) and isinstance(got, np.ndarray) and got.shape == (x.shape[0], C, *kernel.shape[4:]) \
                and np.allclose(got, involution_with_groups(x, kernel, **options, group_of=group_of), rtol=1e-4):
            return hint
    return ""


def crash_hint(crash, x, kernel):
    """A hint for a crash of the student's involution, or ''."""
    G = kernel.shape[1]
    if crash.error.startswith("IndexError") and f"with size {G}" in crash.error:
        return f"an index on the kernel's group axis (size G = {G}) is out of range: " + GROUP_MISTAKES["c // G"][1]
    return ""


def call_involution(function, args, options, x, kernel):
    """``function(*args, **options)``; a crash gets a hint when it looks like a known mistake, and a
    crash or wrong shape with padding=None is retried with the explicit "same" padding."""
    try:
        return function(*args, **options)
    except StudentCrash as crash:
        hint = crash_hint(crash, x, kernel) or same_padding_mistake(function, args, options)
        if hint:
            raise StudentCrash(f"{crash}. {hint}", crash.error, hint) from None
        raise


def same_padding_mistake(function, args, options, check=None):
    """SAME_PADDING_HINT if the call, which had padding=None, passes ``check`` (or does not crash) when
    given the "same" padding explicitly; '' otherwise."""
    if options.get("padding", 0) is not None:
        return ""
    K = args[-1].shape[2]  # the kernel is the last positional argument
    try:
        got = function(*args, **{**options, "padding": (K - 1) // 2})
        if check is not None:
            check(got)
    except (StudentCrash, GradingFailure, NotImplementedError):
        return ""
    return SAME_PADDING_HINT


def expect_involution(got, expected, *, call, what, hints):
    """expect_array with the dtype's tolerance; on failure, the first non-empty of ``hints()`` is added."""
    try:
        expect_array(got, expected, call=call, what=what, **TOLERANCE[expected.dtype])
    except GradingFailure as failure:
        hint = next((text for text in (hint() for hint in hints) if text), "")
        if not hint:
            raise
        raise GradingFailure(f"{failure}. {hint}", hint=hint) from None


def check_involution_forward(student_forward):
    rng = hidden_rng("involution_forward")
    for case, dtype in DTYPED_CASES:
        x, kernel, options = involution_inputs(rng, case, dtype)
        call = describe_call("involution_forward", x=x, kernel=kernel, **options)
        x_before, kernel_before = x.copy(), kernel.copy()
        got = call_involution(student_forward, (x, kernel), options, x, kernel)
        expect_unchanged(x_before, x, call=call, name="x")
        expect_unchanged(kernel_before, kernel, call=call, name="kernel")
        expected = involution_forward(x, kernel, **options, backend="numpy")
        expect_involution(got, expected, call=call, what="out", hints=[
            lambda: group_mistake(got, x, kernel, options),
            lambda: same_padding_mistake(student_forward, (x, kernel), options,
                                         lambda fixed: expect_array(fixed, expected, call=call))])
    # called without padding, the default must be "same" padding (K - 1) // 2
    x, kernel, _ = involution_inputs(rng, (1, 2, 5, 6, 1, 3, 1, None))
    call = describe_call("involution_forward", x=x, kernel=kernel) + " (default stride and padding)"
    expected = involution_forward(x, kernel, backend="numpy")
    expect_involution(student_forward(x, kernel), expected, call=call, what="out", hints=[])


def check_pair(result, call, names):
    """Fail unless ``result`` is a pair such as (dx, dkernel); return it."""
    if not isinstance(result, (tuple, list)):
        raise GradingFailure(f"{call} should return a pair {names}, got {type(result).__name__}")
    if len(result) != 2:
        raise GradingFailure(f"{call} should return a pair {names}, got {len(result)} values")
    return result


def overlap_mistake(got, expected, kernel, options):
    """How many windows cover the first wrong pixel of dx, when it is more than one (the usual bug is
    assigning each window's gradient instead of adding it: ``=`` for ``+=``), or ''."""
    if not (isinstance(got, np.ndarray) and got.shape == expected.shape):
        return ""
    wrong = np.argwhere(~np.isclose(got, expected, **TOLERANCE[expected.dtype]))
    if not len(wrong):
        return ""
    N, G, K, _, Ho, Wo = kernel.shape
    C = expected.shape[1]
    ones = np.ones((N, C, K, K, Ho, Wo))
    count = windows.col2im(ones, expected.shape, options["stride"], involution_padding(K, options["padding"]))
    index = tuple(int(i) for i in wrong[0])
    if count[index] < 2:
        return ""
    return (f"x[{', '.join(map(str, index))}] lies in {int(count[index])} windows: its gradient is the sum over "
            f"those windows, so add each window's share (+=), do not assign it (=)")


def check_involution_gradient(student_backward, which):
    """Compare output ``which`` ("dx" or "dkernel") of the student's backward with the reference."""
    index = ("dx", "dkernel").index(which)
    rng = hidden_rng(f"involution_backward: {which}")
    for case, dtype in DTYPED_CASES:
        x, kernel, options = involution_inputs(rng, case, dtype)
        out = involution_forward(x, kernel, **options, backend="numpy")
        dy = rng.standard_normal(out.shape).astype(dtype)
        call = describe_call("involution_backward", dy=dy, x=x, kernel=kernel, **options)
        got = check_pair(call_involution(student_backward, (dy, x, kernel), options, x, kernel), call,
                         "(dx, dkernel)")
        expected = involution_backward(dy, x, kernel, **options, backend="numpy")
        expect_involution(got[index], expected[index], call=call, what=which, hints=[
            lambda: overlap_mistake(got[index], expected[index], kernel, options) if which == "dx" else "",
            lambda: same_padding_mistake(student_backward, (dy, x, kernel), options,
                                         lambda fixed: expect_array(fixed[index], expected[index], call=call))])


def reference_kernel(x, w_reduce, w_span, b_span, G, K):
    """The paper's kernel generator at stride 1 without BatchNorm, as Involution2d computes it.

    hidden = relu(1x1 conv of x with w_reduce (C // r, C)); span = 1x1 conv of hidden with
    w_span (G*K*K, C // r) + b_span; channel g*K*K + p*K + q of span is kernel[:, g, p, q]
    (``h.reshape(N, G, K, K, Ho, Wo)`` in tinyinvo/nn/involution.py). Returns (N, G, K, K, H, W).
    """
    N, _, H, W = x.shape
    hidden = np.maximum(conv2d_forward(x, w_reduce[:, :, None, None], backend="numpy"), 0)
    span = conv2d_forward(hidden, w_span[:, :, None, None], backend="numpy")
    return (span + b_span[None, :, None, None]).reshape(N, G, K, K, H, W)


def generator_inputs(rng, case):
    """Random x, w_reduce, w_span, b_span for one case, as a dict of the call's arguments."""
    N, C, H, W, r, G, K = case
    return dict(x=rng.standard_normal((N, C, H, W)), w_reduce=rng.standard_normal((C // r, C)),
                w_span=rng.standard_normal((G * K * K, C // r)), b_span=rng.standard_normal(G * K * K),
                G=G, K=K)


def check_generate_kernel(student_generate):
    rng = hidden_rng("generate_kernel")
    for case in GENERATOR_CASES:
        arguments = generator_inputs(rng, case)
        call = describe_call("generate_kernel", **arguments)
        got = student_generate(**arguments)
        expect_array(got, reference_kernel(**arguments), call=call, what="kernel (N, G, K, K, H, W)",
                     **TOLERANCE[np.dtype(np.float64)])


TASKS = [
    Task("involution_forward", 3, ("involution_forward",), check_involution_forward),
    Task("involution_backward: dx", 2, ("involution_backward",),
         lambda backward: check_involution_gradient(backward, "dx")),
    Task("involution_backward: dkernel", 2, ("involution_backward",),
         lambda backward: check_involution_gradient(backward, "dkernel")),
    Task("generate_kernel", 3, ("generate_kernel",), check_generate_kernel),
]
