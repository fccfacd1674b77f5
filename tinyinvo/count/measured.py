"""Count a built model by watching it run: every layer records what flowed through it.

``count(model, input_shape)`` wraps each layer's ``forward`` with a recorder, runs one forward pass,
and for every layer that computes something (containers like Sequential and Add only route data)
it writes a row: params from the layer's own arrays, MACs from the formulas of ``formulas.py``
applied to the input and output shapes that actually flowed (and the kernel size read off the
weight or the generated kernel). Nothing here knows the architecture: compare with ``analytic.py``,
which knows only the architecture.
"""

from dataclasses import dataclass

import numpy as np

from tinyinvo.count.formulas import (Cost, conv2d_cost, depthwise_conv2d_cost,
                                     involution_aggregation_cost, linear_cost)
from tinyinvo.nn import (Add, AvgPool2d, BatchNorm2d, Conv2d, DepthwiseConv2d, GlobalAvgPool,
                         GroupNorm2d, Identity, Involution2d, Linear, MaxPool2d, ReLU, Sequential)

CONTAINERS = (Sequential, Add, Identity)


def _conv_macs(layer, x, y):
    K = layer.params["w"].shape[-1]  # w (Co, Ci, K, K)
    return conv2d_cost(x.shape[1], y.shape[1], K, *y.shape[2:])


def _depthwise_macs(layer, x, y):
    K = layer.params["w"].shape[-1]  # w (C, K, K)
    return depthwise_conv2d_cost(y.shape[1], K, *y.shape[2:])


def _involution_macs(layer, x, y):
    """The aggregation only: the kernel generator's layers are children with rows of their own."""
    K = layer.last_kernel.shape[2]  # the generated kernel (N, G, K, K, Ho, Wo)
    return involution_aggregation_cost(y.shape[1], K, *y.shape[2:])


def _linear_macs(layer, x, y):
    return linear_cost(x.shape[1], y.shape[1])


def _no_macs(layer, x, y):
    return Cost()


# layer type -> function(layer, x, y) whose Cost gives the MACs of one image
MAC_RULES = {Conv2d: _conv_macs, DepthwiseConv2d: _depthwise_macs, Involution2d: _involution_macs,
             Linear: _linear_macs, BatchNorm2d: _no_macs, GroupNorm2d: _no_macs, ReLU: _no_macs,
             MaxPool2d: _no_macs,
             AvgPool2d: _no_macs, GlobalAvgPool: _no_macs}


@dataclass(frozen=True)
class Row:
    """One layer's cost per image: dotted name, type name, output shape without N, params, MACs."""

    name: str
    type: str
    output_shape: tuple
    cost: Cost


@dataclass(frozen=True)
class Count:
    """The result of ``count``: one Row per computing layer in call order, and their total."""

    rows: list
    total: Cost


def layer_cost(layer, x, y):
    """Cost of one call: params = sizes of the layer's own arrays; MACs from the shapes x -> y."""
    rule = MAC_RULES.get(type(layer))
    if rule is None:
        raise TypeError(f"count does not know how to count a {type(layer).__name__}; add it to "
                        f"tinyinvo.count.measured.MAC_RULES")
    macs = rule(layer, x, y)
    params = sum(array.size for array in layer.params.values())
    return Cost(params, macs.macs, macs.aggregation_macs)


def _recording(layer, name, rows):
    """A replacement for ``layer.forward`` that runs it and appends the layer's Row to ``rows``.

    The row's slot is taken before the call, so a layer comes before its children (an
    Involution2d before its kernel generator), as in the model's printout.
    """
    forward = layer.forward

    def recorded_forward(x):
        slot = len(rows)
        rows.append(None)
        y = forward(x)
        rows[slot] = Row(name, type(layer).__name__, y.shape[1:], layer_cost(layer, x, y))
        return y

    return recorded_forward


def count(model, input_shape, batch_size=1):
    """Params and MACs per image of every layer of ``model``, measured on a forward pass.

    Inputs:
    - model: a Layer (e.g. from ``tinyinvo.models.build``)
    - input_shape: (C, H, W) of one input image
    - batch_size: 1 runs a real forward pass on a zero image. 0 runs the very same layer code on
      an empty batch (N = 0): each layer still computes its output shape itself (the ops' output
      size formula, the generated kernel's shape, the checks), only the arithmetic on numbers is
      skipped, so the count stays independent of ``analytic.py`` and costs milliseconds even at
      224 x 224. Both give the same count (a test checks it).
    Returns a Count: rows (name, type, output shape, Cost per layer) and their total Cost.
    The model runs in eval mode (BN running statistics are not touched); each layer's train/eval
    mode is restored afterwards.
    """
    rows = []
    layers = [(name, layer) for name, layer in model.named_layers()
              if not isinstance(layer, CONTAINERS)]
    modes = [(layer, layer.training) for _, layer in model.named_layers()]
    dtype = next((array.dtype for array in model.parameters().values()), np.float32)
    for name, layer in layers:
        layer.forward = _recording(layer, name, rows)  # an instance attribute hides the method
    try:
        model.eval()
        model.forward(np.zeros((batch_size, *input_shape), dtype))
    finally:
        for _, layer in layers:
            del layer.forward
        for layer, training in modes:
            layer.training = training
    return Count(rows, sum((row.cost for row in rows), Cost()))
