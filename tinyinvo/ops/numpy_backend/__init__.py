"""The NumPy backend: the readable, vectorised reference implementation of the three ops.

Every op is built on the same sliding-window view of the padded input (``tinyinvo/ops/windows.py``):
the dense conv as im2col + matrix product, depthwise conv and involution as one einsum each.
Backward passes add window gradients back with col2im. ``batchnorm.py`` holds BatchNorm2d's
train-mode forward/backward and ``relu.py`` ReLU's (not among the three ops, but hot enough in
training to have fast twins). Call them through ``tinyinvo.ops``: inputs arrive from there checked,
C-contiguous (BatchNorm's: in the caller's layout) and with involution's padding resolved to an int;
outputs keep the dtype of x.
"""

from tinyinvo.ops.numpy_backend.add import add
from tinyinvo.ops.numpy_backend.batchnorm import batchnorm_backward, batchnorm_forward
from tinyinvo.ops.numpy_backend.conv import conv2d_backward, conv2d_forward
from tinyinvo.ops.numpy_backend.depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from tinyinvo.ops.numpy_backend.involution import involution_backward, involution_forward
from tinyinvo.ops.numpy_backend.relu import relu_backward, relu_forward
from tinyinvo.ops.numpy_backend.groupnorm import group_norm_backward, group_norm_forward

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "involution_forward", "involution_backward",
    "batchnorm_forward", "batchnorm_backward",
    "relu_forward", "relu_backward",
    "add",
    "group_norm_forward", "group_norm_backward",
]
