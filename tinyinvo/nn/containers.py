"""Layers made of layers: Sequential (one after another), Add (side by side, summed), Identity.

A residual block is ``Add(body, Identity())``: y = body(x) + x. Its backward pass adds the two
paths' gradients: dx = dbody/dx + dy. With a projection, ``Add(body, shortcut)``.
"""

from tinyinvo.nn.layer import Layer
from tinyinvo.ops import add


def _check_layers(kind, layers):
    if not layers:
        raise ValueError(f"{kind} needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"{kind} argument {i} must be a Layer, got {type(layer).__name__}")
    return list(layers)


class Identity(Layer):
    """y = x, dx = dy (the shortcut of a residual block). No params, nothing cached, so unlike the
    other layers its backward needs no forward before it."""

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class Sequential(Layer):
    """Apply the layers in order: y = layers[-1](...layers[1](layers[0](x))).

    Backward goes the other way, each layer handing its dx to the one before it.
    The children are named ``layers.0``, ``layers.1``, ... (so params are ``layers.0.w``, ...).
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = _check_layers("Sequential", layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)


class Add(Layer):
    """Run every branch on the same input and add the results: y = sum_b branch_b(x).

    x is used by every branch, so its gradient is the sum of the branches' gradients:
    dx = sum_b branch_b.backward(dy). The children are named ``branches.0``, ``branches.1``, ...
    """

    def __init__(self, *branches):
        super().__init__()
        self.branches = _check_layers("Add", branches)

    def forward(self, x):
        outputs = [branch.forward(x) for branch in self.branches]
        shapes = [y.shape for y in outputs]
        if len(set(shapes)) > 1:
            raise ValueError(f"Add: the branches' outputs must have the same shape, got {shapes}")
        return _sum(outputs)

    def backward(self, dy):
        return _sum([branch.backward(dy) for branch in self.branches])


def _sum(arrays):
    """arrays[0] + arrays[1] + ... as one new array, added pairwise in order by ``ops.add``.

    Not the builtin ``sum``, which starts from 0 and so first copies arrays[0] (a whole extra pass
    over memory). The inputs are left untouched: a branch may return its input itself.
    """
    if len(arrays) == 1:
        return arrays[0].copy()
    total = add(arrays[0], arrays[1])
    for array in arrays[2:]:
        total = add(total, array)
    return total
