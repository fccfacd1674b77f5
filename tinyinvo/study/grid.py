"""Which models the study trains, and the width (and knobs) that puts each on the MAC budget.

Every model is one cell of the grid block x spatial op (see ``tinyinvo.models``), named
"block-op": "bottleneck-conv3" is ResNet-26, "bottleneck-inv7" RedNet-26, "bottleneck-dw7" its
static depthwise twin, "inverted-dw3" MobileNetV2.
"""

from dataclasses import dataclass

from tinyinvo.count.analytic import solve_budget

# name: build keywords besides width and the budget knobs. Every residual block of the study starts
# as the identity (zero-init of its last BatchNorm gamma, Goyal et al. 2017), the inverted ones too,
# where MobileNetV2 as published does not. The inverted involution net is this project's own design
# (the official code puts involution only in RedNet's bottleneck slot, its stem and detection
# necks); it normalises each involution's output per image (GroupNorm, one group), without which it
# never trains, and starts each involution as a static filter (static_start), without which it
# learns slowly: see tinyinvo.models.blocks, tinyinvo.nn.involution and the README's study section.
STUDY_MODELS = {
    "bottleneck-conv3": dict(block="bottleneck", op="conv3"),   # ResNet
    "bottleneck-inv7": dict(block="bottleneck", op="inv7"),     # RedNet
    "bottleneck-dw7": dict(block="bottleneck", op="dw7"),
    "bottleneck-dw3": dict(block="bottleneck", op="dw3"),
    "inverted-dw3": dict(block="inverted", op="dw3", zero_init_residual=True),   # MobileNetV2
    "inverted-dw7": dict(block="inverted", op="dw7", zero_init_residual=True),
    "inverted-inv7": dict(block="inverted", op="inv7", zero_init_residual=True, op_norm="group",
                          static_start=True),
}
UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class ModelSpec:
    """A model of the study at its solved size: build keywords plus its params and MACs (32x32)."""

    name: str
    block: str
    op: str
    depth: int | None
    width: int
    expansion: int | None
    divisor: int | None
    params: int
    macs: int
    op_norm: str = "batch"
    zero_init_residual: bool = True
    static_start: bool = False

    def build_kwargs(self):
        """The keywords of ``tinyinvo.models.build`` for this model (without num_classes, rng).
        ``static_start`` only when True: a run's id is a hash of these, and the runs made before
        the switch existed (all without it) keep their ids."""
        return dict(block=self.block, op=self.op, depth=self.depth, width=self.width,
                    expansion=self.expansion, divisor=self.divisor, op_norm=self.op_norm,
                    zero_init_residual=self.zero_init_residual,
                    **({"static_start": True} if self.static_start else {}))


def parse_macs(text):
    """ "40M" -> 40_000_000 (units k, M, G, any case; plain numbers and 4e7 work too)."""
    text = str(text).strip()
    unit = text[-1].lower() if text and text[-1].lower() in UNITS else ""
    try:
        value = float(text[:-1] if unit else text) * UNITS[unit]
    except ValueError:
        raise ValueError(f"a MAC budget looks like 40M, 1.5G or 40000000, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"the MAC budget must be positive, got {text!r}")
    return int(round(value))


def solve_grid(names, target_macs, *, depth=26, tolerance=0.05, num_classes=10, input_size=32):
    """Solve the width (and knobs) of each named model for a MAC budget.

    Inputs:
    - names: model names, keys of STUDY_MODELS
    - target_macs: the budget, MACs per image at input_size x input_size
    - depth: depth of the bottleneck nets (26, 38, 50, ...; the inverted nets have one depth)
    - tolerance: largest allowed |MACs / target - 1|
    Returns a list of ModelSpec in the order of ``names``. Raises ValueError naming every model that
    cannot meet the budget (and its closest miss), or an unknown name.
    """
    unknown = [name for name in names if name not in STUDY_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; the study's models are {list(STUDY_MODELS)}")
    specs, misses = [], []
    for name in names:
        model = dict(STUDY_MODELS[name])
        block, op = model.pop("block"), model.pop("op")
        model_depth = depth if block == "bottleneck" else None
        try:
            solved = solve_budget(block, op, model_depth, target_macs, tolerance=tolerance,
                                  num_classes=num_classes, input_size=input_size)
        except ValueError as error:
            misses.append(f"  {name}: {error}")
            continue
        specs.append(ModelSpec(name=name, block=block, op=op, depth=model_depth, **solved,
                               **{"zero_init_residual": block != "inverted", **model}))
    if misses:
        raise ValueError(f"{len(misses)} model(s) cannot meet the budget of "
                         f"{target_macs / 1e6:.2f}M MACs within {tolerance:.0%}:\n" + "\n".join(misses))
    return specs
