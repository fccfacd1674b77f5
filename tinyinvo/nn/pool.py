"""Pooling layers: MaxPool2d, AvgPool2d (K x K windows) and GlobalAvgPool (the whole image).

MaxPool2d reads the input through the same sliding-window view as the NumPy ops,
``windows[n, c, p, q, i, j] = xpad[n, c, i*stride + p, j*stride + q]`` (``sliding_windows``), and
its backward pass adds each window's gradient back onto its pixels with ``col2im``. AvgPool2d,
which sits in every strided involution's kernel generator, adds strided slices instead (faster).
"""

import numpy as np

from tinyinvo.nn.init import check_int
from tinyinvo.nn.layer import Layer
from tinyinvo.ops.checks import check_float_array, check_output_size
from tinyinvo.ops.windows import col2im, sliding_windows


class MaxPool2d(Layer):
    """The largest value of each K x K window.

    y[n, c, i, j] = max_{p,q} xpad[n, c, i*stride + p, j*stride + q], xpad padded with -inf,
    Ho = (H + 2*padding - K) // stride + 1. The gradient goes to the maximum of each window
    (to the first one, in row-major order, if several values tie).

    Inputs: kernel_size K, stride (None -> K), padding (at most K // 2, so no window is all padding).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else check_int("stride", stride)
        self.padding = check_int("padding", padding, minimum=0)
        if self.padding > self.kernel_size // 2:
            raise ValueError(f"padding={padding} must be at most kernel_size // 2 = "
                             f"{self.kernel_size // 2}, or a window could hold only padding")

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, Ho, Wo)."""
        check_float_array("x", x, 4, "(N, C, H, W)")
        K, P = self.kernel_size, self.padding
        Ho, Wo = check_output_size(x, K, self.stride, P)
        xpad = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)), constant_values=-np.inf)
        N, C = x.shape[:2]
        windows = sliding_windows(xpad, K, self.stride, 0).reshape(N, C, K * K, Ho, Wo)
        argmax = windows.argmax(axis=2)  # (N, C, Ho, Wo): index p*K + q of each window's maximum
        self.cache = (argmax, x.shape)
        return np.take_along_axis(windows, argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, dy):
        """dy: (N, C, Ho, Wo) -> dx: (N, C, H, W), dy routed to the argmax of each window."""
        argmax, x_shape = self.saved_for_backward()
        K = self.kernel_size
        N, C, Ho, Wo = dy.shape
        dwindows = np.zeros((N, C, K * K, Ho, Wo), dtype=dy.dtype)
        np.put_along_axis(dwindows, argmax[:, :, None], dy[:, :, None], axis=2)  # only the max gets dy
        return col2im(dwindows.reshape(N, C, K, K, Ho, Wo), x_shape, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Layer):
    """The mean of each K x K window (no padding).

    y[n, c, i, j] = 1/K^2 sum_{p,q} x[n, c, i*stride + p, j*stride + q], Ho = (H - K) // stride + 1.
    Each pixel of a window gets dy / K^2 of that window's gradient.

    Computed tap by tap: for each (p, q), the pixels x[:, :, i*stride + p, j*stride + q] for all
    (i, j) are one strided slice of x, so the layer is K*K whole-array adds (much faster than a
    mean over a 6-D window view), and the backward adds dy / K^2 into the same slices of dx.

    Inputs: kernel_size K, stride (None -> K).
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else check_int("stride", stride)

    def _taps(self, Ho, Wo):
        """For each tap (p, q): the (rows, cols) slices of x that it reads for the Ho x Wo outputs."""
        K, s = self.kernel_size, self.stride
        return [(slice(p, p + s * (Ho - 1) + 1, s), slice(q, q + s * (Wo - 1) + 1, s))
                for p in range(K) for q in range(K)]

    def forward(self, x):
        """x: (N, C, H, W) -> y: (N, C, Ho, Wo)."""
        check_float_array("x", x, 4, "(N, C, H, W)")
        Ho, Wo = check_output_size(x, self.kernel_size, self.stride, 0)
        self.cache = x.shape
        y = np.zeros((*x.shape[:2], Ho, Wo), x.dtype)
        for rows, cols in self._taps(Ho, Wo):
            y += x[:, :, rows, cols]
        y /= self.kernel_size ** 2
        return y

    def backward(self, dy):
        """dy: (N, C, Ho, Wo) -> dx: (N, C, H, W)."""
        x_shape = self.saved_for_backward()
        dx = np.zeros(x_shape, dy.dtype)
        share = dy / self.kernel_size ** 2
        for rows, cols in self._taps(*dy.shape[2:]):
            dx[:, :, rows, cols] += share
        return dx

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class GlobalAvgPool(Layer):
    """The mean of each channel over the whole image: x (N, C, H, W) -> y (N, C).

    y[n, c] = 1/(H*W) sum_{i,j} x[n, c, i, j], so dx[n, c, i, j] = dy[n, c] / (H*W).
    """

    def forward(self, x):
        check_float_array("x", x, 4, "(N, C, H, W)")
        self.cache = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        N, C, H, W = self.saved_for_backward()
        return np.broadcast_to((dy / (H * W))[:, :, None, None], (N, C, H, W)).copy()
