"""Checks for exercise 04_involution: the involution op, its backward pass, and the kernel generator.

Every case is small and float64 (a student's loops finish in well under a second) and is compared
with the NumPy reference. The cases cover stride 1 and 2, "same" padding (None) and explicit
padding 0..2, G = 1 and 2 groups, K = 3 and 5, and non-square images.
"""

import numpy as np

from tinyinvo.grading.compare import (GradingFailure, describe_call, expect_array, expect_unchanged,
                                      hidden_rng)
from tinyinvo.grading.core import Task
from tinyinvo.ops import conv2d_forward, involution_backward, involution_forward
from tinyinvo.ops.checks import involution_padding, output_size

EXERCISE = "04_involution"

TOLERANCE = dict(rtol=1e-6, atol=1e-8)  # float64: any real mistake is far larger

# (N, C, H, W, G, K, stride, padding)
INVOLUTION_CASES = [
    (1, 2, 5, 5, 1, 3, 1, None),
    (2, 4, 6, 7, 2, 3, 1, None),
    (2, 4, 7, 6, 2, 5, 2, None),
    (1, 4, 8, 9, 1, 5, 1, 0),
    (2, 2, 9, 8, 2, 3, 2, 1),
    (1, 4, 5, 6, 2, 3, 2, 2),
]

# (N, C, H, W, r, G, K): the generator's hidden width is C // r
GENERATOR_CASES = [
    (1, 4, 5, 5, 2, 1, 3),
    (2, 4, 6, 7, 4, 2, 3),
    (2, 8, 5, 6, 2, 2, 5),
    (1, 2, 4, 3, 1, 2, 5),
]


def involution_inputs(rng, case):
    """Random x (N, C, H, W) and kernel (N, G, K, K, Ho, Wo) for one case, and its keyword args."""
    N, C, H, W, G, K, stride, padding = case
    resolved = involution_padding(K, padding)
    Ho, Wo = output_size(H, K, stride, resolved), output_size(W, K, stride, resolved)
    x = rng.standard_normal((N, C, H, W))
    kernel = rng.standard_normal((N, G, K, K, Ho, Wo))
    return x, kernel, dict(stride=stride, padding=padding)


def check_involution_forward(student_forward):
    rng = hidden_rng("involution_forward")
    for case in INVOLUTION_CASES:
        x, kernel, options = involution_inputs(rng, case)
        call = describe_call("involution_forward", x=x, kernel=kernel, **options)
        x_before, kernel_before = x.copy(), kernel.copy()
        got = student_forward(x, kernel, **options)
        expect_unchanged(x_before, x, call=call, name="x")
        expect_unchanged(kernel_before, kernel, call=call, name="kernel")
        expected = involution_forward(x, kernel, **options, backend="numpy")
        expect_array(got, expected, call=call, what="out", **TOLERANCE)
    # called without padding, the default must be "same" padding (K - 1) // 2
    x, kernel, _ = involution_inputs(rng, (1, 2, 5, 6, 1, 3, 1, None))
    call = describe_call("involution_forward", x=x, kernel=kernel) + " (default stride and padding)"
    expected = involution_forward(x, kernel, backend="numpy")
    expect_array(student_forward(x, kernel), expected, call=call, what="out", **TOLERANCE)


def check_pair(result, call, names):
    """Fail unless ``result`` is a pair such as (dx, dkernel); return it."""
    if not isinstance(result, (tuple, list)):
        raise GradingFailure(f"{call} should return a pair {names}, got {type(result).__name__}")
    if len(result) != 2:
        raise GradingFailure(f"{call} should return a pair {names}, got {len(result)} values")
    return result


def check_involution_gradient(student_backward, which):
    """Compare output ``which`` ("dx" or "dkernel") of the student's backward with the reference."""
    index = ("dx", "dkernel").index(which)
    rng = hidden_rng(f"involution_backward: {which}")
    for case in INVOLUTION_CASES:
        x, kernel, options = involution_inputs(rng, case)
        out = involution_forward(x, kernel, **options, backend="numpy")
        dy = rng.standard_normal(out.shape)
        call = describe_call("involution_backward", dy=dy, x=x, kernel=kernel, **options)
        got = check_pair(student_backward(dy, x, kernel, **options), call, "(dx, dkernel)")
        expected = involution_backward(dy, x, kernel, **options, backend="numpy")
        expect_array(got[index], expected[index], call=call, what=which, **TOLERANCE)


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
                     **TOLERANCE)


TASKS = [
    Task("involution_forward", 3, ("involution_forward",), check_involution_forward),
    Task("involution_backward: dx", 2, ("involution_backward",),
         lambda backward: check_involution_gradient(backward, "dx")),
    Task("involution_backward: dkernel", 2, ("involution_backward",),
         lambda backward: check_involution_gradient(backward, "dkernel")),
    Task("generate_kernel", 3, ("generate_kernel",), check_generate_kernel),
]
