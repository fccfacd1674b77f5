"""Networks built from one small grid: block {basic, bottleneck, inverted} x spatial op
{conv3, dw3, dw7, inv7} x depth x width. ``build("rednet26", width=16)`` or
``build(block="bottleneck", op="dw7", depth=26, width=16)``."""

from tinyinvo.models.blocks import SPATIAL_OPS
from tinyinvo.models.build import BLOCKS, PRESETS, build

__all__ = ["build", "PRESETS", "BLOCKS", "SPATIAL_OPS"]
