"""Count a whole network on paper: from its config (block, op, depth, width, stem, num_classes) and
the input size alone, walking the architecture with the closed-form costs of ``formulas.py``.

This path never builds or looks at a layer object: it redoes the channel and resolution arithmetic
of ``tinyinvo.models`` (stem, stages, blocks, shortcuts, head) by itself and shares with it only the
tables of blocks per stage and MobileNetV2's channel rounding. ``measured.py`` counts the built
model instead; a test holds the two equal for every preset.

Every helper takes the input resolution (H, W) and returns (cost, (Ho, Wo)).
"""

from tinyinvo.count.formulas import (Cost, batchnorm_cost, conv2d_cost, depthwise_conv2d_cost,
                                     involution_cost, linear_cost, pooling_cost, relu_cost)
from tinyinvo.models.build import (BASIC_LAYOUTS, BOTTLENECK_LAYOUTS, DEFAULT_WIDTH, MBV2_SETTINGS,
                                   make_divisible)
from tinyinvo.ops.checks import output_size

# The paper's involution settings: groups of 16 channels share a kernel, the generator's hidden
# width is C / 4.
GROUP_CHANNELS = 16
REDUCTION_RATIO = 4


def analytic_cost(config, input_size):
    """Params and MACs per image of the network described by ``config``.

    Inputs:
    - config: dict with block ("basic", "bottleneck", "inverted"), op ("conv3", "dw3", "dw7",
      "inv7"), depth, width, stem ("cifar", "imagenet"), num_classes, as ``model.config``
    - input_size: H, or (H, W), of the RGB input image
    Returns a Cost (params, macs, aggregation_macs). Raises ValueError for a config that cannot be
    built (e.g. an involution whose channels are not a multiple of 16).
    """
    H, W = (input_size, input_size) if isinstance(input_size, int) else input_size
    block, op, stem = config["block"], config["op"], config["stem"]
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    width = config.get("width") or DEFAULT_WIDTH[block]
    if block == "inverted":
        cost, C, (H, W) = inverted_body_cost(op, width, stem, H, W)
    else:
        cost, C, (H, W) = residual_body_cost(block, op, config["depth"], width, stem, H, W)
    return cost + pooling_cost() + linear_cost(C, config["num_classes"])  # global pool, classifier


def conv_bn_cost(Ci, Co, K, H, W, stride=1):
    """K x K conv (padding K // 2, no bias) + BN (+ ReLU)."""
    Ho, Wo = output_size(H, K, stride, K // 2), output_size(W, K, stride, K // 2)
    return conv2d_cost(Ci, Co, K, Ho, Wo) + batchnorm_cost(Co) + relu_cost(), (Ho, Wo)


def involution_layer_cost(C, K, H, W, stride):
    """Involution with the paper's groups and reduction ("same" padding, Ho = H / stride)."""
    if C % GROUP_CHANNELS:
        raise ValueError(f"an involution on C={C} channels needs C divisible by {GROUP_CHANNELS}")
    Ho, Wo = output_size(H, K, stride, K // 2), output_size(W, K, stride, K // 2)
    return involution_cost(C, K, C // GROUP_CHANNELS, REDUCTION_RATIO, Ho, Wo), (Ho, Wo)


def spatial_op_cost(op, C, H, W, stride):
    """The block's spatial op on C channels, followed by its BN and ReLU."""
    if op == "inv7":
        cost, (Ho, Wo) = involution_layer_cost(C, 7, H, W, stride)
    else:
        K = {"conv3": 3, "dw3": 3, "dw7": 7}[op]
        Ho, Wo = output_size(H, K, stride, K // 2), output_size(W, K, stride, K // 2)
        cost = conv2d_cost(C, C, K, Ho, Wo) if op == "conv3" else depthwise_conv2d_cost(C, K, Ho, Wo)
    return cost + batchnorm_cost(C) + relu_cost(), (Ho, Wo)


def stem_cost(stem, C, op, H, W):
    """cifar: 3x3 conv. imagenet: 7x7 s2 conv + max-pool, or for RedNet 3x3 s2 conv (C/2) ->
    3x3 involution + BN + ReLU -> 3x3 conv (C) -> max-pool (3x3, stride 2, padding 1)."""
    if stem == "cifar":
        return conv_bn_cost(3, C, 3, H, W)
    if op == "inv7":
        cost, (H, W) = conv_bn_cost(3, C // 2, 3, H, W, stride=2)
        inv, (H, W) = involution_layer_cost(C // 2, 3, H, W, stride=1)
        conv, (H, W) = conv_bn_cost(C // 2, C, 3, H, W)
        cost += inv + batchnorm_cost(C // 2) + relu_cost() + conv
    else:
        cost, (H, W) = conv_bn_cost(3, C, 7, H, W, stride=2)
    return cost + pooling_cost(), (output_size(H, 3, 2, 1), output_size(W, 3, 2, 1))


def shortcut_cost(Ci, Co, H, W, stride):
    """Identity (free) when the shape is kept, else a strided 1x1 conv + BN."""
    if stride == 1 and Ci == Co:
        return Cost()
    return conv_bn_cost(Ci, Co, 1, H, W, stride)[0]


def bottleneck_cost(Ci, Co, op, H, W, stride):
    """1x1 conv Ci -> M = Co/4, spatial op on M (stride), 1x1 conv M -> Co, plus the shortcut."""
    M = Co // 4
    reduce, _ = conv_bn_cost(Ci, M, 1, H, W)
    spatial, (Ho, Wo) = spatial_op_cost(op, M, H, W, stride)
    expand, _ = conv_bn_cost(M, Co, 1, Ho, Wo)
    return reduce + spatial + expand + shortcut_cost(Ci, Co, H, W, stride), (Ho, Wo)


def basic_cost(Ci, Co, op, H, W, stride):
    """Two 3x3 convs Ci -> Co -> Co (the first one strided), plus the shortcut."""
    if op != "conv3":
        raise ValueError(f"the basic block supports op='conv3' only, got {op!r}")
    first, (Ho, Wo) = conv_bn_cost(Ci, Co, 3, H, W, stride)
    second, _ = conv_bn_cost(Co, Co, 3, Ho, Wo)
    return first + second + shortcut_cost(Ci, Co, H, W, stride), (Ho, Wo)


def inverted_cost(Ci, Co, op, H, W, stride, expansion):
    """1x1 expand Ci -> E = expansion*Ci (skipped when expansion is 1), spatial op on E (stride),
    1x1 project E -> Co. The residual add is free."""
    E = expansion * Ci
    cost = conv_bn_cost(Ci, E, 1, H, W)[0] if expansion != 1 else Cost()
    spatial, (Ho, Wo) = spatial_op_cost(op, E, H, W, stride)
    return cost + spatial + conv_bn_cost(E, Co, 1, Ho, Wo)[0], (Ho, Wo)


def residual_body_cost(block, op, depth, width, stem, H, W):
    """Stem + stages of basic or bottleneck blocks; stage s has width*2^s*expansion output channels
    and its first block has stride 2 (except stage 0). Returns (cost, channels out, (H, W) out)."""
    layouts, expansion, block_cost = ((BOTTLENECK_LAYOUTS, 4, bottleneck_cost) if block == "bottleneck"
                                      else (BASIC_LAYOUTS, 1, basic_cost))
    if depth not in layouts:
        raise ValueError(f"depth for block={block!r} must be one of {sorted(layouts)}, got {depth!r}")
    cost, (H, W) = stem_cost(stem, width, op, H, W)
    Ci = width
    for stage, num_blocks in enumerate(layouts[depth]):
        Co = width * 2**stage * expansion
        for i in range(num_blocks):
            stride = 2 if (i == 0 and stage > 0) else 1
            block_total, (H, W) = block_cost(Ci, Co, op, H, W, stride)
            cost += block_total
            Ci = Co
    return cost, Ci, (H, W)


def inverted_body_cost(op, width, stem, H, W):
    """MobileNetV2 scaled by width / 32: 3x3 stem conv (stride 2 for imagenet), the inverted blocks
    of MBV2_SETTINGS (the second stage keeps stride 1 with the cifar stem), 1x1 conv to the
    feature width. Returns (cost, channels out, (H, W) out)."""
    scale = width / 32
    C = make_divisible(32 * scale)
    cost, (H, W) = conv_bn_cost(3, C, 3, H, W, stride=2 if stem == "imagenet" else 1)
    for stage, (expansion, channels, num_blocks, stride) in enumerate(MBV2_SETTINGS):
        Co = make_divisible(channels * scale)
        if stem == "cifar" and stage == 1:
            stride = 1
        for i in range(num_blocks):
            block_total, (H, W) = inverted_cost(C, Co, op, H, W, stride if i == 0 else 1, expansion)
            cost += block_total
            C = Co
    features = make_divisible(1280 * max(1.0, scale))
    return cost + conv_bn_cost(C, features, 1, H, W)[0], features, (H, W)


def solve_width(block, op, depth, target_macs, *, stem="cifar", input_size=32, num_classes=10,
                max_width=256):
    """The base width (1..max_width) whose network has MACs closest to ``target_macs``.

    Used to build fair comparisons at a matched compute budget, e.g. the dw7 bottleneck net with
    the MACs of rednet26 at width 16. Widths the architecture cannot take (an involution on
    channels that are not a multiple of 16) are skipped. Returns the width, an int.
    """
    best_width, best_gap = None, None
    for width in range(1, max_width + 1):
        config = dict(block=block, op=op, depth=depth, width=width, stem=stem,
                      num_classes=num_classes)
        try:
            macs = analytic_cost(config, input_size).macs
        except ValueError:
            continue
        if best_gap is None or abs(macs - target_macs) < best_gap:
            best_width, best_gap = width, abs(macs - target_macs)
    if best_width is None:
        raise ValueError(f"no width in 1..{max_width} can build block={block!r}, op={op!r}, "
                         f"depth={depth!r}")
    return best_width
