"""The graded checks of exercises 01-03, the convolutions (tinyinvo/grading/tasks/conv_forward.py, conv_backward.py, depthwise.py).

Each check is run with core.run_tasks on namespaces built from small functions, as a notebook's
globals() would hold them: correct ones adapted from tinyinvo.ops must score full marks; each usual
mistake must fail its own task only (the other tasks still pass), with a message that names it.
"""

import numpy as np
import pytest

from tinyinvo import numerical_gradient, ops
from tinyinvo.grading.core import FAILED, NOT_IMPLEMENTED, PASSED, run_tasks
from tinyinvo.grading.tasks import conv_backward, conv_forward, depthwise
from tinyinvo.ops.checks import output_size
from tinyinvo.ops.naive import conv2d_forward_naive, depthwise_conv2d_forward_naive
from tinyinvo.ops.windows import col2im as windows_col2im
from tinyinvo.ops.windows import pad, sliding_windows


# ---- correct answers, adapted from tinyinvo.ops to the exercises' signatures ----

def im2col_with_order(x, K, stride=1, padding=0, order=(0, 1, 2, 3, 4, 5)):
    """im2col whose window axes (N, C, K, K, Ho, Wo) are first put in ``order`` (the identity is right)."""
    windows = sliding_windows(x, K, stride, padding).transpose(order)
    return windows.reshape(x.shape[0], -1, windows.shape[4] * windows.shape[5])


def col2im(cols, x_shape, K, stride=1, padding=0):
    N, C, H, W = x_shape
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    return windows_col2im(cols.reshape(N, C, K, K, Ho, Wo), x_shape, stride, padding)


def depthwise_as_dense(w):
    C, K, _ = w.shape
    dense = np.zeros((C, C, K, K))
    dense[np.arange(C), np.arange(C)] = w
    return dense


def grouped_conv_forward(x, w, groups, stride=1, padding=0):
    """A grouped conv as a dense conv whose weight is zero outside the diagonal blocks (not how the
    grader's reference computes it)."""
    Co, Ci_per_group, K, _ = w.shape
    Co_per_group = Co // groups
    dense = np.zeros((Co, x.shape[1], K, K), dtype=x.dtype)
    for o in range(Co):
        g = o // Co_per_group
        dense[o, g * Ci_per_group:(g + 1) * Ci_per_group] = w[o]
    return ops.conv2d_forward(x, dense, stride=stride, padding=padding, backend="numpy")


CORRECT = {
    conv_forward: {
        "pad_input": pad,
        "conv_forward_naive": lambda x, w, stride=1, padding=0: conv2d_forward_naive(x, w, stride=stride,
                                                                                     padding=padding),
        "im2col": im2col_with_order,
        "conv_forward_im2col": lambda x, w, stride=1, padding=0: ops.conv2d_forward(
            x, w, stride=stride, padding=padding, backend="numpy"),
    },
    conv_backward: {
        "numerical_gradient": numerical_gradient,
        "col2im": col2im,
        "conv_backward": lambda dy, x, w, stride=1, padding=0: ops.conv2d_backward(
            dy, x, w, stride=stride, padding=padding, backend="numpy"),
    },
    depthwise: {
        "depthwise_forward": lambda x, w, stride=1, padding=0: depthwise_conv2d_forward_naive(
            x, w, stride=stride, padding=padding),
        "depthwise_backward": lambda dy, x, w, stride=1, padding=0: ops.depthwise_conv2d_backward(
            dy, x, w, stride=stride, padding=padding, backend="numpy"),
        "depthwise_as_dense": depthwise_as_dense,
        "grouped_conv_forward": grouped_conv_forward,
    },
}
MODULES = pytest.mark.parametrize("module", CORRECT, ids=lambda module: module.EXERCISE)


# ---- the usual mistakes ----

def conv_forward_naive(fixed_stride=None, fixed_padding=None, crop=0, flip=False):
    """conv_forward_naive with a mistake: a fixed stride or padding whatever it is given, ``crop`` rows
    and columns cut off the end of the output, or the kernel flipped (a true convolution)."""
    def wrong(x, w, stride=1, padding=0):
        y = conv2d_forward_naive(x, w[..., ::-1, ::-1].copy() if flip else w,
                                 stride=stride if fixed_stride is None else fixed_stride,
                                 padding=padding if fixed_padding is None else fixed_padding)
        return y[..., :y.shape[2] - crop, :y.shape[3] - crop]
    return wrong


def windows_from_stride_one(x, w, stride=1, padding=0):
    """The window under output pixel (i, j) starts at (i, j) instead of (i*stride, j*stride)."""
    y = ops.conv2d_forward(x, w, padding=padding, backend="numpy")
    Ho = output_size(x.shape[2], w.shape[2], stride, padding)
    Wo = output_size(x.shape[3], w.shape[2], stride, padding)
    return y[..., :Ho, :Wo]


def zeroes_x_afterwards(x, w, stride=1, padding=0):
    y = ops.conv2d_forward(x, w, stride=stride, padding=padding, backend="numpy")
    x[...] = 0
    return y


def conv_im2col_reshape_bug(x, w, stride=1, padding=0):
    """Reshapes the (N, Co, Ho*Wo) product to (N, Co, Wo, Ho): right on square inputs only."""
    y = ops.conv2d_forward(x, w, stride=stride, padding=padding, backend="numpy")
    N, Co, Ho, Wo = y.shape
    return y.reshape(N, Co, Wo, Ho)


def not_restoring(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        x[index] += h
        plus = f()
        x[index] -= 2 * h
        grad[index] = (plus - f()) / (2 * h)
    return grad


def one_sided(f, x, h=1e-5):
    grad, base = np.zeros_like(x), f()
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        grad[index] = (f() - base) / h
        x[index] = old
    return grad


def nudging_a_copy(f, x, h=1e-5):
    return numerical_gradient(f, x.copy(), h)


def col2im_assigning(cols, x_shape, K, stride=1, padding=0):
    """col2im with = instead of +=: overlapping windows overwrite each other."""
    N, C, H, W = x_shape
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    cols = cols.reshape(N, C, K, K, Ho, Wo)
    dxpad = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    for p in range(K):
        for q in range(K):
            dxpad[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] = cols[:, :, p, q]
    return dxpad[:, :, padding:padding + H, padding:padding + W]


def col2im_not_cropping(cols, x_shape, K, stride=1, padding=0):
    return np.pad(col2im(cols, x_shape, K, stride, padding), ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def backward(op, dx=None, dw=None):
    """op.backward (conv or depthwise) with dx or dw replaced by dx(dy, x, w, stride, padding), dw(...)."""
    def wrong(dy, x, w, stride=1, padding=0):
        right_dx, right_dw = op.backward(dy, x, w, stride=stride, padding=padding)
        return ((right_dx if dx is None else dx(dy, x, w, stride, padding)),
                (right_dw if dw is None else dw(dy, x, w, stride, padding)))
    return wrong


def dx_not_summing_overlaps(dy, x, w, stride, padding):
    """dx from the window gradients with col2im_assigning: each pixel keeps one window's gradient.
    Conv and depthwise (w (C, K, K), as the dense weight with w[c] on the diagonal)."""
    dense = w if w.ndim == 4 else depthwise_as_dense(w)
    dcols = dense.reshape(dense.shape[0], -1).T @ dy.reshape(dy.shape[0], dy.shape[1], -1)
    return col2im_assigning(dcols, x.shape, w.shape[-1], stride, padding)


def dw_of_first_image(op):
    return lambda dy, x, w, stride, padding: op.backward(dy[:1], x[:1], w, stride=stride, padding=padding)[1]


def clobbering_dy(dy, x, w, stride=1, padding=0):
    result = CORRECT[conv_backward]["conv_backward"](dy, x, w, stride, padding)
    dy[...] = 0
    return result


def grouped_strided_channels(x, w, groups, stride=1, padding=0):
    """Group g takes the input channels g, g + groups, ... instead of a contiguous block."""
    reordered = np.concatenate([x[:, g::groups] for g in range(groups)], axis=1)
    return grouped_conv_forward(reordered, w, groups, stride, padding)


CONV_OP, DEPTHWISE_OP = conv_forward.CONV, depthwise.DEPTHWISE

# (module, name to replace, wrong function, {task: words its message must contain}); every other task passes
MISTAKES = {
    "pad_input pads N and C too": (
        conv_forward, "pad_input", lambda x, padding: np.pad(x, padding), {"pad_input": ["xpad has shape"]}),
    "pad_input pads one side twice": (
        conv_forward, "pad_input", lambda x, padding: np.pad(x, ((0, 0), (0, 0), (0, 2 * padding), (0, 2 * padding))),
        {"pad_input": ["xpad is wrong at index", "padding=1"]}),
    "conv_forward_naive ignores the stride": (
        conv_forward, "conv_forward_naive", conv_forward_naive(fixed_stride=1),
        {"conv_forward_naive": ["stride=2", "y has shape", "the stride was left out"]}),
    "conv_forward_naive ignores the padding": (
        conv_forward, "conv_forward_naive", conv_forward_naive(fixed_padding=0),
        {"conv_forward_naive": ["padding=1", "the padding was left out"]}),
    "conv_forward_naive has no + 1 in Ho": (
        conv_forward, "conv_forward_naive", conv_forward_naive(crop=1), {"conv_forward_naive": ["+ 1 is missing"]}),
    "conv_forward_naive starts window (i, j) at (i, j)": (
        conv_forward, "conv_forward_naive", windows_from_stride_one,
        {"conv_forward_naive": ["stride=2", "y is wrong at index"]}),
    "conv_forward_naive flips the kernel": (
        conv_forward, "conv_forward_naive", conv_forward_naive(flip=True), {"conv_forward_naive": ["y is wrong"]}),
    "conv_forward_naive changes x": (
        conv_forward, "conv_forward_naive", zeroes_x_afterwards, {"conv_forward_naive": ["changed its input x"]}),
    "im2col rows ordered (p, q, c)": (
        conv_forward, "im2col", lambda x, K, stride=1, padding=0: im2col_with_order(x, K, stride, padding,
                                                                                    (0, 2, 3, 1, 4, 5)),
        {"im2col": ["rows are in the wrong order", "(c, p, q) = (0, 0, 1)", "(c*K + p)*K + q"]}),
    "im2col rows ordered (c, q, p)": (
        conv_forward, "im2col", lambda x, K, stride=1, padding=0: im2col_with_order(x, K, stride, padding,
                                                                                    (0, 1, 3, 2, 4, 5)),
        {"im2col": ["rows are in the wrong order", "should hold the window entries (c, p, q) = (0, 0, 1)"]}),
    "im2col columns ordered j-major": (
        conv_forward, "im2col", lambda x, K, stride=1, padding=0: im2col_with_order(x, K, stride, padding,
                                                                                    (0, 1, 2, 3, 5, 4)),
        {"im2col": ["columns are in the wrong order", "i*Wo + j"]}),
    "im2col ignores the padding": (
        conv_forward, "im2col", lambda x, K, stride=1, padding=0: im2col_with_order(x, K, stride, 0),
        {"im2col": ["cols has shape", "the padding was left out"]}),
    "conv_forward_im2col reshapes (Wo, Ho)": (
        conv_forward, "conv_forward_im2col", conv_im2col_reshape_bug,
        {"conv_forward_im2col": ["x: (2, 2, 5, 7) float64", "y has shape (2, 3, 5, 3), expected (2, 3, 3, 5)"]}),
    "numerical_gradient does not restore x": (
        conv_backward, "numerical_gradient", not_restoring, {"numerical_gradient": ["x was not restored: x[0] was"]}),
    "numerical_gradient is one-sided": (
        conv_backward, "numerical_gradient", one_sided,
        {"numerical_gradient": ["the gradient is wrong at index", "f() = sum(a * x**2)", "central difference"]}),
    "numerical_gradient nudges a copy": (
        conv_backward, "numerical_gradient", nudging_a_copy,
        {"numerical_gradient": ["Every entry is 0", "not a copy"]}),
    "col2im overwrites overlaps": (
        conv_backward, "col2im", col2im_assigning,
        {"col2im": ["the result is wrong at index", "x[0, 0, 0, 1] lies in 2 windows",
                    "the sum over those windows"]}),
    "col2im keeps the padding": (
        conv_backward, "col2im", col2im_not_cropping, {"col2im": ["padding=1", "the result has shape"]}),
    "conv_backward dx without the overlap sum": (
        conv_backward, "conv_backward", backward(CONV_OP, dx=dx_not_summing_overlaps),
        {"conv_backward: dx": ["dx is wrong at index", "x[0, 0, 0, 1] lies in 2 windows"]}),
    "conv_backward dw of the first image only": (
        conv_backward, "conv_backward", backward(CONV_OP, dw=dw_of_first_image(CONV_OP)),
        {"conv_backward: dw": ["dy: (2, 3, 3, 5) float64", "dw is wrong at index"]}),
    "conv_backward returns dx only": (
        conv_backward, "conv_backward", lambda dy, x, w, stride=1, padding=0: CONV_OP.backward(dy, x, w)[0],
        {"conv_backward: dx": ["should return the pair (dx, dw), got ndarray"],
         "conv_backward: dw": ["should return the pair (dx, dw), got ndarray"]}),
    "conv_backward changes dy": (
        conv_backward, "conv_backward", clobbering_dy,
        {"conv_backward: dx": ["changed its input dy in place"], "conv_backward: dw": ["changed its input dy"]}),
    "depthwise_forward ignores the stride": (
        depthwise, "depthwise_forward", lambda x, w, stride=1, padding=0: DEPTHWISE_OP.forward(x, w, padding=padding),
        {"depthwise_forward": ["stride=2", "the stride was left out"]}),
    "depthwise_forward ignores the padding": (
        depthwise, "depthwise_forward", lambda x, w, stride=1, padding=0: DEPTHWISE_OP.forward(x, w, stride=stride),
        {"depthwise_forward": ["padding=1", "the padding was left out"]}),
    "depthwise_backward dx without the overlap sum": (
        depthwise, "depthwise_backward", backward(DEPTHWISE_OP, dx=dx_not_summing_overlaps),
        {"depthwise_backward: dx": ["dx is wrong at index", "the sum over those windows"]}),
    "depthwise_backward dw with p and q swapped": (
        depthwise, "depthwise_backward",
        backward(DEPTHWISE_OP, dw=lambda *args: DEPTHWISE_OP.backward(*args[:3], stride=args[3],
                                                                      padding=args[4])[1].transpose(0, 2, 1)),
        {"depthwise_backward: dw": ["dw is wrong at index"]}),
    "depthwise_as_dense fills every block": (
        depthwise, "depthwise_as_dense", lambda w: np.broadcast_to(w, (w.shape[0],) + w.shape).copy(),
        {"depthwise_as_dense": ["w: (3, 3, 3) float64", "zeros when o != c"]}),
    "pad_input returns float64 for float32": (
        conv_forward, "pad_input", lambda x, padding: pad(x, padding).astype(np.float64),
        {"pad_input": ["x: (2, 3, 4, 5) float32", "xpad has dtype float64, expected float32", "dtype=x.dtype"]}),
    "conv_forward_im2col returns float64 for float32": (
        conv_forward, "conv_forward_im2col",
        lambda x, w, stride=1, padding=0: CONV_OP.forward(x.astype(np.float64), w.astype(np.float64),
                                                          stride=stride, padding=padding),
        {"conv_forward_im2col": ["y has dtype float64, expected float32"]}),
    "depthwise_forward returns float64 for float32": (
        depthwise, "depthwise_forward",
        lambda x, w, stride=1, padding=0: DEPTHWISE_OP.forward(x, w, stride=stride, padding=padding).astype(float),
        {"depthwise_forward": ["y has dtype float64, expected float32"]}),
    "grouped_conv_forward takes strided channels": (
        depthwise, "grouped_conv_forward", grouped_strided_channels,
        {"grouped_conv_forward": ["groups=2", "y is wrong at index", "g*(Ci // groups)"]}),
}


@MODULES
def test_right_answers_score_full_marks(module):
    results = run_tasks(module.TASKS, CORRECT[module], watch=False)
    assert [(result.status, result.message) for result in results] == [(PASSED, "")] * len(module.TASKS)
    assert sum(result.points for result in results) == 10


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_fails_its_own_task_with_a_helpful_message(mistake):
    module, name, wrong, messages = MISTAKES[mistake]
    results = {result.name: result for result in run_tasks(module.TASKS, {**CORRECT[module], name: wrong}, watch=False)}
    assert {task: results[task].status for task in results} == {
        task: FAILED if task in messages else PASSED for task in results}
    for task, words in messages.items():
        for word in words:
            assert word in results[task].message, results[task].message


@MODULES
def test_stubs_and_missing_names_are_not_implemented(module):
    def stub(*args, **kwargs):
        raise NotImplementedError("write this function")

    for namespace in ({name: stub for name in CORRECT[module]}, {}):
        results = run_tasks(module.TASKS, namespace, watch=False)
        assert {result.status for result in results} == {NOT_IMPLEMENTED}
        assert sum(result.points for result in results) == 0


def test_tasks_are_the_specified_ones():
    assert [(module.EXERCISE, [(task.name, task.points) for task in module.TASKS]) for module in CORRECT] == [
        ("01_conv_forward", [("pad_input", 1), ("conv_forward_naive", 3), ("im2col", 3),
                             ("conv_forward_im2col", 3)]),
        ("02_conv_backward", [("numerical_gradient", 2), ("col2im", 3), ("conv_backward: dw", 3),
                              ("conv_backward: dx", 2)]),
        ("03_depthwise", [("depthwise_forward", 3), ("depthwise_backward: dx", 2), ("depthwise_backward: dw", 2),
                          ("depthwise_as_dense", 1), ("grouped_conv_forward", 2)]),
    ]


NOTEBOOK_01 = '''
import numpy as np

def pad_input(x, padding):  # wrong: pads one side twice
    return np.pad(x, ((0, 0), (0, 0), (0, 2 * padding), (0, 2 * padding)))

def conv_forward_naive(x, w, stride=1, padding=0):
    xpad = pad_input(x, padding)
    Co, Ci, K, _ = w.shape
    Ho, Wo = (x.shape[2] + 2 * padding - K) // stride + 1, (x.shape[3] + 2 * padding - K) // stride + 1
    y = np.zeros((x.shape[0], Co, Ho, Wo), dtype=x.dtype)
    for n, o, i, j in np.ndindex(y.shape):
        y[n, o, i, j] = np.sum(w[o] * xpad[n, :, i * stride:i * stride + K, j * stride:j * stride + K])
    return y
'''

NOTEBOOK_02 = '''
import numpy as np

def col2im(cols, x_shape, K, stride=1, padding=0):  # wrong: overlaps overwrite each other
    return col2im_assigning(cols, x_shape, K, stride, padding)

def conv_backward(dy, x, w, stride=1, padding=0):
    N, Co, Ho, Wo = dy.shape
    cols = im2col(x, w.shape[2], stride, padding)
    dy_rows = dy.reshape(N, Co, Ho * Wo)
    dw = np.einsum("nol,nkl->ok", dy_rows, cols).reshape(w.shape)
    dx = col2im(w.reshape(Co, -1).T @ dy_rows, x.shape, w.shape[2], stride, padding)
    return dx, dw
'''


@pytest.mark.parametrize("module, source, given, wrong_task, dependent", [
    (conv_forward, NOTEBOOK_01, {}, "pad_input", "conv_forward_naive"),
    (conv_backward, NOTEBOOK_02, {"im2col": im2col_with_order, "col2im_assigning": col2im_assigning},
     "col2im", "conv_backward"),
], ids=["pad_input", "col2im"])
def test_a_wrong_helper_costs_only_its_own_points(module, source, given, wrong_task, dependent):
    """A function that calls the student's own (wrong) helper is graded with the reference helper."""
    namespace = dict(given)
    exec(source, namespace)
    results = {result.name: result.status for result in run_tasks(module.TASKS, namespace, watch=False)
               if result.status != NOT_IMPLEMENTED}
    assert results == {wrong_task: FAILED, **{task.name: PASSED for task in module.TASKS
                                              if task.needs == (dependent,)}}
    # without the reference helper, the dependent function is indeed wrong
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    if dependent == "conv_forward_naive":
        assert not np.allclose(namespace[dependent](x, w, padding=1),
                               ops.conv2d_forward(x, w, padding=1, backend="numpy"))
    else:
        dy = np.ones((1, 2, 3, 3))
        assert not np.allclose(namespace[dependent](dy, x, w)[0], ops.conv2d_backward(dy, x, w, backend="numpy")[0])
