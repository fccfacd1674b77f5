"""Batch normalisation over (N, H, W) for each channel (Ioffe & Szegedy, 2015)."""

import numpy as np

from tinyinvo.nn.init import check_int, float_dtype
from tinyinvo.nn.layer import Layer
from tinyinvo.ops import (batchnorm_backward, batchnorm_forward, group_norm_backward,
                          group_norm_forward, relu_backward, relu_forward)
from tinyinvo.ops.checks import check_float_array, check_relu_flag, check_same_dtype


class BatchNorm2d(Layer):
    """Normalise each channel to zero mean and unit variance, then scale and shift.

    xhat = (x - mean[c]) / sqrt(var[c] + eps),   y = gamma[c] * xhat + beta[c]

    Train mode: mean and var are the statistics of the batch (over N, H, W; biased variance), and
    the running statistics move towards them:
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
    with M = N*H*W values per channel (the unbiased variance, as in PyTorch).
    Eval mode: mean and var are the running statistics, so the output of one image does not
    depend on the rest of the batch.

    relu=True: a ReLU follows, y = max(gamma[c] * xhat + beta[c], 0). It is the same function as
    BatchNorm2d then ReLU, in one layer because the kernels then do the ReLU in BatchNorm's own
    passes over memory instead of two more (see ``tinyinvo.ops.batchnorm_forward``).

    Inputs: channels C, momentum, eps, dtype, relu.
    Params: gamma (C,) ones, beta (C,) zeros. Buffers: running_mean (C,) zeros, running_var (C,) ones.
    """

    def __init__(self, channels, momentum=0.1, eps=1e-5, dtype=np.float32, *, relu=False):
        super().__init__()
        self.channels = check_int("channels", channels)
        check_relu_flag(relu)
        self.relu = bool(relu)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.momentum, self.eps = momentum, eps
        dtype = float_dtype(dtype)
        C = self.channels
        self.params = {"gamma": np.ones(C, dtype), "beta": np.zeros(C, dtype)}
        self.buffers = {"running_mean": np.zeros(C, dtype), "running_var": np.ones(C, dtype)}

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, H, W)."""
        self._check_input(x)
        gamma, beta = self.params["gamma"], self.params["beta"]
        if self.training:
            y, mean, var = batchnorm_forward(x, gamma, beta, self.eps, relu=self.relu)
            self._update_running_stats(mean, var, count=x.size // self.channels)
        else:
            # eval: fixed statistics, so y = scale * x + shift, an affine map per channel
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            scale = gamma / np.sqrt(var + self.eps)
            y = scale[:, None, None] * x + (beta - mean * scale)[:, None, None]
            y = relu_forward(y) if self.relu else y
        # the ReLU's backward needs its output y (see ops.relu_backward)
        self.cache = (x, mean, var, self.training, y if self.relu else None)
        return y

    def backward(self, dy):
        """dy: (N, C, H, W) -> dx: (N, C, H, W); sets grads["gamma"], grads["beta"].

        With batch statistics, mean and var depend on x too: see ``tinyinvo.ops.batchnorm_backward``.
        With running statistics they are constants: dx = gamma * inv_std * dy.
        """
        x, mean, var, used_batch_stats, relu_output = self.saved_for_backward()
        gamma = self.params["gamma"]
        if used_batch_stats:
            dx, dgamma, dbeta = batchnorm_backward(dy, x, mean, var, gamma, self.eps, y=relu_output)
            self.grads = {"gamma": dgamma, "beta": dbeta}
            return dx
        if relu_output is not None:
            dy = relu_backward(dy, relu_output)
        inv_std = 1 / np.sqrt(var + self.eps)
        xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
        self.grads = {"gamma": (dy * xhat).sum(axis=(0, 2, 3)), "beta": dy.sum(axis=(0, 2, 3))}
        return (gamma * inv_std)[:, None, None] * dy

    def _check_input(self, x):
        check_float_array("x", x, 4, "(N, C, H, W)")
        if x.shape[1] != self.channels:
            raise ValueError(f"BatchNorm2d({self.channels}) got x with {x.shape[1]} channels "
                             f"(x.shape={x.shape})")
        check_same_dtype("gamma", self.params["gamma"], x)
        if self.training and x.size == self.channels:
            raise ValueError(f"BatchNorm2d in train mode needs more than one value per channel, "
                             f"got x.shape={x.shape}; use a batch with N*H*W > 1 or call eval()")

    def _update_running_stats(self, mean, var, count):
        """Move the running statistics towards this batch's, in place (state_dict sees the change)."""
        m = self.momentum
        unbiased_var = var * (count / (count - 1))
        self.buffers["running_mean"] *= 1 - m
        self.buffers["running_mean"] += m * mean
        self.buffers["running_var"] *= 1 - m
        self.buffers["running_var"] += m * unbiased_var

    def extra_repr(self):
        return f"{self.channels}, momentum={self.momentum}, eps={self.eps}" + (", relu=True" if self.relu else "")


class GroupNorm2d(Layer):
    """Normalise each image's channels group by group with that image's own statistics
    (Wu & He, 2018), then scale and shift per channel:

    y[n, c] = gamma[c] * (x[n, c] - mean[n, g]) / sqrt(var[n, g] + eps) + beta[c],  g = c // (C // G)

    No running statistics: train and eval compute the same function, and one image's output never
    depends on the rest of the batch. See ``tinyinvo.ops.group_norm_forward``.

    Inputs: channels C, groups G (dividing C), eps, dtype.
    Params: gamma (C,) ones, beta (C,) zeros.
    """

    def __init__(self, channels, groups, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.channels, self.groups = check_int("channels", channels), check_int("groups", groups)
        if self.channels % self.groups:
            raise ValueError(f"groups ({groups}) must divide channels ({channels})")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = eps
        dtype = float_dtype(dtype)
        self.params = {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)}

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, H, W)."""
        y, mean, var = group_norm_forward(x, self.params["gamma"], self.params["beta"],
                                              groups=self.groups, eps=self.eps)
        self.cache = (x, mean, var)
        return y

    def backward(self, dy):
        """dy: (N, C, H, W) -> dx: (N, C, H, W); sets grads["gamma"], grads["beta"]."""
        x, mean, var = self.saved_for_backward()
        dx, dgamma, dbeta = group_norm_backward(dy, x, mean, var, self.params["gamma"],
                                                    groups=self.groups, eps=self.eps)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        return dx

    def extra_repr(self):
        return f"{self.channels}, groups={self.groups}, eps={self.eps}"
