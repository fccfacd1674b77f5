"""Batch normalisation in train mode (batch statistics), the readable NumPy reference.

The Numba twin is ``tinyinvo.ops.numba_backend.batchnorm``; ``tinyinvo.ops.batchnorm_forward``
(which ``BatchNorm2d`` calls) checks the input and picks the current backend's. Each channel c is normalised over its M = N*H*W values:

    mean[c] = 1/M sum x,   var[c] = 1/M sum (x - mean)^2   (biased),   inv_std = 1 / sqrt(var + eps)
    xhat = (x - mean) * inv_std,   y = gamma * xhat + beta
"""

import numpy as np


def batchnorm_forward(x, gamma, beta, eps):
    """Normalise x with its own batch statistics.

    Inputs: x (N, C, H, W); gamma, beta (C,), same dtype; eps > 0.
    Returns (y, mean, var): y (N, C, H, W), the batch mean and biased variance (C,).
    """
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
    return gamma[:, None, None] * xhat + beta[:, None, None], mean, var


def batchnorm_backward(dy, x, mean, var, gamma, eps):
    """Gradients of batchnorm_forward; mean and var depend on x too, which gives the compact formula

        dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma),   M = N*H*W.

    Inputs: dy, x (N, C, H, W); mean, var (the forward's), gamma (C,); eps.
    Returns (dx, dgamma, dbeta): (N, C, H, W), (C,), (C,).
    """
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    M = dy.size // dy.shape[1]
    scale = (gamma * inv_std / M)[:, None, None]
    return scale * (M * dy - dbeta[:, None, None] - xhat * dgamma[:, None, None]), dgamma, dbeta
