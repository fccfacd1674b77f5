"""The one table of ops that the backend tests read: what to call, and random inputs to call it with.

Every op goes through the public front door ``tinyinvo.ops`` with an explicit ``backend=``, so the
same test runs on either backend (the ``backend`` fixture in conftest.py) or compares the two.

Geometries are (N, H, W, K, stride, padding); C, the channels of x, is an argument of
``make_inputs`` (a handful for gradient checks, more to give the Numba kernels real work).
The default seed is not gradcheck's (0), whose random dy would otherwise be x itself, or a
multiple of it: BatchNorm's gradient at dy = a*x + b is zero, and any backward would pass.
"""

from typing import Callable, NamedTuple

import numpy as np

from tinyinvo import ops
from tinyinvo.ops.checks import output_size
from tinyinvo.ops.naive import conv2d_forward_naive, depthwise_conv2d_forward_naive, involution_forward_naive


class Op(NamedTuple):
    forward: Callable
    backward: Callable
    naive: Callable
    weight_shape: Callable   # (N, C, K, Ho, Wo) -> shape of w (conv, depthwise) or kernel (involution)


OPS = {
    "conv": Op(ops.conv2d_forward, ops.conv2d_backward, conv2d_forward_naive,
               lambda N, C, K, Ho, Wo: (C + 1, C, K, K)),        # Co != Ci, so a mix-up of the two fails
    "depthwise": Op(ops.depthwise_conv2d_forward, ops.depthwise_conv2d_backward, depthwise_conv2d_forward_naive,
                    lambda N, C, K, Ho, Wo: (C, K, K)),
    "involution-G1": Op(ops.involution_forward, ops.involution_backward, involution_forward_naive,
                        lambda N, C, K, Ho, Wo: (N, 1, K, K, Ho, Wo)),
    "involution-G2": Op(ops.involution_forward, ops.involution_backward, involution_forward_naive,
                        lambda N, C, K, Ho, Wo: (N, 2, K, K, Ho, Wo)),
}

# ReLU, BatchNorm (alone, and fused with the ReLU after it) and add take no geometry: only a shape (N, C, H, W)
ELEMENTWISE_OPS = ("relu", "batchnorm", "batchnorm-relu", "add")


def make_inputs(op_name, geometry, *, C=4, dtype=np.float64, seed=2021):
    """Random (x, weight, dy, dict(stride=..., padding=...)) for one of OPS on ``geometry``.

    dy has the forward output's shape.
    """
    N, H, W, K, stride, padding = geometry
    Ho, Wo = output_size(H, K, stride, padding), output_size(W, K, stride, padding)
    rng = np.random.default_rng(seed)
    weight_shape = OPS[op_name].weight_shape(N, C, K, Ho, Wo)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    weight = rng.standard_normal(weight_shape).astype(dtype)
    dy = rng.standard_normal((N, weight_shape[0] if op_name == "conv" else C, Ho, Wo)).astype(dtype)
    return x, weight, dy, dict(stride=stride, padding=padding)


def run(op_name, backend, x, weight, dy, kwargs):
    """[y, dx, dweight] of one of OPS on ``backend``."""
    op = OPS[op_name]
    y = op.forward(x, weight, backend=backend, **kwargs)
    return [y, *op.backward(dy, x, weight, backend=backend, **kwargs)]


def make_batchnorm_inputs(shape, dtype=np.float64, seed=2021):
    """(x, dy, gamma, beta) for batchnorm on x of ``shape``; x has mean 3 and std 2, so the centring matters."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (3 + 2 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = (1 + rng.standard_normal(C)).astype(dtype), rng.standard_normal(C).astype(dtype)
    return x, dy, gamma, beta


def run_batchnorm(backend, x, dy, gamma, beta, eps=1e-5, relu=False):
    """[y, mean, var, dx, dgamma, dbeta] on ``backend``; with ``relu``, BatchNorm fused with a ReLU."""
    y, mean, var = ops.batchnorm_forward(x, gamma, beta, eps, relu=relu, backend=backend)
    grads = ops.batchnorm_backward(dy, x, mean, var, gamma, eps, y=y if relu else None, backend=backend)
    return [y, mean, var, *grads]


def make_relu_inputs(shape, dtype=np.float64, seed=2021):
    """(x, dy) for relu; x[0] is exactly 0, the kink, where y = 0 and no gradient passes."""
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    x.flat[0] = 0.0
    return x, dy


def run_relu(backend, x, dy):
    """[y, dx] on ``backend``."""
    y = ops.relu_forward(x, backend=backend)
    return [y, ops.relu_backward(dy, y, backend=backend)]


def every_output(op_name, backend, geometry, *, C, dtype, seed):
    """Every array that the forward and backward passes of ``op_name`` (one of OPS or
    ELEMENTWISE_OPS) return on ``backend``; ReLU, BatchNorm and add use only N, H, W of ``geometry``."""
    N, H, W = geometry[:3]
    if op_name == "relu":
        return run_relu(backend, *make_relu_inputs((N, C, H, W), dtype, seed))
    if op_name in ("batchnorm", "batchnorm-relu"):
        return run_batchnorm(backend, *make_batchnorm_inputs((N, C, H, W), dtype, seed), relu=op_name == "batchnorm-relu")
    if op_name == "add":
        rng = np.random.default_rng(seed)
        a, b = (rng.standard_normal((N, C, H, W)).astype(dtype) for _ in range(2))
        return [ops.add(a, b, backend=backend)]
    return run(op_name, backend, *make_inputs(op_name, geometry, C=C, dtype=dtype, seed=seed))
