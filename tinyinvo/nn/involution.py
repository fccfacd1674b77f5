"""Involution2d: the layer of Li et al., "Involution: Inverting the Inherence of Convolution for
Visual Recognition" (CVPR 2021), built as in the paper's official code.

A convolution uses one set of filters everywhere in the image and different filters per channel.
Involution inverts this: each pixel gets its own K x K filter, predicted from that pixel's features,
and the filter is shared by the C // G channels of a group. The filters come from a small
"kernel generator" applied to x itself:

    x (N, C, H, W)
      -> AvgPool2d(stride)         (only when stride > 1, to get one filter per output pixel)
      -> 1x1 Conv2d C -> C // r    ("reduce", no bias)  -> BatchNorm2d -> ReLU
      -> 1x1 Conv2d C // r -> G*K*K ("span", with bias)
      -> reshape to the kernel (N, G, K, K, Ho, Wo)
    out = involution_forward(x, kernel, stride, padding=(K - 1) // 2)

Since x feeds both the generator and the involution op, its gradient is the sum of the two paths.

``static_start=True`` (not in the official code; the study's inverted involution net uses it):
the span conv starts with zero weights and a random bias, so every pixel gets the same kernel,
the bias, and the layer starts as a static grouped K x K filter. Training then grows the kernel's
dynamic part, span.w @ h, from zero: the zero-init of Goyal et al. (2017) applied to the dynamic
part of a kernel, as dynamic convolution decomposition (Y. Li et al., ICLR 2021) writes a dynamic
kernel as a static one plus a dynamic residual. With the official random span weights, each pixel
starts with its own random kernel, which scrambles the image; in a net where the signal must pass
through chained involutions without a shortcut, that stalls training (see README).
"""

import numpy as np

from tinyinvo.nn.activation import ReLU
from tinyinvo.nn.containers import Identity
from tinyinvo.nn.conv import Conv2d
from tinyinvo.nn.init import as_generator, check_int, kaiming_normal
from tinyinvo.nn.layer import Layer
from tinyinvo.nn.norm import BatchNorm2d
from tinyinvo.nn.pool import AvgPool2d
from tinyinvo.ops import involution_backward, involution_forward
from tinyinvo.ops.checks import check_float_array


class Involution2d(Layer):
    """Involution with a kernel generated from the input, "same" padding (K - 1) // 2.

    out[n, c, i, j] = sum_{p,q} kernel[n, g(c), p, q, i, j] * xpad[n, c, i*stride + p, j*stride + q]
    with g(c) = c // group_channels and Ho = (H - 1) // stride + 1 = H / stride.

    Inputs:
    - channels C; kernel_size K (odd); stride (H and W must be divisible by it)
    - group_channels: channels per group, so G = C // group_channels groups (G = 1: one filter per
      pixel for all channels; group_channels = 1: G = C, one filter per pixel and channel)
    - reduction_ratio r: the generator's hidden width is C // r
    - static_start: start as a static filter (span.w = 0, span.b He-normal with fan_in K*K, as a
      depthwise filter's weights; see the module docstring); False: the official initialisation
    - rng (numpy Generator, None -> default_rng(0)), dtype
    Children: pool (AvgPool2d or Identity), reduce (Conv2d, w only), bn (BatchNorm2d), relu,
    span (Conv2d, w and b). After forward, ``last_kernel`` is the predicted kernel (N, G, K, K, Ho, Wo).
    """

    def __init__(self, channels, kernel_size=7, stride=1, group_channels=16, reduction_ratio=4,
                 static_start=False, rng=None, dtype=np.float32):
        super().__init__()
        self.channels = check_int("channels", channels)
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.stride = check_int("stride", stride)
        self.group_channels = check_int("group_channels", group_channels)
        self.reduction_ratio = check_int("reduction_ratio", reduction_ratio)
        C, K = self.channels, self.kernel_size
        if K % 2 == 0:
            raise ValueError(f"kernel_size must be odd so that padding (K - 1) // 2 keeps the size, "
                             f"got {K}")
        if C % self.group_channels != 0:
            raise ValueError(f"channels={C} must be divisible by group_channels="
                             f"{self.group_channels} (G = channels // group_channels groups)")
        if C // self.reduction_ratio < 1:
            raise ValueError(f"reduction_ratio={reduction_ratio} leaves channels // reduction_ratio "
                             f"= 0 hidden channels for channels={C}; use reduction_ratio <= {C}")
        self.groups = C // self.group_channels
        hidden = C // self.reduction_ratio
        rng = as_generator(rng)
        self.pool = AvgPool2d(self.stride) if self.stride > 1 else Identity()
        self.reduce = Conv2d(C, hidden, kernel_size=1, bias=False, rng=rng, dtype=dtype)
        self.bn = BatchNorm2d(hidden, dtype=dtype)
        self.relu = ReLU()
        self.span = Conv2d(hidden, self.groups * K * K, kernel_size=1, bias=True, rng=rng,
                           dtype=dtype)
        self.static_start = bool(static_start)
        if self.static_start:
            self.span.params["w"][...] = 0
            self.span.params["b"][...] = kaiming_normal((self.groups * K * K,), K * K, rng, dtype)
        self.last_kernel = None

    def forward(self, x):
        """x: (N, C, H, W) -> out: (N, C, H / stride, W / stride)."""
        self._check_input(x)
        h = self.pool.forward(x)
        h = self.relu.forward(self.bn.forward(self.reduce.forward(h)))
        h = self.span.forward(h)  # (N, G*K*K, Ho, Wo)
        N, _, Ho, Wo = h.shape
        K = self.kernel_size
        kernel = h.reshape(N, self.groups, K, K, Ho, Wo)
        self.last_kernel = kernel
        self.cache = (x, kernel)
        return involution_forward(x, kernel, stride=self.stride, padding=(K - 1) // 2)

    def backward(self, dy):
        """dy: (N, C, Ho, Wo) -> dx: (N, C, H, W); sets the generator's grads."""
        x, kernel = self.saved_for_backward()
        dx, dkernel = involution_backward(dy, x, kernel, stride=self.stride,
                                          padding=(self.kernel_size - 1) // 2)
        N, G, K, _, Ho, Wo = dkernel.shape
        dh = self.span.backward(dkernel.reshape(N, G * K * K, Ho, Wo))
        dh = self.reduce.backward(self.bn.backward(self.relu.backward(dh)))
        return dx + self.pool.backward(dh)

    def _check_input(self, x):
        check_float_array("x", x, 4, "(N, C, H, W)")
        if x.shape[1] != self.channels:
            raise ValueError(f"Involution2d({self.channels}) got x with {x.shape[1]} channels "
                             f"(x.shape={x.shape})")
        H, W = x.shape[2:]
        if H % self.stride or W % self.stride:
            raise ValueError(f"Involution2d with stride={self.stride} needs H and W divisible by "
                             f"the stride (the kernel generator average-pools by {self.stride}), "
                             f"got H x W = {H} x {W}")
