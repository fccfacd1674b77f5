"""Checks for exercise 05_counting: closed-form params and multiply-adds (MACs) per image.

The reference is ``tinyinvo/count/formulas.py`` and its convention: one MAC is one product of an
activation with a weight; convolutions have no bias (a BatchNorm follows each of them); the
involution's kernel generator is a 1x1 reduce conv C -> C // r (no bias), a BatchNorm (2 params
per channel), a ReLU and a 1x1 span conv C // r -> G*K*K with a bias; BN, ReLU and bias adds cost
no MACs. Common slips (a bias too many, the aggregation or the BatchNorm forgotten) get a hint.
"""

from functools import partial

from tinyinvo.count.formulas import (conv2d_cost, depthwise_conv2d_cost, involution_aggregation_cost,
                                     involution_cost)
from tinyinvo.grading.compare import GradingFailure, describe_call, expect_equal
from tinyinvo.grading.core import Task

EXERCISE = "05_counting"

# Ci != Co and Ho != Wo somewhere, so that swapped letters show
CONV_CASES = [dict(Ci=3, Co=16, K=3, Ho=32, Wo=32), dict(Ci=64, Co=64, K=3, Ho=32, Wo=32),
              dict(Ci=16, Co=48, K=1, Ho=8, Wo=8), dict(Ci=12, Co=20, K=5, Ho=7, Wo=9)]
DEPTHWISE_CASES = [dict(C=64, K=7, Ho=32, Wo=32), dict(C=16, K=3, Ho=16, Wo=16),
                   dict(C=24, K=5, Ho=7, Wo=9)]
INVOLUTION_CASES = [dict(C=64, K=7, G=4, r=4, Ho=32, Wo=32), dict(C=16, K=7, G=1, r=4, Ho=16, Wo=16),
                    dict(C=32, K=3, G=2, r=2, Ho=8, Wo=6), dict(C=48, K=5, G=3, r=8, Ho=9, Wo=7)]

# The one layer of layer_table: C = 64 channels in and out, 32 x 32, stride 1.
LAYER_TABLE = {
    "conv3x3": conv2d_cost(64, 64, 3, 32, 32),
    "dw7x7": depthwise_conv2d_cost(64, 7, 32, 32),
    "inv7x7 (G=4, r=4)": involution_cost(64, 7, 4, 4, 32, 32),
}


def involution_params(case):
    return involution_cost(**case).params


def involution_macs(case):
    return involution_cost(**case).macs


def aggregation_macs(case):
    return involution_aggregation_cost(case["C"], case["K"], case["Ho"], case["Wo"]).macs


# name -> (arguments in order, cases, the right answer, [(a known wrong answer, hint), ...])
FORMULAS = {
    "conv_params": (("Ci", "Co", "K"), CONV_CASES, lambda case: conv2d_cost(**case).params,
                    [(lambda case: conv2d_cost(**case, bias=True).params,
                      "count no bias: a BatchNorm follows every conv, so it has none")]),
    "conv_macs": (("Ci", "Co", "K", "Ho", "Wo"), CONV_CASES, lambda case: conv2d_cost(**case).macs,
                  [(lambda case: 2 * conv2d_cost(**case).macs,
                    "that is FLOPs (2 per multiply-add); count MACs")]),
    "depthwise_params": (("C", "K"), DEPTHWISE_CASES,
                         lambda case: depthwise_conv2d_cost(**case).params,
                         [(lambda case: depthwise_conv2d_cost(**case, bias=True).params,
                           "count no bias: a BatchNorm follows every conv, so it has none")]),
    "depthwise_macs": (("C", "K", "Ho", "Wo"), DEPTHWISE_CASES,
                       lambda case: depthwise_conv2d_cost(**case).macs,
                       [(lambda case: 2 * depthwise_conv2d_cost(**case).macs,
                         "that is FLOPs (2 per multiply-add); count MACs")]),
    "involution_params": (("C", "K", "G", "r"), INVOLUTION_CASES, involution_params,
                          [(lambda case: involution_params(case) - 2 * (case["C"] // case["r"]),
                            "the generator's BatchNorm on C // r channels has 2 params per channel"),
                           (lambda case: involution_params(case) - case["K"] ** 2 * case["G"],
                            "the span conv (C // r -> G*K*K) has a bias")]),
    "involution_macs": (("C", "K", "G", "r", "Ho", "Wo"), INVOLUTION_CASES, involution_macs,
                        [(lambda case: involution_macs(case) - aggregation_macs(case),
                          "you counted the kernel generator only: add the aggregation, C*K*K*Ho*Wo"),
                         (aggregation_macs,
                          "you counted the aggregation only: add the kernel generator's two 1x1 convs")]),
}


def check_formula(student_function, *, name):
    """Call the student's function on every case of FORMULAS[name]; fail on the first wrong count."""
    argument_names, cases, right_answer, mistakes = FORMULAS[name]
    for case in cases:
        arguments = {key: case[key] for key in argument_names}
        call = describe_call(name, **arguments)
        got = student_function(*arguments.values())
        expected = right_answer(case)
        for mistake, hint in mistakes:
            if got != expected and got == mistake(case):
                raise GradingFailure(f"{call}: the count should be {expected}, got {got}: {hint}", hint=hint)
        expect_equal(got, expected, call=call, what="the count")


def check_layer_table(layer_table):
    """layer_table must map exactly LAYER_TABLE's keys to (params, macs) pairs."""
    call = "layer_table (C = 64 in and out, 32 x 32, stride 1)"
    if not isinstance(layer_table, dict):
        raise GradingFailure(f"{call} should be a dict, got {type(layer_table).__name__}")
    expect_equal(sorted(layer_table), sorted(LAYER_TABLE), call=call, what="the keys")
    for key, cost in LAYER_TABLE.items():
        entry = layer_table[key]
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise GradingFailure(f"{call}: layer_table[{key!r}] should be a pair (params, macs), "
                                 f"got {entry!r}")
        expect_equal(tuple(entry), (cost.params, cost.macs), call=call,
                     what=f"layer_table[{key!r}] (params, macs)")


TASKS = [
    *(Task(name, points, (name,), partial(check_formula, name=name))
      for name, points in [("conv_params", 1), ("conv_macs", 1), ("depthwise_params", 1),
                           ("depthwise_macs", 1), ("involution_params", 2), ("involution_macs", 2)]),
    Task("layer_table", 2, ("layer_table",), check_layer_table),
]
