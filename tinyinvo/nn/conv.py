"""Convolution layers: Conv2d (dense) and DepthwiseConv2d (one filter per channel).

Both are thin wrappers around the ops in ``tinyinvo.ops``: the layer owns the weight ``w`` and the
optional bias ``b`` and remembers the input for the backward pass. The bias is the same for every
pixel of a channel: y[n, o, i, j] += b[o], so its gradient is db[o] = sum_{n,i,j} dy[n, o, i, j].
"""

import numpy as np

from tinyinvo.nn.init import as_generator, check_int, float_dtype, kaiming_normal
from tinyinvo.nn.layer import Layer
from tinyinvo.ops import (conv2d_backward, conv2d_forward, depthwise_conv2d_backward,
                          depthwise_conv2d_forward)


class _Convolution(Layer):
    """What Conv2d and DepthwiseConv2d share: forward/backward through an op pair, plus a bias.

    Subclasses set ``forward_op``/``backward_op`` and create ``params["w"]`` (and ``params["b"]``).
    """

    forward_op = None
    backward_op = None

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.stride = check_int("stride", stride)
        self.padding = check_int("padding", padding, minimum=0)

    def forward(self, x):
        """x: (N, Ci, H, W) -> y: (N, Co, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1."""
        y = self.forward_op(x, self.params["w"], stride=self.stride, padding=self.padding)
        if "b" in self.params:
            y += self.params["b"][:, None, None]
        self.cache = x
        return y

    def backward(self, dy):
        """dy: (N, Co, Ho, Wo) -> dx: (N, Ci, H, W); sets grads["w"] (and grads["b"])."""
        x = self.saved_for_backward()
        dx, self.grads["w"] = self.backward_op(dy, x, self.params["w"], stride=self.stride,
                                               padding=self.padding)
        if "b" in self.params:
            self.grads["b"] = dy.sum(axis=(0, 2, 3))
        return dx

    def _init_params(self, w_shape, fan_in, bias, rng, dtype):
        """He-normal weight of ``w_shape``; zero bias of length w_shape[0] when ``bias``."""
        self.params["w"] = kaiming_normal(w_shape, fan_in, as_generator(rng), dtype)
        if bias:
            self.params["b"] = np.zeros(w_shape[0], dtype=float_dtype(dtype))


class Conv2d(_Convolution):
    """Dense convolution: every output channel looks at every input channel.

    y[n, o, i, j] = b[o] + sum_{c,p,q} w[o, c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs: in_channels Ci, out_channels Co, kernel_size K, stride, padding (zero padding),
    bias (bool), rng (numpy Generator, None -> default_rng(0)), dtype.
    Params: w (Co, Ci, K, K), He-normal with fan_in = Ci*K*K; b (Co,) zeros, if bias.
    """

    forward_op = staticmethod(conv2d_forward)
    backward_op = staticmethod(conv2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, bias=True,
                 rng=None, dtype=np.float32):
        super().__init__(kernel_size, stride, padding)
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        Co, Ci, K = self.out_channels, self.in_channels, self.kernel_size
        self._init_params((Co, Ci, K, K), Ci * K * K, bias, rng, dtype)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={'b' in self.params}")


class DepthwiseConv2d(_Convolution):
    """Depthwise convolution: one K x K filter per channel, channels never mix.

    y[n, c, i, j] = b[c] + sum_{p,q} w[c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs: channels C, kernel_size K, stride, padding, bias (bool), rng, dtype.
    Params: w (C, K, K), He-normal with fan_in = K*K; b (C,) zeros, if bias.
    """

    forward_op = staticmethod(depthwise_conv2d_forward)
    backward_op = staticmethod(depthwise_conv2d_backward)

    def __init__(self, channels, kernel_size=3, stride=1, padding=0, bias=True, rng=None,
                 dtype=np.float32):
        super().__init__(kernel_size, stride, padding)
        self.channels = check_int("channels", channels)
        C, K = self.channels, self.kernel_size
        self._init_params((C, K, K), K * K, bias, rng, dtype)

    def extra_repr(self):
        return (f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={'b' in self.params}")
