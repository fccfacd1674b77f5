"""Parameter and MAC counts: the closed forms against brute force, the analytic count against the
measured one for every preset, the paper's ImageNet table, the CLI and solve_width."""

import functools

import numpy as np
import pytest

import tinyinvo.backend
from tinyinvo.__main__ import main
from tinyinvo.count import Cost, analytic_cost, count, solve_width, summary
from tinyinvo.count.formulas import (conv2d_cost, depthwise_conv2d_cost,
                                     involution_aggregation_cost, involution_cost, linear_cost)
from tinyinvo.models import PRESETS, build
from tinyinvo.nn import BatchNorm2d, Conv2d, DepthwiseConv2d, Involution2d, Layer, Linear, Sequential
from tinyinvo.ops import conv2d_forward, depthwise_conv2d_forward, involution_forward

BOTTLENECK_PRESETS = [name for name, spec in PRESETS.items() if spec["block"] == "bottleneck"]


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    """Counts do not depend on the backend; the numpy one runs without compiling anything."""
    monkeypatch.setattr(tinyinvo.backend, "_current", "numpy")


# ---- the closed forms against brute force ----

def brute_force_macs(linear_map, input_shape):
    """MACs of a linear map x -> y by brute force: the nonzeros of its matrix dy/dx, found one
    column at a time by feeding each unit input. With random nonzero weights every product
    weight * x[k] that the map computes leaves a nonzero entry."""
    total = 0
    for k in range(int(np.prod(input_shape))):
        unit = np.zeros(int(np.prod(input_shape)))
        unit[k] = 1.0
        total += np.count_nonzero(linear_map(unit.reshape(1, *input_shape)))
    return total


@pytest.mark.parametrize("Ci, Co, K, H, stride, padding", [(2, 3, 3, 5, 1, 1), (3, 2, 3, 6, 2, 1),
                                                           (2, 2, 1, 4, 1, 0)])
def test_conv2d_cost_matches_brute_force(Ci, Co, K, H, stride, padding, randn):
    w = randn(Co, Ci, K, K)
    Ho = (H + 2 * padding - K) // stride + 1
    # the padded input is the map's input, so products with padding zeros count, as in the formula
    macs = brute_force_macs(lambda x: conv2d_forward(x, w, stride=stride), (Ci, H + 2 * padding,
                                                                             H + 2 * padding))
    layer = Conv2d(Ci, Co, K, stride=stride, padding=padding, bias=True)
    assert conv2d_cost(Ci, Co, K, Ho, Ho) == Cost(params=Co * Ci * K * K, macs=macs)
    assert conv2d_cost(Ci, Co, K, Ho, Ho, bias=True).params == layer.num_params()


@pytest.mark.parametrize("C, K, H, stride", [(3, 3, 5, 1), (2, 5, 7, 2)])
def test_depthwise_and_involution_costs_match_brute_force(C, K, H, stride, randn):
    P = K // 2
    Ho = (H + 2 * P - K) // stride + 1
    padded = (C, H + 2 * P, H + 2 * P)
    w = randn(C, K, K)
    kernel = randn(1, 1, K, K, Ho, Ho)  # one group: G = 1
    dw_macs = brute_force_macs(lambda x: depthwise_conv2d_forward(x, w, stride=stride), padded)
    inv_macs = brute_force_macs(lambda x: involution_forward(x, kernel, stride=stride, padding=0),
                                padded)
    assert depthwise_conv2d_cost(C, K, Ho, Ho) == Cost(params=C * K * K, macs=dw_macs)
    assert depthwise_conv2d_cost(C, K, Ho, Ho, bias=True).params == \
        DepthwiseConv2d(C, K, bias=True).num_params()
    assert involution_aggregation_cost(C, K, Ho, Ho) == Cost(0, inv_macs, inv_macs)


def test_linear_cost_matches_brute_force():
    layer = Linear(5, 3, dtype=np.float64)
    macs = brute_force_macs(lambda x: layer.forward(x.reshape(1, 5)), (5,))
    assert linear_cost(5, 3) == Cost(params=layer.num_params(), macs=macs)


@pytest.mark.parametrize("C, K, stride, H", [(32, 7, 1, 8), (32, 3, 2, 8), (64, 7, 2, 6)])
def test_involution_cost_is_generator_at_output_resolution_plus_aggregation(C, K, stride, H):
    layer = Involution2d(C, K, stride=stride)
    Ho, G, hidden = H // stride, C // 16, C // 4
    expected = Cost(params=C * hidden + 2 * hidden + hidden * K * K * G + K * K * G,
                    macs=(C * hidden + hidden * K * K * G) * Ho * Ho + C * K * K * Ho * Ho,
                    aggregation_macs=C * K * K * Ho * Ho)
    assert involution_cost(C, K, G, 4, Ho, Ho) == expected
    assert count(layer, (C, H, H)).total == expected
    assert expected.params == layer.num_params()


# ---- analytic == measured ----

@functools.lru_cache(maxsize=None)
def imagenet_model_and_count(name):
    """A preset built at ImageNet scale and its measured count (224x224, 1000 classes, an empty
    batch, see ``count``). Cached: building the large models is the slow part of this file."""
    model = build(name, stem="imagenet", num_classes=1000)
    return model, count(model, (3, 224, 224), batch_size=0).total


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_analytic_equals_measured_cifar(name):
    model = build(name, width=16)
    measured = count(model, (3, 32, 32), batch_size=0).total
    assert measured == analytic_cost(model.config, 32)
    assert measured.params == model.num_params()


@pytest.mark.parametrize("name", BOTTLENECK_PRESETS + ["mbv2"])
def test_analytic_equals_measured_imagenet(name):
    model, measured = imagenet_model_and_count(name)
    assert measured == analytic_cost(model.config, 224)
    assert measured.params == model.num_params()


@pytest.mark.parametrize("name, stem, size", [("rednet26", "imagenet", 224), ("mbv2", "cifar", 32),
                                              ("resnet20", "cifar", 32)])
def test_empty_batch_counts_like_a_real_forward_pass(name, stem, size):
    """Between them these cover every layer type and both stems (the RedNet one has an involution)."""
    model = build(name, stem=stem, width=16 if stem == "cifar" else None)
    empty, real = count(model, (3, size, size), batch_size=0), count(model, (3, size, size))
    assert empty.rows == real.rows and len(real.rows) > 50


def test_count_leaves_the_model_as_it_was():
    model = build("rednet26", width=16)
    model.layers[-1].eval()  # a mixed state, to see that each layer's mode comes back
    before = {key: value.copy() for key, value in model.state_dict().items()}
    result = count(model, (3, 32, 32))
    assert [layer.training for _, layer in model.named_layers()].count(False) == 1
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert "forward" not in vars(model.layers[0].layers[0])  # the recorder is gone
    assert [row.type for row in result.rows[:5]] == ["Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d", "Involution2d"]


def test_count_refuses_a_layer_it_does_not_know():
    class Doubler(Layer):
        def forward(self, x):
            return 2 * x

    with pytest.raises(TypeError, match="Doubler"):
        count(Sequential(Conv2d(3, 4, 1), Doubler()), (3, 4, 4))


def test_count_rows_hold_shapes_params_and_macs():
    model = Sequential(Conv2d(3, 8, 3, stride=2, padding=1, bias=False), BatchNorm2d(8))
    conv, bn = count(model, (3, 10, 10)).rows
    assert (conv.name, conv.type, conv.output_shape) == ("layers.0", "Conv2d", (8, 5, 5))
    assert conv.cost == Cost(8 * 3 * 9, 8 * 3 * 9 * 25)
    assert (bn.name, bn.cost) == ("layers.1", Cost(16, 0))


# ---- the paper's table (ImageNet, 224x224, 1000 classes): params (M), MACs (G) ----

PAPER = {"rednet26": (9.23, 1.73), "rednet38": (12.39, 2.22), "rednet50": (15.54, 2.71),
         "rednet101": (25.65, 4.74), "rednet152": (33.99, 6.79),
         "resnet26": (13.7, 2.4), "resnet38": (19.6, 3.2), "resnet50": (25.6, 4.1)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_table(name):
    """Params within 1% and MACs within 3%, counting the involution aggregation. The paper's MACs
    are those *with* the aggregation: without it RedNet comes out 4-5% below the paper."""
    params, macs = PAPER[name]
    _, measured = imagenet_model_and_count(name)
    assert measured.params / 1e6 == pytest.approx(params, rel=0.01)
    assert measured.macs / 1e9 == pytest.approx(macs, rel=0.03)
    if measured.aggregation_macs:
        assert (measured.macs - measured.aggregation_macs) / 1e9 < 0.96 * macs


def test_mobilenet_v2_has_its_published_size():
    """MobileNetV2 1.0 at 224: 3,504,872 params (torchvision's count) and 300 M MACs (its paper)."""
    _, measured = imagenet_model_and_count("mbv2")
    assert measured.params == 3_504_872
    assert measured.macs / 1e6 == pytest.approx(300, rel=0.01)


# ---- printing and the command line ----

def test_summary_prints_rows_totals_and_the_convention(capsys):
    summary(build("rednet26", width=16), (3, 32, 32))
    out = capsys.readouterr().out
    assert "Involution2d" in out and "460,211" in out
    assert "without the involution aggregation" in out
    assert "FLOPs = 2 x MACs" in out


def test_cli_count_prints_a_table(capsys):
    assert main(["count", "--model", "rednet26", "--width", "16", "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "10 classes" in out and "layers.10" in out and "Linear" in out
    assert "31,562,752" in out  # rednet26 at width 16 on 32x32 images
    assert "analytic count (from the config alone) gives the same" in out


def test_cli_count_imagenet_defaults_to_1000_classes(capsys):
    assert main(["count", "--block", "bottleneck", "--op", "conv3", "--depth", "26",
                 "--stem", "imagenet", "--input", "64"]) == 0
    out = capsys.readouterr().out
    assert "1000 classes" in out and "Total params:      13,696,552" in out
    assert "Involution2d" not in out  # no --per-layer: totals only


# ---- matched budgets ----

@pytest.mark.parametrize("op", ["dw7", "dw3", "conv3"])
def test_solve_width_meets_the_rednet26_budget_within_5_percent(op):
    target = analytic_cost(build("rednet26", width=16).config, 32).macs
    width = solve_width("bottleneck", op, 26, target)
    model = build(block="bottleneck", op=op, depth=26, width=width)
    assert count(model, (3, 32, 32), batch_size=0).total.macs == pytest.approx(target, rel=0.05)


def test_solve_width_only_returns_buildable_widths():
    target = analytic_cost(build("rednet26", width=16).config, 32).macs
    # the first stage's involution runs on `width` channels, which must be a multiple of 16
    assert solve_width("bottleneck", "inv7", 26, target) == 16
    assert solve_width("bottleneck", "inv7", 26, 1) == 16
    assert solve_width("bottleneck", "inv7", 26, 3 * target) % 16 == 0
