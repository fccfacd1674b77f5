"""Residual blocks, each with a swappable spatial op: the grid {basic, bottleneck, inverted} x op.

The spatial op is the one layer that looks at neighbouring pixels; everything else is 1x1 or BN/ReLU:
- "conv3": dense 3x3 convolution (ResNet)          weight (C, C, 3, 3)
- "dw3" / "dw7": static depthwise 3x3 / 7x7 conv    weight (C, K, K)
- "inv7": 7x7 involution (RedNet)                   kernel (N, G, 7, 7, Ho, Wo), predicted from the input
A block is built from the generic containers: out = relu(body(x) + shortcut(x)).

The norm after the spatial op ("op_norm") is BatchNorm, as in every paper of the grid, or GroupNorm
with one group ("group": each image normalised over its own channels and pixels, Wu & He 2018). An
involution multiplies its input by a kernel computed from that same input, so it roughly squares
each image's scale; BatchNorm only resets the scale of the whole batch, and in a chain of
involutions without shortcuts the images' scales drift apart block after block. GroupNorm resets
every image's own scale. The inverted involution net of the study needs it (see README).
"""

from tinyinvo.nn import (Add, BatchNorm2d, Conv2d, DepthwiseConv2d, GroupNorm2d, Identity,
                         Involution2d, ReLU, Sequential)

SPATIAL_OPS = ("conv3", "dw3", "dw7", "inv7")
OP_NORMS = ("batch", "group")


def spatial_op(op, channels, *, stride, rng, dtype, static_start=False):
    """The layer in the block's spatial slot: channels -> channels, downsampling by ``stride``.
    ``static_start``: an involution starts as a static filter (see ``Involution2d``)."""
    if op == "conv3":
        return Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False, rng=rng, dtype=dtype)
    if op in ("dw3", "dw7"):
        K = int(op[2])
        return DepthwiseConv2d(channels, K, stride=stride, padding=K // 2, bias=False, rng=rng,
                               dtype=dtype)
    if op == "inv7":
        return Involution2d(channels, 7, stride=stride, static_start=static_start, rng=rng, dtype=dtype)
    raise ValueError(f"op must be one of {SPATIAL_OPS}, got {op!r}")


def op_norm_relu(op_norm, channels, *, dtype):
    """The norm after the spatial op and the ReLU after it, as a list of layers:
    [BatchNorm2d(relu=True)] (one layer, one pass over memory), or [GroupNorm2d with one group
    (per image), ReLU()]."""
    if op_norm == "batch":
        return [BatchNorm2d(channels, dtype=dtype, relu=True)]
    if op_norm == "group":
        return [GroupNorm2d(channels, 1, dtype=dtype), ReLU()]
    raise ValueError(f"op_norm must be one of {OP_NORMS}, got {op_norm!r}")


def conv_bn(Ci, Co, K, *, stride=1, rng, dtype, relu=True, zero_gamma=False):
    """K x K conv (padding K // 2; no bias: the BatchNorm after it would cancel it) + BatchNorm
    (+ ReLU, in the same layer: BatchNorm2d(relu=True))."""
    bn = BatchNorm2d(Co, dtype=dtype, relu=relu)
    if zero_gamma:  # the block starts as the identity: out = relu(0 + shortcut(x))
        bn.params["gamma"][...] = 0
    return Sequential(Conv2d(Ci, Co, K, stride=stride, padding=K // 2, bias=False, rng=rng, dtype=dtype), bn)


def shortcut(Ci, Co, *, stride, rng, dtype):
    """Identity when shapes match, else a strided 1x1 conv + BN (as in ResNet and the RedNet code)."""
    if stride == 1 and Ci == Co:
        return Identity()
    return conv_bn(Ci, Co, 1, stride=stride, rng=rng, dtype=dtype, relu=False)


def residual(body, skip):
    """relu(body(x) + skip(x))."""
    return Sequential(Add(body, skip), ReLU())


def bottleneck_block(Ci, Co, *, op, stride, rng, dtype, expansion=4, zero_init_residual=True,
                     op_norm="batch", static_start=False):
    """1x1 reduce (Ci -> M = Co / expansion) -> spatial op (M -> M, stride) -> 1x1 expand (M -> Co)."""
    M = Co // expansion
    body = Sequential(
        conv_bn(Ci, M, 1, rng=rng, dtype=dtype),
        spatial_op(op, M, stride=stride, rng=rng, dtype=dtype, static_start=static_start),
        *op_norm_relu(op_norm, M, dtype=dtype),
        conv_bn(M, Co, 1, rng=rng, dtype=dtype, relu=False, zero_gamma=zero_init_residual),
    )
    return residual(body, shortcut(Ci, Co, stride=stride, rng=rng, dtype=dtype))


def basic_block(Ci, Co, *, op, stride, rng, dtype, zero_init_residual=True, op_norm="batch",
                static_start=False):
    """Two 3x3 convs (CIFAR ResNet-20/32/56). Only "conv3": without 1x1 convs a depthwise or
    involution basic block would never mix channels."""
    if op != "conv3":
        raise ValueError(f"the basic block supports op='conv3' only (it has no 1x1 convs to mix "
                         f"channels), got op={op!r}; use block='bottleneck' or 'inverted'")
    if op_norm != "batch" or static_start:
        raise ValueError(f"the basic block has no spatial op for op_norm={op_norm!r} or "
                         f"static_start={static_start!r}; they are for block='bottleneck' or 'inverted'")
    body = Sequential(
        conv_bn(Ci, Co, 3, stride=stride, rng=rng, dtype=dtype),
        conv_bn(Co, Co, 3, rng=rng, dtype=dtype, relu=False, zero_gamma=zero_init_residual),
    )
    return residual(body, shortcut(Ci, Co, stride=stride, rng=rng, dtype=dtype))


def inverted_block(Ci, Co, *, op, stride, rng, dtype, expansion=6, zero_init_residual=False,
                   op_norm="batch", static_start=False):
    """MobileNetV2 inverted bottleneck: 1x1 expand (Ci -> E = expansion * Ci) -> spatial op on the wide
    tensor -> 1x1 project (E -> Co, no ReLU). Residual only when stride 1 and Ci == Co.

    ``zero_init_residual``: a block with a residual starts as the identity (its last BatchNorm has
    gamma = 0), as the bottleneck blocks do (Goyal et al. 2017, arXiv 1706.02677); MobileNetV2 as
    published (and torchvision) does not, hence the default False."""
    E = expansion * Ci
    residual_path = stride == 1 and Ci == Co
    layers = [conv_bn(Ci, E, 1, rng=rng, dtype=dtype)] if expansion != 1 else []
    layers += [spatial_op(op, E, stride=stride, rng=rng, dtype=dtype, static_start=static_start),
               *op_norm_relu(op_norm, E, dtype=dtype),
               conv_bn(E, Co, 1, rng=rng, dtype=dtype, relu=False,
                       zero_gamma=zero_init_residual and residual_path)]
    body = Sequential(*layers)
    return Add(body, Identity()) if residual_path else body
