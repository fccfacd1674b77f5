"""The graded checks of exercise 05_counting and 07_mini_project's counts (tinyinvo/grading/tasks/counting.py and mini_project.py).

Each check runs with core.run_tasks on a namespace of small functions, as a notebook's globals()
would hold them: correct answers score full marks; untouched stubs score "not implemented"; each
usual mistake fails its own task only, with a message that says what is wrong.
"""

import pytest

from grading_helpers import only_failure, statuses, stub
from tinyinvo.count import count
from tinyinvo.count.formulas import conv2d_cost, depthwise_conv2d_cost, involution_cost
from tinyinvo.grading.core import FAILED, NOT_IMPLEMENTED, PASSED, run_tasks
from tinyinvo.grading.tasks import counting, mini_project
from tinyinvo.models import build


def test_the_points_are_the_specs():
    assert sum(task.points for task in counting.TASKS) == 10
    assert sum(task.points for task in mini_project.TASKS) == 6


# ---- 05_counting ----

COUNTING_CORRECT = {
    "conv_params": lambda Ci, Co, K: conv2d_cost(Ci, Co, K, 1, 1).params,
    "conv_macs": lambda Ci, Co, K, Ho, Wo: conv2d_cost(Ci, Co, K, Ho, Wo).macs,
    "depthwise_params": lambda C, K: depthwise_conv2d_cost(C, K, 1, 1).params,
    "depthwise_macs": lambda C, K, Ho, Wo: depthwise_conv2d_cost(C, K, Ho, Wo).macs,
    "involution_params": lambda C, K, G, r: involution_cost(C, K, G, r, 1, 1).params,
    "involution_macs": lambda C, K, G, r, Ho, Wo: involution_cost(C, K, G, r, Ho, Wo).macs,
    # written out by hand, so that the grader's table is checked too
    "layer_table": {"conv3x3": (36864, 37748736), "dw7x7": (3136, 3211264),
                    "inv7x7 (G=4, r=4)": (4388, 7471104)},
}


def counting_with(**changes):
    return {**COUNTING_CORRECT, **changes}


def test_counting_correct_answers_pass():
    results = statuses(counting, COUNTING_CORRECT)
    assert all(result.status == PASSED for result in results.values()), results


def test_counting_stubs_are_not_implemented():
    namespace = {name: stub for name in COUNTING_CORRECT if name != "layer_table"}
    results = statuses(counting, namespace)  # layer_table is a value: the stub cell never defines it
    assert {result.status for result in results.values()} == {NOT_IMPLEMENTED}


@pytest.mark.parametrize("task_name, wrong, hint", [
    ("conv_params", lambda Ci, Co, K: Co * Ci * K * K + Co, "count no bias"),
    ("conv_macs", lambda Ci, Co, K, Ho, Wo: 2 * Co * Ci * K * K * Ho * Wo, "that is FLOPs"),
    ("depthwise_params", lambda C, K: C * K * K + C, "count no bias"),
    ("depthwise_macs", lambda C, K, Ho, Wo: C * K * Ho * Wo, "the count should be"),
    ("involution_params", lambda C, K, G, r: C * (C // r) + (C // r) * K * K * G + K * K * G,
     "BatchNorm on C // r channels"),
    ("involution_params", lambda C, K, G, r: C * (C // r) + 2 * (C // r) + (C // r) * K * K * G,
     "the span conv (C // r -> G*K*K) has a bias"),
    ("involution_macs", lambda C, K, G, r, Ho, Wo: (C * (C // r) + (C // r) * K * K * G) * Ho * Wo,
     "add the aggregation"),
    ("involution_macs", lambda C, K, G, r, Ho, Wo: C * K * K * Ho * Wo, "add the kernel generator"),
    ("involution_macs", lambda C, K, G, r, Ho, Wo: (C * C / r + C / r * K * K * G + C * K * K) * Ho * Wo + 1,
     "the count should be"),
])
def test_counting_mistakes_fail_their_own_task(task_name, wrong, hint):
    message = only_failure(counting, counting_with(**{task_name: wrong}), task_name)
    assert message.startswith(f"{task_name}(") and hint in message


@pytest.mark.parametrize("table, words", [
    ({"conv3x3": (36864, 37748736), "dw7x7": (3136, 3211264)}, "the keys should be"),
    ({"conv3x3": (36864, 37748736), "dw7x7": (3136 + 64, 3211264),
      "inv7x7 (G=4, r=4)": (4388, 7471104)}, "layer_table['dw7x7'] (params, macs) should be (3136, 3211264)"),
    ({"conv3x3": 36864, "dw7x7": (3136, 3211264), "inv7x7 (G=4, r=4)": (4388, 7471104)},
     "should be a pair (params, macs)"),
    ([36864, 3136, 4388], "should be a dict"),
])
def test_a_wrong_layer_table_fails(table, words):
    assert words in only_failure(counting, counting_with(layer_table=table), "layer_table")


# ---- 07_mini_project ----

BASELINE = dict(block="bottleneck", op="dw7", depth=26, width=17)  # +4.7% MACs of rednet26 at width 16


def test_the_budget_is_rednet26_at_width_16_measured():
    assert mini_project.rednet26_macs() == count(build("rednet26", width=16), (3, 32, 32)).total.macs == 31_562_752


def test_a_matched_baseline_and_its_counts_pass():
    measured = count(build(**BASELINE), (3, 32, 32)).total
    results = statuses(mini_project, dict(baseline_config=BASELINE,
                                          baseline_counts=(measured.params, measured.macs)))
    assert all(result.status == PASSED for result in results.values()), results


def test_mini_project_untouched_is_not_implemented():
    results = statuses(mini_project, {})
    assert {result.status for result in results.values()} == {NOT_IMPLEMENTED}


@pytest.mark.parametrize("config, words", [
    (dict(name="rednet26", width=16), "must not use involution, but layer 'layers.1.layers.0.branches.0"),
    (dict(name="dwnet26", width=16), "29.43 M MACs per image, -6.7% from rednet26's 31.56 M"),
    (dict(block="bottleneck", op="dw7", depth=27, width=17), "raised ValueError: depth for block='bottleneck'"),
    (dict(BASELINE, stem="imagenet"), "use stem='cifar' and num_classes=10"),
    (dict(BASELINE, num_classes=100), "use stem='cifar' and num_classes=10"),
    ([("width", 17)], "should be a dict of tinyinvo.models.build keyword arguments"),
])
def test_a_wrong_baseline_config_fails(config, words):
    (result,) = run_tasks(mini_project.TASKS, dict(baseline_config=config), only="baseline_config", watch=False)
    assert result.status == FAILED and words in result.message, result.message


@pytest.mark.parametrize("counts", [(33030592, 500745), (500745, 33030592 // 2), 500745])
def test_wrong_baseline_counts_fail(counts):
    message = only_failure(mini_project, dict(baseline_config=BASELINE, baseline_counts=counts),
                           "baseline_counts")
    assert "(500745, 33030592)" in message or "should be a pair (params, macs)" in message
