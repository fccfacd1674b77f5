"""Input checks shared by every op and both backends.

Each check raises ValueError (wrong shape or value) or TypeError (wrong type or dtype) with a message
that names the argument and says what was expected, so that bad input never turns into a silently
wrong answer deep inside a kernel. The public functions in ``tinyinvo.ops`` call these before
dispatching, so the backends themselves can assume clean input.

Letters used everywhere: N batch, C (Ci, Co) channels, H W input size, K kernel size,
G involution groups, Ho Wo output size.
"""

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def output_size(size, K, stride, padding):
    """Output length of a sliding window: ``(size + 2*padding - K) // stride + 1``."""
    return (size + 2 * padding - K) // stride + 1


def check_float_array(name, a, ndim, layout):
    """``a`` must be a float32/float64 ndarray with ``ndim`` dimensions named by ``layout``
    (``ndim=None``: any number of dimensions)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of shape {layout}, got {type(a).__name__}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got shape {a.shape}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")


def check_same_dtype(name, a, x, x_name="x"):
    if a.dtype != x.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but {x_name} has dtype {x.dtype}; "
                        f"cast one of them (e.g. {name}.astype({x_name}.dtype))")


def check_stride_padding(stride, padding):
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")


def check_output_size(x, K, stride, padding):
    """Return (Ho, Wo), raising if the window does not fit."""
    if K < 1:
        raise ValueError(f"kernel size K={K} must be >= 1 (the K x K axes of w or kernel are empty)")
    H, W = x.shape[2:]
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"output size would be {Ho}x{Wo}: input {H}x{W} is too small for "
                         f"kernel size K={K} with padding={padding}, stride={stride} "
                         f"(Ho = (H + 2*padding - K) // stride + 1 must be >= 1)")
    return Ho, Wo


def check_grad_output(dy, x, expected_shape):
    check_float_array("dy", dy, 4, "(N, C, Ho, Wo)")
    check_same_dtype("dy", dy, x)
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"dy must have the forward output's shape {tuple(expected_shape)}, "
                         f"got {dy.shape}")


def check_filter(x, w, stride, padding, layout):
    """Checks shared by conv2d and depthwise: a 4-D x and a square filter w of ``layout`` whose
    channel axis (Ci for conv, C for depthwise) matches x's. Returns (Ho, Wo)."""
    x_layout = "(N, Ci, H, W)" if layout.startswith("(Co") else "(N, C, H, W)"
    check_float_array("x", x, 4, x_layout)
    check_float_array("w", w, len(layout.split(",")), layout)
    check_same_dtype("w", w, x)
    check_stride_padding(stride, padding)
    channels, K, K2 = w.shape[-3:]
    if K != K2:
        raise ValueError(f"w must be square {layout}, got shape {w.shape}")
    if channels != x.shape[1]:
        name = x_layout[4:6].strip(",")
        raise ValueError(f"channel mismatch: x has {name}={x.shape[1]} channels (x.shape={x.shape}) "
                         f"but w expects {name}={channels} (w.shape={w.shape}, layout {layout})")
    return check_output_size(x, K, stride, padding)


def check_conv2d(x, w, stride, padding):
    """Checks for conv2d; returns the output shape (N, Co, Ho, Wo)."""
    Ho, Wo = check_filter(x, w, stride, padding, "(Co, Ci, K, K)")
    return (x.shape[0], w.shape[0], Ho, Wo)


def check_depthwise_conv2d(x, w, stride, padding):
    """Checks for depthwise conv2d; returns the output shape (N, C, Ho, Wo)."""
    Ho, Wo = check_filter(x, w, stride, padding, "(C, K, K)")
    return (x.shape[0], w.shape[0], Ho, Wo)


def involution_padding(K, padding):
    """padding=None means 'same' padding (K - 1) // 2, which needs an odd K."""
    if padding is not None:
        return padding
    if K % 2 == 0:
        raise ValueError(f"kernel size K={K} is even, so padding=None ('same' padding (K - 1) // 2) "
                         f"is ambiguous; use an odd K or pass padding explicitly")
    return (K - 1) // 2


def check_involution(x, kernel, stride, padding):
    """Checks for involution; returns (output shape (N, C, Ho, Wo), resolved padding)."""
    check_float_array("x", x, 4, "(N, C, H, W)")
    check_float_array("kernel", kernel, 6, "(N, G, K, K, Ho, Wo)")
    check_same_dtype("kernel", kernel, x)
    N, C = x.shape[:2]
    Nk, G, K, K2, Hk, Wk = kernel.shape
    if K != K2:
        raise ValueError(f"kernel must be square (N, G, K, K, Ho, Wo), got shape {kernel.shape}")
    padding = involution_padding(K, padding)
    check_stride_padding(stride, padding)
    if Nk != N:
        raise ValueError(f"batch mismatch: x has N={N} (x.shape={x.shape}) but kernel has N={Nk} "
                         f"(kernel.shape={kernel.shape}, layout (N, G, K, K, Ho, Wo))")
    if G < 1 or C % G != 0:
        raise ValueError(f"C={C} channels (x.shape={x.shape}) cannot be split into G={G} equal groups "
                         f"(kernel.shape={kernel.shape}): C must be divisible by G")
    Ho, Wo = check_output_size(x, K, stride, padding)
    if (Hk, Wk) != (Ho, Wo):
        raise ValueError(f"kernel spatial size {Hk}x{Wk} (kernel.shape={kernel.shape}) does not match "
                         f"the output size Ho x Wo = {Ho}x{Wo} for x {x.shape[2]}x{x.shape[3]}, K={K}, "
                         f"stride={stride}, padding={padding}")
    return (N, C, Ho, Wo), padding


def check_relu(x):
    """Checks for relu_forward: x a float array of any shape."""
    check_float_array("x", x, None, "(any shape)")


def check_relu_backward(dy, y):
    """Checks for relu_backward: y the forward's output, dy of y's shape and dtype."""
    check_float_array("y", y, None, "(the output of relu_forward)")
    check_like("dy", dy, "y", y, "the forward output's shape")


def check_add(a, b):
    """Checks for add: a and b float arrays of the same shape and dtype."""
    check_float_array("a", a, None, "(any shape)")
    check_like("b", b, "a", a, "a's shape")


def check_like(name, a, other_name, other, shape_words):
    """``a`` must be a float array with the shape and dtype of ``other`` (already checked)."""
    check_float_array(name, a, None, f"(the shape of {other_name})")
    check_same_dtype(name, a, other, x_name=other_name)
    if a.shape != other.shape:
        raise ValueError(f"{name} must have {shape_words} {other.shape}, got {a.shape}")


def check_channel_vector(name, a, x):
    """``a`` must be a (C,) array of x's dtype, one entry per channel of x (N, C, H, W)."""
    check_float_array(name, a, 1, "(C,)")
    check_same_dtype(name, a, x)
    if a.shape[0] != x.shape[1]:
        raise ValueError(f"{name} must have shape (C,) = ({x.shape[1]},), one entry per channel of x "
                         f"(x.shape={x.shape}), got {a.shape}")


def check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")


def check_batchnorm(x, gamma, beta, eps, relu):
    """Checks for batchnorm_forward: x (N, C, H, W); gamma, beta (C,) of x's dtype; eps > 0; relu a bool."""
    check_float_array("x", x, 4, "(N, C, H, W)")
    for name, a in (("gamma", gamma), ("beta", beta)):
        check_channel_vector(name, a, x)
    check_eps(eps)
    check_relu_flag(relu)


def check_relu_flag(relu):
    """``relu`` (BatchNorm's fused ReLU, on or off) must be True or False, not merely truthy."""
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be True or False, got {relu!r}")


def check_batchnorm_backward(dy, x, mean, var, gamma, eps, y):
    """Checks for batchnorm_backward: dy and x (N, C, H, W); mean, var, gamma (C,); eps > 0;
    y None or the forward's output (x's shape and dtype)."""
    check_float_array("x", x, 4, "(N, C, H, W)")
    check_grad_output(dy, x, x.shape)
    for name, a in (("mean", mean), ("var", var), ("gamma", gamma)):
        check_channel_vector(name, a, x)
    check_eps(eps)
    if y is not None:
        check_like("y", y, "x", x, "x's shape")


def check_group_norm(x, gamma, beta, groups, eps):
    """Checks for group_norm_forward: x (N, C, H, W); gamma, beta (C,) of x's dtype; groups a
    positive divisor of C; eps > 0."""
    check_float_array("x", x, 4, "(N, C, H, W)")
    for name, a in (("gamma", gamma), ("beta", beta)):
        check_channel_vector(name, a, x)
    _check_groups(groups, x.shape[1])
    check_eps(eps)


def check_group_norm_backward(dy, x, mean, var, gamma, groups, eps):
    """Checks for group_norm_backward: dy and x (N, C, H, W); mean, var (N, G), the forward's;
    gamma (C,); groups a positive divisor of C; eps > 0."""
    check_float_array("x", x, 4, "(N, C, H, W)")
    check_grad_output(dy, x, x.shape)
    check_channel_vector("gamma", gamma, x)
    _check_groups(groups, x.shape[1])
    for name, a in (("mean", mean), ("var", var)):
        check_float_array(name, a, 2, "(N, G)")
        if a.shape != (x.shape[0], groups):
            raise ValueError(f"{name} must be the forward's ({x.shape[0]}, {groups}) array, got "
                             f"{a.shape}")
    check_eps(eps)


def _check_groups(groups, C):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 \
            or C % groups:
        raise ValueError(f"groups must be a positive int dividing x's {C} channels, got {groups!r}")
