"""Every bad-input rule of tinyinvo/ops/checks.py: the right exception type, and a message that names the
argument and what was expected.

The checks run in the public ops before any backend is called, so one backend ("numpy") is enough here.
ReLU and BatchNorm have their checks too, and their layers reach a backend only through them.
"""

import re

import numpy as np
import pytest

from tinyinvo.nn import BatchNorm2d, ReLU
from tinyinvo.ops import (add, batchnorm_backward, batchnorm_forward, conv2d_backward, conv2d_forward,
                          depthwise_conv2d_backward, depthwise_conv2d_forward, involution_backward,
                          involution_forward, relu_backward, relu_forward)
from tinyinvo.ops.naive import conv2d_forward_naive, depthwise_conv2d_forward_naive, involution_forward_naive


def zeros(*shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


# Valid inputs to start from: x (N=2, C=4, H=W=6); 3x3 filters, stride 1, padding 1 -> Ho = Wo = 6.
X = zeros(2, 4, 6, 6)
W_CONV = zeros(5, 4, 3, 3)
W_DEPTHWISE = zeros(4, 3, 3)
KERNEL = zeros(2, 2, 3, 3, 6, 6)  # G = 2 groups


def conv(x=X, w=W_CONV, **kwargs):
    return conv2d_forward(x, w, **{"padding": 1, "backend": "numpy", **kwargs})


def depthwise(x=X, w=W_DEPTHWISE, **kwargs):
    return depthwise_conv2d_forward(x, w, **{"padding": 1, "backend": "numpy", **kwargs})


def involution(x=X, kernel=KERNEL, **kwargs):
    return involution_forward(x, kernel, **{"backend": "numpy", **kwargs})


def raises(error, *message_parts):
    """pytest.raises(error) that also requires each of message_parts, verbatim, in the message."""
    return pytest.raises(error, match="(?s)" + "".join(f"(?=.*{re.escape(part)})" for part in message_parts))


def test_valid_inputs_pass():  # the starting point of every test below is accepted
    assert conv().shape == (2, 5, 6, 6)
    assert depthwise().shape == (2, 4, 6, 6)
    assert involution().shape == (2, 4, 6, 6)


@pytest.mark.parametrize("call, message", [
    (lambda: conv(x=zeros(4, 6, 6)), "x must have 4 dimensions (N, Ci, H, W), got shape (4, 6, 6)"),
    (lambda: conv(w=zeros(4, 3, 3)), "w must have 4 dimensions (Co, Ci, K, K), got shape (4, 3, 3)"),
    (lambda: depthwise(x=zeros(1, 2, 4, 6, 6)), "x must have 4 dimensions (N, C, H, W)"),
    (lambda: depthwise(w=zeros(4, 1, 3, 3)), "w must have 3 dimensions (C, K, K), got shape (4, 1, 3, 3)"),
    (lambda: involution(x=zeros(4, 6, 6)), "x must have 4 dimensions (N, C, H, W)"),
    (lambda: involution(kernel=zeros(2, 2, 3, 3, 36)), "kernel must have 6 dimensions (N, G, K, K, Ho, Wo)"),
], ids=["conv-x", "conv-w", "depthwise-x", "depthwise-w", "involution-x", "involution-kernel"])
def test_wrong_number_of_dimensions(call, message):
    with raises(ValueError, message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: conv(w=zeros(5, 4, 3, 2)), "w must be square (Co, Ci, K, K), got shape (5, 4, 3, 2)"),
    (lambda: depthwise(w=zeros(4, 2, 3)), "w must be square (C, K, K), got shape (4, 2, 3)"),
    (lambda: involution(kernel=zeros(2, 2, 3, 5, 6, 6), padding=1), "kernel must be square"),
], ids=["conv", "depthwise", "involution"])
def test_non_square_filter(call, message):
    with raises(ValueError, message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: conv(w=zeros(5, 3, 3, 3)), ("x has Ci=4 channels", "w expects Ci=3")),
    (lambda: depthwise(w=zeros(3, 3, 3)), ("x has C=4 channels", "w expects C=3")),
], ids=["conv", "depthwise"])
def test_channel_mismatch(call, message):
    with raises(ValueError, "channel mismatch", *message):
        call()


def test_channels_not_divisible_by_groups():
    with raises(ValueError, "C=4 channels", "G=3 equal groups", "divisible by G"):
        involution(kernel=zeros(2, 3, 3, 3, 6, 6))


def test_even_kernel_size_needs_explicit_padding():
    with raises(ValueError, "K=2 is even", "padding=None"):
        involution(kernel=zeros(2, 2, 2, 2, 5, 5))
    assert involution(kernel=zeros(2, 2, 2, 2, 5, 5), padding=0).shape == (2, 4, 5, 5)  # explicit padding is fine


def test_kernel_spatial_size_must_match_output_size():
    with raises(ValueError, "kernel spatial size 5x5", "Ho x Wo = 6x6"):
        involution(kernel=zeros(2, 2, 3, 3, 5, 5))
    with raises(ValueError, "kernel spatial size 6x6", "Ho x Wo = 3x3", "stride=2"):
        involution(stride=2)  # stride 2 halves the output, so the kernel must shrink too


@pytest.mark.parametrize("call", [
    lambda: conv(x=zeros(2, 4, 2, 6), padding=0),
    lambda: depthwise(x=zeros(2, 4, 6, 2), padding=0),
    lambda: involution(x=zeros(2, 4, 2, 2), kernel=zeros(2, 2, 3, 3, 0, 0), padding=0),
], ids=["conv", "depthwise", "involution"])
def test_output_smaller_than_one_pixel(call):
    with raises(ValueError, "output size would be", "K=3", "must be >= 1"):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: conv(x=X.astype(np.int64)), "x must be float32 or float64, got dtype int64"),
    (lambda: conv(w=W_CONV.astype(np.int32)), "w must be float32 or float64, got dtype int32"),
    (lambda: depthwise(x=X.astype(np.float16)), "x must be float32 or float64, got dtype float16"),
    (lambda: involution(kernel=KERNEL.astype(np.int64)), "kernel must be float32 or float64"),
], ids=["conv-int-x", "conv-int-w", "depthwise-float16-x", "involution-int-kernel"])
def test_non_float_dtype(call, message):
    with raises(TypeError, message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: conv(w=W_CONV.astype(np.float64)), "w has dtype float64 but x has dtype float32"),
    (lambda: depthwise(x=X.astype(np.float64)), "w has dtype float32 but x has dtype float64"),
    (lambda: involution(kernel=KERNEL.astype(np.float64)), "kernel has dtype float64 but x has dtype float32"),
], ids=["conv", "depthwise", "involution"])
def test_mixed_dtypes(call, message):
    with raises(TypeError, message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: conv(x=X.tolist()), "x must be a numpy.ndarray of shape (N, Ci, H, W), got list"),
    (lambda: depthwise(w=3.0), "w must be a numpy.ndarray of shape (C, K, K), got float"),
    (lambda: involution(kernel=None), "kernel must be a numpy.ndarray"),
], ids=["conv-list", "depthwise-float", "involution-None"])
def test_non_array_input(call, message):
    with raises(TypeError, message):
        call()


@pytest.mark.parametrize("op", [conv, depthwise, involution])
@pytest.mark.parametrize("stride", [0, -1, 1.5, True, "2"])
def test_bad_stride(op, stride):
    with raises(ValueError, "stride must be a positive int", f"got {stride!r}"):
        op(stride=stride)


@pytest.mark.parametrize("op", [conv, depthwise, involution])
@pytest.mark.parametrize("padding", [-1, 1.0, False, "same"])
def test_bad_padding(op, padding):
    with raises(ValueError, "padding must be a non-negative int", f"got {padding!r}"):
        op(padding=padding)


def test_batch_mismatch():
    with raises(ValueError, "batch mismatch", "x has N=2", "kernel has N=3"):
        involution(kernel=zeros(3, 2, 3, 3, 6, 6))


BACKWARDS = {
    "conv": lambda dy, x=X: conv2d_backward(dy, x, W_CONV, padding=1, backend="numpy"),
    "depthwise": lambda dy, x=X: depthwise_conv2d_backward(dy, x, W_DEPTHWISE, padding=1, backend="numpy"),
    "involution": lambda dy, x=X: involution_backward(dy, x, KERNEL, backend="numpy"),
}
OUTPUT_SHAPES = {"conv": (2, 5, 6, 6), "depthwise": (2, 4, 6, 6), "involution": (2, 4, 6, 6)}


@pytest.mark.parametrize("op_name", BACKWARDS)
def test_dy_of_the_wrong_shape(op_name):
    N, C, Ho, Wo = OUTPUT_SHAPES[op_name]
    backward = BACKWARDS[op_name]
    assert backward(zeros(N, C, Ho, Wo))[0].shape == X.shape  # the right shape is accepted
    with raises(ValueError, f"dy must have the forward output's shape {(N, C, Ho, Wo)}, got {(N, C, Ho - 1, Wo)}"):
        backward(zeros(N, C, Ho - 1, Wo))
    with raises(ValueError, "dy must have 4 dimensions (N, C, Ho, Wo)"):
        backward(zeros(C, Ho, Wo))
    with raises(TypeError, "dy has dtype float64 but x has dtype float32"):
        backward(zeros(N, C, Ho, Wo, dtype=np.float64))


@pytest.mark.parametrize("op_name", BACKWARDS)
def test_backward_checks_its_forward_inputs_too(op_name):
    with raises(TypeError, "x must be a numpy.ndarray"):
        BACKWARDS[op_name](zeros(*OUTPUT_SHAPES[op_name]), x=X.tolist())


@pytest.mark.parametrize("call, message", [
    (lambda: conv2d_forward_naive(X, zeros(5, 3, 3, 3)), "channel mismatch"),
    (lambda: depthwise_conv2d_forward_naive(X, W_DEPTHWISE, stride=0), "stride must be a positive int"),
    (lambda: involution_forward_naive(X, zeros(2, 2, 2, 2, 5, 5)), "K=2 is even"),
], ids=["conv", "depthwise", "involution"])
def test_naive_ops_use_the_same_checks(call, message):
    with raises(ValueError, message):
        call()


@pytest.mark.parametrize("call", [
    lambda: conv(w=zeros(5, 4, 0, 0)),
    lambda: depthwise(w=zeros(4, 0, 0)),
    lambda: involution(kernel=zeros(2, 2, 0, 0, 7, 7), padding=0),
], ids=["conv", "depthwise", "involution"])
def test_empty_filter(call):
    with raises(ValueError, "K=0"):
        call()


C4 = zeros(4)  # a valid gamma, beta, mean or var for X's 4 channels


@pytest.mark.parametrize("call, error, message", [
    (lambda: relu_forward([1.0, -1.0]), TypeError, "x must be a numpy.ndarray of shape (any shape), got list"),
    (lambda: relu_forward(np.arange(3)), TypeError, "x must be float32 or float64, got dtype int64"),
    (lambda: relu_backward(zeros(2, 3), zeros(3, 2)), ValueError,
     "dy must have the forward output's shape (3, 2), got (2, 3)"),
    (lambda: relu_backward(zeros(2, 3, dtype=np.float64), zeros(2, 3)), TypeError,
     "dy has dtype float64 but y has dtype float32"),
    (lambda: add(zeros(2, 3), zeros(3, 2)), ValueError, "b must have a's shape (2, 3), got (3, 2)"),
    (lambda: add(zeros(2, 3), zeros(2, 3, dtype=np.float64)), TypeError,
     "b has dtype float64 but a has dtype float32"),
    (lambda: batchnorm_forward(zeros(2, 4), C4, C4, 1e-5), ValueError,
     "x must have 4 dimensions (N, C, H, W), got shape (2, 4)"),
    (lambda: batchnorm_forward(X, zeros(3), C4, 1e-5), ValueError,
     "gamma must have shape (C,) = (4,), one entry per channel of x (x.shape=(2, 4, 6, 6)), got (3,)"),
    (lambda: batchnorm_forward(X, C4, C4.astype(np.float64), 1e-5), TypeError,
     "beta has dtype float64 but x has dtype float32"),
    (lambda: batchnorm_forward(X, C4, C4, 0.0), ValueError, "eps must be a positive number, got 0.0"),
    (lambda: batchnorm_backward(zeros(2, 4, 6, 5), X, C4, C4, C4, 1e-5), ValueError,
     "dy must have the forward output's shape (2, 4, 6, 6), got (2, 4, 6, 5)"),
    (lambda: batchnorm_backward(X, X, C4, zeros(2), C4, 1e-5), ValueError, "var must have shape (C,) = (4,)"),
    (lambda: batchnorm_forward(X, C4, C4, 1e-5, relu="yes"), TypeError, "relu must be True or False, got 'yes'"),
    (lambda: batchnorm_backward(X, X, C4, C4, C4, 1e-5, y=C4), ValueError,
     "y must have x's shape (2, 4, 6, 6), got (4,)"),
    (lambda: batchnorm_backward(X, X, C4, C4, C4, 1e-5, y=X.astype(np.float64)), TypeError,
     "y has dtype float64 but x has dtype float32"),
], ids=["relu-list", "relu-int", "relu-dy-shape", "relu-dy-dtype", "add-shape", "add-dtype", "bn-x-2d", "bn-gamma-length",
        "bn-beta-dtype", "bn-eps", "bn-dy-shape", "bn-var-length", "bn-relu-flag", "bn-relu-y-shape", "bn-relu-y-dtype"])
def test_relu_and_batchnorm_checks(call, error, message):
    with raises(error, message):
        call()


def test_relu_and_batchnorm_layers_go_through_the_checked_ops():
    with raises(TypeError, "x must be float32 or float64, got dtype int64"):
        ReLU().forward(np.arange(-3, 3).reshape(2, 3))
    layer = BatchNorm2d(4)
    layer.forward(X)
    with raises(TypeError, "dy has dtype float64 but x has dtype float32"):
        layer.backward(zeros(2, 4, 6, 6, dtype=np.float64))


def test_group_norm_names_the_bad_argument():
    from tinyinvo.ops import group_norm_backward, group_norm_forward
    gamma = beta = C4
    with pytest.raises(ValueError, match="groups must be a positive int dividing x's 4 channels"):
        group_norm_forward(X, gamma, beta, groups=3)
    with pytest.raises(ValueError, match=r"beta must have shape \(C,\) = \(4,\)"):
        group_norm_forward(X, gamma, zeros(3), groups=2)
    with pytest.raises(TypeError, match="gamma has dtype float64 but x has dtype float32"):
        group_norm_forward(X, gamma.astype(np.float64), beta, groups=2)
    y, mean, var = group_norm_forward(X, gamma, beta, groups=2)
    with pytest.raises(ValueError, match=r"mean must be the forward's \(2, 2\) array, got \(2, 1\)"):
        group_norm_backward(y, X, mean[:, :1], var, gamma, groups=2)

