"""Layers with hand-written backward passes, built on the ops in ``tinyinvo.ops``.

Every layer has ``forward(x)`` and ``backward(dy) -> dx``; ``backward`` also fills ``layer.grads``
(same keys as ``layer.params``). See ``layer.py`` for the base class.
"""

from tinyinvo.nn.activation import ReLU
from tinyinvo.nn.containers import Add, Identity, Sequential
from tinyinvo.nn.conv import Conv2d, DepthwiseConv2d
from tinyinvo.nn.init import kaiming_normal
from tinyinvo.nn.involution import Involution2d
from tinyinvo.nn.layer import Layer
from tinyinvo.nn.linear import Linear
from tinyinvo.nn.loss import accuracy, softmax_cross_entropy
from tinyinvo.nn.norm import BatchNorm2d, GroupNorm2d
from tinyinvo.nn.pool import AvgPool2d, GlobalAvgPool, MaxPool2d

__all__ = [
    "Layer", "Conv2d", "DepthwiseConv2d", "Involution2d", "BatchNorm2d", "GroupNorm2d", "ReLU",
    "MaxPool2d", "AvgPool2d", "GlobalAvgPool", "Linear", "Sequential", "Add", "Identity",
    "softmax_cross_entropy", "accuracy", "kaiming_normal",
]
