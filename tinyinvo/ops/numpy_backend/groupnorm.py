"""Group normalisation (Wu & He, ECCV 2018, arXiv 1803.08494), the readable NumPy reference.

Each image's C channels are split into G groups of C // G consecutive channels, and each group of
each image is normalised over its own M = (C // G)*H*W values. Unlike BatchNorm the statistics never
mix images, so the scale of one image cannot leak into another's, and train and eval compute the same.

    mean[n, g] = 1/M sum x,   var[n, g] = 1/M sum (x - mean)^2,   inv_std = 1 / sqrt(var + eps)
    xhat = (x - mean) * inv_std,   y = gamma[c] * xhat + beta[c]
"""

import numpy as np


def group_norm_forward(x, gamma, beta, *, groups, eps):
    """Normalise each group of channels of each image with its own statistics.

    Inputs: x (N, C, H, W); gamma, beta (C,), same dtype; groups G dividing C; eps > 0.
    Returns (y, mean, var): y (N, C, H, W), each group's mean and biased variance (N, G).
    """
    N, C, H, W = x.shape
    grouped = x.reshape(N, groups, C // groups * H * W)  # not -1: N may be 0 (tinyinvo.count)
    mean, var = grouped.mean(axis=2), grouped.var(axis=2)
    xhat = ((grouped - mean[:, :, None]) / np.sqrt(var + eps)[:, :, None]).reshape(x.shape)
    return gamma[:, None, None] * xhat + beta[:, None, None], mean, var


def group_norm_backward(dy, x, mean, var, gamma, *, groups, eps):
    """Gradients of group_norm_forward. Within a group, as in BatchNorm's compact formula,

        dx = inv_std / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),   dxhat = gamma * dy,

    the sums running over the group's M = (C // G)*H*W values of one image.
    Inputs: dy, x (N, C, H, W); mean, var (N, G) (the forward's); gamma (C,); groups; eps.
    Returns (dx, dgamma, dbeta): (N, C, H, W), (C,), (C,).
    """
    N, C, H, W = x.shape
    M = C // groups * H * W
    inv_std = (1 / np.sqrt(var + eps))[:, :, None]
    xhat = (x.reshape(N, groups, M) - mean[:, :, None]) * inv_std
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat.reshape(x.shape)).sum(axis=(0, 2, 3))
    dxhat = (gamma[:, None, None] * dy).reshape(N, groups, M)
    dx = inv_std / M * (M * dxhat - dxhat.sum(axis=2, keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=2, keepdims=True))
    return dx.reshape(x.shape), dgamma, dbeta
