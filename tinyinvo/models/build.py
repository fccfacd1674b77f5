"""Assemble whole networks from the grid: block type x spatial op x depth x width, plus named presets.

    build("rednet26", width=16)                          # a preset
    build(block="bottleneck", op="dw7", depth=26, width=16)  # the same grid by keywords

Width: the base width, i.e. the channels of the first stage's spatial op. Defaults are the papers'
(64 for bottleneck nets, 16 for CIFAR basic nets, 32 for MobileNetV2); CIFAR-scale runs use less.

Two finer knobs, for matching a MAC budget closely (width alone moves in coarse steps):
- ``expansion``: bottleneck nets, block output channels / spatial-op channels (ResNet's 4);
  inverted nets, the ratio of the 1x1 expand in every stage but the first (MobileNetV2's 6).
- ``divisor`` (inverted nets only): the multiple channels are rounded to (MobileNetV2's 8).

Three training-stability switches, which change no count (see ``tinyinvo.models.blocks``):
- ``op_norm``: the norm after the spatial op, "batch" (the papers') or "group" (per image).
- ``zero_init_residual``: residual blocks start as the identity (last BatchNorm gamma = 0); None
  is each block's published default: True for the ResNet blocks, False for MobileNetV2's.
- ``static_start`` (op "inv7" only): every involution starts as a static filter, its kernel
  generator's last conv at zero weight (see ``tinyinvo.nn.Involution2d``); False is the official code's.
"""

import numpy as np

from tinyinvo.models.blocks import (OP_NORMS, SPATIAL_OPS, basic_block, bottleneck_block, conv_bn,
                                    inverted_block)
from tinyinvo.models.stems import make_stem
from tinyinvo.nn import GlobalAvgPool, Linear, Sequential

# blocks per stage, indexed by depth
BOTTLENECK_LAYOUTS = {26: (1, 2, 4, 1), 38: (2, 3, 5, 2), 50: (3, 4, 6, 3),
                      101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
BASIC_LAYOUTS = {20: (3, 3, 3), 32: (5, 5, 5), 56: (9, 9, 9)}  # depth = 6 * blocks + 2
# MobileNetV2 (expansion t, output channels c, blocks n, stride s) at width 32; the second stage keeps
# stride 1 with the CIFAR stem so that 32x32 inputs end at 4x4, as with the ResNets.
MBV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                 (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
DEFAULT_WIDTH = {"bottleneck": 64, "basic": 16, "inverted": 32}
# the knobs of each block and their defaults (the papers' values); the basic block has none
KNOB_DEFAULTS = {"bottleneck": dict(expansion=4), "inverted": dict(expansion=6, divisor=8),
                 "basic": {}}
KNOBS = ("expansion", "divisor")
BLOCKS = tuple(DEFAULT_WIDTH)

PRESETS = {
    "resnet20": dict(block="basic", op="conv3", depth=20),
    "resnet32": dict(block="basic", op="conv3", depth=32),
    "resnet56": dict(block="basic", op="conv3", depth=56),
    **{f"resnet{d}": dict(block="bottleneck", op="conv3", depth=d) for d in (26, 38, 50, 101, 152)},
    **{f"rednet{d}": dict(block="bottleneck", op="inv7", depth=d) for d in (26, 38, 50, 101, 152)},
    **{f"dwnet{d}": dict(block="bottleneck", op="dw7", depth=d) for d in (26, 38, 50, 101, 152)},
    "mbv2": dict(block="inverted", op="dw3", depth=None),
}


def make_divisible(value, divisor=8):
    """Round channels to a multiple of ``divisor`` (never down by more than 10%), as MobileNetV2 does."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def inverted_settings(expansion=6):
    """MBV2_SETTINGS with MobileNetV2's expansion ratio 6 replaced by ``expansion`` (the first
    stage, t = 1, has no expand conv and keeps 1). Rows: (expansion, channels, blocks, stride)."""
    return [(expansion if t == 6 else t, c, n, s) for t, c, n, s in MBV2_SETTINGS]


def build(name=None, *, num_classes=10, width=None, stem="cifar", block=None, op=None, depth=None,
          divisor=None, expansion=None, op_norm="batch", zero_init_residual=None, static_start=False,
          seed=0, rng=None, dtype=np.float32):
    """Build a classifier: a preset ``name`` (see PRESETS) and/or the grid keywords.

    Keywords given next to a preset override it (e.g. ``build("mbv2", op="inv7")``).
    ``expansion`` (bottleneck, inverted) and ``divisor`` (inverted) default to the papers' values
    (None, see KNOB_DEFAULTS); a block without the knob refuses it. ``op_norm``,
    ``zero_init_residual`` and ``static_start``: see the module docstring.
    Returns a Layer mapping (N, 3, H, W) images to (N, num_classes) logits; ``model.config`` records
    the arguments so a checkpoint can rebuild it.
    """
    spec = dict(PRESETS[_check_preset(name)]) if name is not None else {}
    spec.update({k: v for k, v in dict(block=block, op=op, depth=depth).items() if v is not None})
    block, op, depth = spec.get("block"), spec.get("op"), spec.get("depth")
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {BLOCKS}, got {block!r} (or give a preset name: "
                         f"{sorted(PRESETS)})")
    if op not in SPATIAL_OPS:
        raise ValueError(f"op must be one of {SPATIAL_OPS}, got {op!r}")
    width = DEFAULT_WIDTH[block] if width is None else int(width)
    if width < 1:
        raise ValueError(f"width must be a positive int, got {width}")
    knobs = block_knobs(block, expansion=expansion, divisor=divisor)
    if op_norm not in OP_NORMS:
        raise ValueError(f"op_norm must be one of {OP_NORMS}, got {op_norm!r}")
    if zero_init_residual is None:
        zero_init_residual = block != "inverted"
    if not isinstance(static_start, (bool, np.bool_)):
        raise ValueError(f"static_start must be True or False, got {static_start!r}")
    if static_start and op != "inv7":
        raise ValueError(f"static_start=True starts each involution as a static filter: it is for "
                         f"op='inv7', got op={op!r}")
    rng = np.random.default_rng(seed) if rng is None else rng
    args = dict(rng=rng, dtype=dtype)
    block_args = dict(op_norm=op_norm, zero_init_residual=bool(zero_init_residual),
                      static_start=bool(static_start), **args)

    if block == "inverted":
        features, C = _inverted_body(op, width, stem, args, block_args, **knobs)
    else:
        features, C = _residual_body(block, op, depth, width, stem, args, block_args,
                                     knobs["expansion"])
    model = Sequential(*features, GlobalAvgPool(), Linear(C, num_classes, **args))
    model.config = dict(name=name, block=block, op=op, depth=depth, width=width,
                        num_classes=num_classes, stem=stem, **knobs, op_norm=op_norm,
                        zero_init_residual=bool(zero_init_residual), static_start=bool(static_start))
    return model


def block_knobs(block, **given):
    """The knobs (expansion, divisor) of ``block``, defaults filled in for the ones given as None;
    None for a knob the block does not have. Raises ValueError for a knob the block refuses."""
    defaults = KNOB_DEFAULTS[block]
    refused = sorted(key for key, value in given.items() if value is not None and key not in defaults)
    if refused:
        raise ValueError(f"block={block!r} has no {' or '.join(refused)} (knobs: "
                         f"{sorted(defaults) or 'none'})")
    knobs = dict.fromkeys(KNOBS)
    for key, default in defaults.items():
        value = default if given.get(key) is None else given[key]
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
        knobs[key] = int(value)
    return knobs


def _check_preset(name):
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; presets are {sorted(PRESETS)}, or pass "
                         f"block=, op=, depth= directly")
    return name


def _residual_body(block, op, depth, width, stem, args, block_args, expansion):
    """Stem + stages of basic or bottleneck blocks; each stage doubles the width and halves H, W.
    A bottleneck block's output has ``expansion`` times its spatial op's channels."""
    layouts = BOTTLENECK_LAYOUTS if block == "bottleneck" else BASIC_LAYOUTS
    if depth not in layouts:
        raise ValueError(f"depth for block={block!r} must be one of {sorted(layouts)}, got {depth!r}")
    if block == "bottleneck":
        make_block, extra = bottleneck_block, dict(expansion=expansion)
    else:
        make_block, expansion, extra = basic_block, 1, {}
    layers = [make_stem(stem, width, involution=(op == "inv7"), **args)]
    Ci = width
    for stage, num_blocks in enumerate(layouts[depth]):
        Co = width * 2 ** stage * expansion
        for i in range(num_blocks):
            stride = 2 if (i == 0 and stage > 0) else 1
            layers.append(make_block(Ci, Co, op=op, stride=stride, **extra, **block_args))
            Ci = Co
    return layers, Ci


def _inverted_body(op, width, stem, args, block_args, divisor, expansion):
    """MobileNetV2: stem, 17 inverted bottlenecks, 1x1 conv to the feature width (1280 at width <= 32).
    Channels are rounded to multiples of ``divisor``; ``expansion`` replaces the ratio 6."""
    scale = width / 32
    C = make_divisible(32 * scale, divisor)
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
    layers = [conv_bn(3, C, 3, stride=2 if stem == "imagenet" else 1, **args)]  # MobileNetV2's stem
    for stage, (t, c, n, s) in enumerate(inverted_settings(expansion)):
        Co = make_divisible(c * scale, divisor)
        if stem == "cifar" and stage == 1:
            s = 1
        for i in range(n):
            layers.append(inverted_block(C, Co, op=op, stride=s if i == 0 else 1, expansion=t,
                                         **block_args))
            C = Co
    features = make_divisible(1280 * max(1.0, scale), divisor)
    layers.append(conv_bn(C, features, 1, **args))
    return layers, features
