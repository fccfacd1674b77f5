"""Batch normalisation in train mode (batch statistics), the readable NumPy reference.

The Numba twin is ``tinyinvo.ops.numba_backend.batchnorm``; ``tinyinvo.ops.batchnorm_forward``
(which ``BatchNorm2d`` calls) checks the input and picks the current backend's. Each channel c is normalised over its M = N*H*W values:

    mean[c] = 1/M sum x,   var[c] = 1/M sum (x - mean)^2   (biased),   inv_std = 1 / sqrt(var + eps)
    xhat = (x - mean) * inv_std,   y = gamma * xhat + beta

With ``relu=True`` the forward also applies a ReLU, y = max(gamma * xhat + beta, 0), and the
backward takes that y and sends dy through the ReLU first (the Numba kernels do both in the same
passes over memory; here it is simply the two functions one after the other).
"""

import numpy as np

from tinyinvo.ops.numpy_backend.relu import relu_backward, relu_forward


def batchnorm_forward(x, gamma, beta, eps, *, relu=False):
    """Normalise x with its own batch statistics (then apply a ReLU if ``relu``).

    Inputs: x (N, C, H, W); gamma, beta (C,), same dtype; eps > 0; relu: bool.
    Returns (y, mean, var): y (N, C, H, W), the batch mean and biased variance (C,).
    """
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
    y = gamma[:, None, None] * xhat + beta[:, None, None]
    return (relu_forward(y) if relu else y), mean, var


def batchnorm_backward(dy, x, mean, var, gamma, eps, *, y=None):
    """Gradients of batchnorm_forward; mean and var depend on x too, which gives the compact formula

        dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma),   M = N*H*W.

    Inputs: dy, x (N, C, H, W); mean, var (the forward's), gamma (C,); eps; y: None, or the
    forward's output if it applied the ReLU (then dy first becomes dy * (y > 0)).
    Returns (dx, dgamma, dbeta): (N, C, H, W), (C,), (C,).
    """
    if y is not None:
        dy = relu_backward(dy, y)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    M = dy.size // dy.shape[1]
    scale = (gamma * inv_std / M)[:, None, None]
    return scale * (M * dy - dbeta[:, None, None] - xhat * dgamma[:, None, None]), dgamma, dbeta
