"""Which models the study trains, and the width (and knobs) that puts each on the MAC budget.

Every model is one cell of the grid block x spatial op (see ``tinyinvo.models``), named
"block-op": "bottleneck-conv3" is ResNet-26, "bottleneck-inv7" RedNet-26, "bottleneck-dw7" its
static depthwise twin, "inverted-dw3" MobileNetV2.
"""

from dataclasses import dataclass

from tinyinvo.count.analytic import solve_budget

STUDY_MODELS = {  # name: (block, op)
    "bottleneck-conv3": ("bottleneck", "conv3"),   # ResNet
    "bottleneck-inv7": ("bottleneck", "inv7"),     # RedNet
    "bottleneck-dw7": ("bottleneck", "dw7"),
    "bottleneck-dw3": ("bottleneck", "dw3"),
    "inverted-dw3": ("inverted", "dw3"),           # MobileNetV2
    "inverted-dw7": ("inverted", "dw7"),
    "inverted-inv7": ("inverted", "inv7"),
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

    def build_kwargs(self):
        """The keywords of ``tinyinvo.models.build`` for this model (without num_classes, rng)."""
        return dict(block=self.block, op=self.op, depth=self.depth, width=self.width,
                    expansion=self.expansion, divisor=self.divisor)


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
        block, op = STUDY_MODELS[name]
        model_depth = depth if block == "bottleneck" else None
        try:
            solved = solve_budget(block, op, model_depth, target_macs, tolerance=tolerance,
                                  num_classes=num_classes, input_size=input_size)
        except ValueError as error:
            misses.append(f"  {name}: {error}")
            continue
        specs.append(ModelSpec(name=name, block=block, op=op, depth=model_depth, **solved))
    if misses:
        raise ValueError(f"{len(misses)} model(s) cannot meet the budget of "
                         f"{target_macs / 1e6:.2f}M MACs within {tolerance:.0%}:\n" + "\n".join(misses))
    return specs
