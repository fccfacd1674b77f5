"""Checks for exercise 07_mini_project: a baseline for RedNet-26 (width 16, 32x32 CIFAR) at matched MACs.

Graded: ``baseline_config`` (a dict of ``tinyinvo.models.build`` keywords) builds a CIFAR network
without any involution whose MACs per image are within 5% of rednet26's at width 16; and
``baseline_counts`` is (params, MACs) of that network as ``tinyinvo.count`` measures it.
The training run and the written argument of the notebook are read by the instructor: grading
collects the argument's cell (WRITTEN) into the feedback, "awaiting manual points" in the gradebook.
"""

from tinyinvo.count import analytic_cost, count
from tinyinvo.grading.compare import GradingFailure, expect_equal
from tinyinvo.grading.core import Task
from tinyinvo.models import build
from tinyinvo.nn import Involution2d

EXERCISE = "07_mini_project"
WRITTEN = {"written argument": "040a4a75"}  # the id of its markdown cell in exercises/07_mini_project.ipynb

INPUT_SHAPE = (3, 32, 32)  # one CIFAR image
NUM_CLASSES = 10
BUDGET_TOLERANCE = 0.05


def rednet26_macs():
    """MACs per image of rednet26 at width 16 on a 32x32 image, 10 classes (31.56 M)."""
    return analytic_cost(build("rednet26", width=16).config, INPUT_SHAPE[1]).macs


def build_baseline(baseline_config):
    """build(**baseline_config), or a GradingFailure saying why it cannot be built."""
    if not isinstance(baseline_config, dict):
        raise GradingFailure(f"baseline_config should be a dict of tinyinvo.models.build keyword "
                             f"arguments, e.g. dict(block='bottleneck', op='dw7', depth=26, width=16), "
                             f"got {type(baseline_config).__name__}")
    try:
        return build(**baseline_config)
    except Exception as error:  # any reason build refuses the config is the student's to fix
        raise GradingFailure(f"build(**baseline_config) with baseline_config = {baseline_config!r} "
                             f"raised {type(error).__name__}: {error}") from None


def check_baseline_config(baseline_config):
    model = build_baseline(baseline_config)
    if model.config["stem"] != "cifar" or model.config["num_classes"] != NUM_CLASSES:
        raise GradingFailure(f"the baseline is for 32x32 CIFAR: use stem='cifar' and num_classes=10 "
                             f"(the defaults), got stem={model.config['stem']!r}, "
                             f"num_classes={model.config['num_classes']!r}")
    involutions = [name for name, layer in model.named_layers() if isinstance(layer, Involution2d)]
    if involutions:
        raise GradingFailure(f"the baseline must not use involution, but layer {involutions[0]!r} "
                             f"is an Involution2d ({len(involutions)} in all): pick another op")
    target, macs = rednet26_macs(), count(model, INPUT_SHAPE, batch_size=0).total.macs
    if abs(macs - target) > BUDGET_TOLERANCE * target:
        raise GradingFailure(f"build(**{baseline_config!r}) has {macs / 1e6:.2f} M MACs per image, "
                             f"{macs / target - 1:+.1%} from rednet26's {target / 1e6:.2f} M at width "
                             f"16; it must be within {BUDGET_TOLERANCE:.0%} (tinyinvo.count.solve_width "
                             f"and solve_budget find widths and knobs that fit)")


def check_baseline_counts(baseline_config, baseline_counts):
    measured = count(build_baseline(baseline_config), INPUT_SHAPE, batch_size=0).total
    if not isinstance(baseline_counts, (tuple, list)) or len(baseline_counts) != 2:
        raise GradingFailure(f"baseline_counts should be a pair (params, macs), got {baseline_counts!r}")
    expect_equal(tuple(baseline_counts), (measured.params, measured.macs),
                 call=f"baseline_counts of build(**{baseline_config!r}) on a {INPUT_SHAPE} image",
                 what="(params, macs)")


TASKS = [
    Task("baseline_config", 4, ("baseline_config",), check_baseline_config),
    Task("baseline_counts", 2, ("baseline_config", "baseline_counts"), check_baseline_counts),
]
