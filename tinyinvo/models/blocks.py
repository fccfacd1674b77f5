"""Residual blocks, each with a swappable spatial op: the grid {basic, bottleneck, inverted} x op.

The spatial op is the one layer that looks at neighbouring pixels; everything else is 1x1 or BN/ReLU:
- "conv3": dense 3x3 convolution (ResNet)          weight (C, C, 3, 3)
- "dw3" / "dw7": static depthwise 3x3 / 7x7 conv    weight (C, K, K)
- "inv7": 7x7 involution (RedNet)                   kernel (N, G, 7, 7, Ho, Wo), predicted from the input
A block is built from the generic containers: out = relu(body(x) + shortcut(x)).
"""

from tinyinvo.nn import (Add, BatchNorm2d, Conv2d, DepthwiseConv2d, Identity, Involution2d, ReLU,
                         Sequential)

SPATIAL_OPS = ("conv3", "dw3", "dw7", "inv7")


def spatial_op(op, channels, *, stride, rng, dtype):
    """The layer in the block's spatial slot: channels -> channels, downsampling by ``stride``."""
    if op == "conv3":
        return Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False, rng=rng, dtype=dtype)
    if op in ("dw3", "dw7"):
        K = int(op[2])
        return DepthwiseConv2d(channels, K, stride=stride, padding=K // 2, bias=False, rng=rng,
                               dtype=dtype)
    if op == "inv7":
        return Involution2d(channels, 7, stride=stride, rng=rng, dtype=dtype)
    raise ValueError(f"op must be one of {SPATIAL_OPS}, got {op!r}")


def conv_bn(Ci, Co, K, *, stride=1, rng, dtype, relu=True, zero_gamma=False):
    """K x K conv (padding K // 2; no bias: the BatchNorm after it would cancel it) + BatchNorm (+ ReLU)."""
    bn = BatchNorm2d(Co, dtype=dtype)
    if zero_gamma:  # the block starts as the identity: out = relu(0 + shortcut(x))
        bn.params["gamma"][...] = 0
    layers = [Conv2d(Ci, Co, K, stride=stride, padding=K // 2, bias=False, rng=rng, dtype=dtype), bn]
    return Sequential(*layers, ReLU()) if relu else Sequential(*layers)


def shortcut(Ci, Co, *, stride, rng, dtype):
    """Identity when shapes match, else a strided 1x1 conv + BN (as in ResNet and the RedNet code)."""
    if stride == 1 and Ci == Co:
        return Identity()
    return conv_bn(Ci, Co, 1, stride=stride, rng=rng, dtype=dtype, relu=False)


def residual(body, skip):
    """relu(body(x) + skip(x))."""
    return Sequential(Add(body, skip), ReLU())


def bottleneck_block(Ci, Co, *, op, stride, rng, dtype, expansion=4, zero_init_residual=True):
    """1x1 reduce (Ci -> M = Co / expansion) -> spatial op (M -> M, stride) -> 1x1 expand (M -> Co)."""
    M = Co // expansion
    body = Sequential(
        conv_bn(Ci, M, 1, rng=rng, dtype=dtype),
        spatial_op(op, M, stride=stride, rng=rng, dtype=dtype), BatchNorm2d(M, dtype=dtype), ReLU(),
        conv_bn(M, Co, 1, rng=rng, dtype=dtype, relu=False, zero_gamma=zero_init_residual),
    )
    return residual(body, shortcut(Ci, Co, stride=stride, rng=rng, dtype=dtype))


def basic_block(Ci, Co, *, op, stride, rng, dtype, zero_init_residual=True):
    """Two 3x3 convs (CIFAR ResNet-20/32/56). Only "conv3": without 1x1 convs a depthwise or
    involution basic block would never mix channels."""
    if op != "conv3":
        raise ValueError(f"the basic block supports op='conv3' only (it has no 1x1 convs to mix "
                         f"channels), got op={op!r}; use block='bottleneck' or 'inverted'")
    body = Sequential(
        conv_bn(Ci, Co, 3, stride=stride, rng=rng, dtype=dtype),
        conv_bn(Co, Co, 3, rng=rng, dtype=dtype, relu=False, zero_gamma=zero_init_residual),
    )
    return residual(body, shortcut(Ci, Co, stride=stride, rng=rng, dtype=dtype))


def inverted_block(Ci, Co, *, op, stride, rng, dtype, expansion=6):
    """MobileNetV2 inverted bottleneck: 1x1 expand (Ci -> E = expansion * Ci) -> spatial op on the wide
    tensor -> 1x1 project (E -> Co, no ReLU). Residual only when stride 1 and Ci == Co."""
    E = expansion * Ci
    layers = [conv_bn(Ci, E, 1, rng=rng, dtype=dtype)] if expansion != 1 else []
    layers += [spatial_op(op, E, stride=stride, rng=rng, dtype=dtype), BatchNorm2d(E, dtype=dtype), ReLU(),
               conv_bn(E, Co, 1, rng=rng, dtype=dtype, relu=False)]
    body = Sequential(*layers)
    if stride == 1 and Ci == Co:
        return Add(body, Identity())
    return body
