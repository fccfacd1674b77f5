"""The first layers of a network, before the residual stages.

- "cifar": 3x3 conv, stride 1, no max-pool (32x32 inputs keep their resolution).
- "imagenet", ResNet: 7x7 stride-2 conv + 3x3 stride-2 max-pool (224 -> 56).
- "imagenet", RedNet (the paper's stem): 3x3 s2 conv (C/2) -> 3x3 involution -> BN -> ReLU
  -> 3x3 conv (C) -> 3x3 s2 max-pool. (BN -> ReLU is one layer: BatchNorm2d(relu=True).)
"""

from tinyinvo.models.blocks import conv_bn
from tinyinvo.nn import BatchNorm2d, Involution2d, MaxPool2d, Sequential

STEMS = ("cifar", "imagenet")


def make_stem(stem, C, *, involution, rng, dtype):
    """Stem from 3 input channels to C channels. ``involution=True`` picks the RedNet ImageNet stem."""
    if stem == "cifar":
        return conv_bn(3, C, 3, rng=rng, dtype=dtype)
    if stem != "imagenet":
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    pool = MaxPool2d(3, stride=2, padding=1)
    if not involution:
        return Sequential(conv_bn(3, C, 7, stride=2, rng=rng, dtype=dtype), pool)
    half = C // 2
    return Sequential(
        conv_bn(3, half, 3, stride=2, rng=rng, dtype=dtype),
        Involution2d(half, 3, stride=1, rng=rng, dtype=dtype), BatchNorm2d(half, dtype=dtype, relu=True),
        conv_bn(half, C, 3, rng=rng, dtype=dtype),
        pool,
    )
