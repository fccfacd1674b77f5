"""Count a whole network on paper: from its config (block, op, depth, width, stem, num_classes) and
the input size alone, walking the architecture with the closed-form costs of ``formulas.py``.

This path never builds or looks at a layer object: it redoes the channel and resolution arithmetic
of ``tinyinvo.models`` (stem, stages, blocks, shortcuts, head) by itself and shares with it only the
tables of blocks per stage and MobileNetV2's channel rounding and stage settings. ``measured.py`` counts the built
model instead; a test holds the two equal for every preset.

Every helper takes the input resolution (H, W) and returns (cost, (Ho, Wo)).
"""

from tinyinvo.count.formulas import (Cost, batchnorm_cost, conv2d_cost, depthwise_conv2d_cost,
                                     involution_cost, linear_cost, pooling_cost, relu_cost)
from tinyinvo.models.build import (BASIC_LAYOUTS, BOTTLENECK_LAYOUTS, DEFAULT_WIDTH, KNOB_DEFAULTS,
                                   inverted_settings, make_divisible)
from tinyinvo.ops.checks import output_size

# The paper's involution settings: groups of 16 channels share a kernel, the generator's hidden
# width is C / 4.
GROUP_CHANNELS = 16
REDUCTION_RATIO = 4


def analytic_cost(config, input_size):
    """Params and MACs per image of the network described by ``config``.

    Inputs:
    - config: dict with block ("basic", "bottleneck", "inverted"), op ("conv3", "dw3", "dw7",
      "inv7"), depth, width, stem ("cifar", "imagenet"), num_classes, as ``model.config``, and
      the block's knobs expansion, divisor (missing or None: the defaults, KNOB_DEFAULTS)
    - input_size: H, or (H, W), of the RGB input image
    Returns a Cost (params, macs, aggregation_macs). Raises ValueError for a config that cannot be
    built (e.g. an involution whose channels are not a multiple of 16).
    """
    H, W = (input_size, input_size) if isinstance(input_size, int) else input_size
    block, op, stem = config["block"], config["op"], config["stem"]
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    width = config.get("width") or DEFAULT_WIDTH[block]
    knobs = {key: config.get(key) or default for key, default in KNOB_DEFAULTS[block].items()}
    if block == "inverted":
        cost, C, (H, W) = inverted_body_cost(op, width, stem, H, W, **knobs)
    else:
        cost, C, (H, W) = residual_body_cost(block, op, config["depth"], width, stem, H, W, **knobs)
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


def bottleneck_cost(Ci, Co, op, H, W, stride, expansion=4):
    """1x1 conv Ci -> M = Co/expansion, spatial op on M (stride), 1x1 conv M -> Co, plus the shortcut."""
    M = Co // expansion
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


def residual_body_cost(block, op, depth, width, stem, H, W, expansion=4):
    """Stem + stages of basic or bottleneck blocks; stage s has width*2^s*expansion output channels
    (expansion 1 for basic blocks) and its first block has stride 2 (except stage 0).
    Returns (cost, channels out, (H, W) out)."""
    if block == "bottleneck":
        layouts, extra = BOTTLENECK_LAYOUTS, dict(expansion=expansion)
        block_cost = bottleneck_cost
    else:
        layouts, expansion, extra, block_cost = BASIC_LAYOUTS, 1, {}, basic_cost
    if depth not in layouts:
        raise ValueError(f"depth for block={block!r} must be one of {sorted(layouts)}, got {depth!r}")
    cost, (H, W) = stem_cost(stem, width, op, H, W)
    Ci = width
    for stage, num_blocks in enumerate(layouts[depth]):
        Co = width * 2**stage * expansion
        for i in range(num_blocks):
            stride = 2 if (i == 0 and stage > 0) else 1
            block_total, (H, W) = block_cost(Ci, Co, op, H, W, stride, **extra)
            cost += block_total
            Ci = Co
    return cost, Ci, (H, W)


def inverted_body_cost(op, width, stem, H, W, divisor=8, expansion=6):
    """MobileNetV2 scaled by width / 32: 3x3 stem conv (stride 2 for imagenet), the inverted blocks
    of MBV2_SETTINGS with ``expansion`` for the ratio 6 (the second stage keeps stride 1 with the
    cifar stem), 1x1 conv to the feature width; channels rounded to multiples of ``divisor``.
    Returns (cost, channels out, (H, W) out)."""
    scale = width / 32
    C = make_divisible(32 * scale, divisor)
    cost, (H, W) = conv_bn_cost(3, C, 3, H, W, stride=2 if stem == "imagenet" else 1)
    for stage, (ratio, channels, num_blocks, stride) in enumerate(inverted_settings(expansion)):
        Co = make_divisible(channels * scale, divisor)
        if stem == "cifar" and stage == 1:
            stride = 1
        for i in range(num_blocks):
            block_total, (H, W) = inverted_cost(C, Co, op, H, W, stride if i == 0 else 1, ratio)
            cost += block_total
            C = Co
    features = make_divisible(1280 * max(1.0, scale), divisor)
    return cost + conv_bn_cost(C, features, 1, H, W)[0], features, (H, W)


def solve_width(block, op, depth, target_macs, *, stem="cifar", input_size=32, num_classes=10,
                max_width=256, expansion=None, divisor=None):
    """The base width (1..max_width) whose network has MACs closest to ``target_macs``.

    Used to build fair comparisons at a matched compute budget, e.g. the dw7 bottleneck net with
    the MACs of rednet26 at width 16. Widths the architecture cannot take (an involution on
    channels that are not a multiple of 16) are skipped. ``expansion`` and ``divisor`` fix the
    block's knobs (None: the defaults); ``solve_budget`` searches them too. Returns the width, an int.
    """
    knobs = dict(expansion=expansion, divisor=divisor)
    found = closest_width(block, op, depth, target_macs, knobs, stem=stem, input_size=input_size,
                          num_classes=num_classes, max_width=max_width)
    if found is None:
        raise ValueError(f"no width in 1..{max_width} can build block={block!r}, op={op!r}, "
                         f"depth={depth!r}")
    return found[0]


def closest_width(block, op, depth, target_macs, knobs, *, stem, input_size, num_classes, max_width):
    """(width, Cost) of the buildable width in 1..max_width with MACs closest to ``target_macs``, for
    the given knobs (a dict of expansion, divisor); None when no width can be built."""
    best = None
    for width in range(1, max_width + 1):
        config = dict(block=block, op=op, depth=depth, width=width, stem=stem,
                      num_classes=num_classes, **knobs)
        try:
            cost = analytic_cost(config, input_size)
        except ValueError:
            continue
        if best is None or abs(cost.macs - target_macs) < abs(best[1].macs - target_macs):
            best = (width, cost)
        if cost.macs >= target_macs:  # channels never shrink as the width grows: nor do the MACs
            break
    return best


# The knob values solve_budget tries, the papers' own first, then the nearest ones.
KNOB_SEARCH = {"bottleneck": dict(expansion=(4, 5, 3, 6, 2)),
               "inverted": dict(expansion=(6, 5, 4, 3, 2), divisor=(8, 4, 2, 16)),
               "basic": {}}


def knob_settings(block):
    """Every combination of KNOB_SEARCH[block] in search order (expansion outer, divisor inner), as
    dicts with both keys (None for a knob the block does not have)."""
    choices = KNOB_SEARCH[block]
    return [dict(expansion=expansion, divisor=divisor)
            for expansion in choices.get("expansion", (None,))
            for divisor in choices.get("divisor", (None,))]


def solve_budget(block, op, depth, target_macs, *, tolerance=0.05, stem="cifar", input_size=32,
                 num_classes=10, max_width=256):
    """The width and knobs (expansion, divisor) that meet a MAC budget within ``tolerance``.

    Width alone moves the MACs of some nets in big steps (an involution needs multiples of 16
    channels; MobileNetV2 rounds channels to multiples of 8). So the knob settings of
    ``knob_settings(block)`` are tried in order, the papers' values first, and the first one
    whose closest width lands within ``tolerance`` (a fraction: 0.05 is 5%) of ``target_macs`` wins.

    Returns a dict: width, expansion, divisor (the build keywords; None for a knob the block does
    not have), params, macs. Raises ValueError, naming the closest miss, when no setting meets it.
    """
    closest = None
    for knobs in knob_settings(block):
        found = closest_width(block, op, depth, target_macs, knobs, stem=stem,
                              input_size=input_size, num_classes=num_classes, max_width=max_width)
        if found is None:
            continue
        width, cost = found
        result = dict(width=width, **knobs, params=cost.params, macs=cost.macs)
        if abs(cost.macs - target_macs) <= tolerance * target_macs:
            return result
        if closest is None or abs(cost.macs - target_macs) < abs(closest["macs"] - target_macs):
            closest = result
    if closest is None:
        raise ValueError(f"no width in 1..{max_width} can build block={block!r}, op={op!r}, "
                         f"depth={depth!r}")
    raise ValueError(
        f"block={block!r}, op={op!r}, depth={depth!r} cannot meet {target_macs / 1e6:.2f}M MACs within "
        f"{tolerance:.0%}: the closest is width {closest['width']}, expansion {closest['expansion']}, "
        f"divisor {closest['divisor']} with {closest['macs'] / 1e6:.2f}M MACs "
        f"({closest['macs'] / target_macs - 1:+.1%})")
