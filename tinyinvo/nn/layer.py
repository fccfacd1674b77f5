"""The base class of every layer: parameters, gradients, buffers, sub-layers, train/eval.

A layer is a forward/backward pair with state:
- ``params``:  dict name -> array, its own trainable parameters (updated in place by optimizers)
- ``grads``:   dict name -> array, the gradients of the loss w.r.t. ``params``, set by ``backward``
- ``buffers``: dict name -> array, state that is saved but not trained (BatchNorm running statistics)
- ``cache``:   whatever ``forward`` keeps for ``backward`` (so call forward, then backward, in pairs)
- ``training``: True in train mode, False in eval mode (only BatchNorm behaves differently)

Sub-layers are found automatically: any attribute that is a Layer, or a list of Layers, is a child,
named by its attribute (``conv``) or attribute and index (``blocks.3``). ``parameters()``,
``gradients()`` and ``state_dict()`` walk the tree and use dotted names such as ``blocks.3.conv.w``.
"""

import numpy as np


class Layer:
    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.cache = None
        self.training = True

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define forward(x) (Layer is abstract)")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} must define backward(dy) (Layer is abstract)")

    def __call__(self, x):
        return self.forward(x)

    def saved_for_backward(self):
        """What ``forward`` stored in ``self.cache``; a clear error if forward has not run yet."""
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward was called before forward: call "
                               f"forward(x) first, it saves what backward needs")
        return self.cache

    # ---- the tree of layers ----
    def children(self):
        """(name, layer) pairs of the direct sub-layers, in the order they were assigned."""
        for name, value in vars(self).items():
            if isinstance(value, Layer):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Layer):
                        yield f"{name}.{i}", item

    def named_layers(self, prefix=""):
        """Every layer of the tree (this one first) with its dotted name."""
        yield prefix, self
        for name, child in self.children():
            yield from child.named_layers(f"{prefix}.{name}" if prefix else name)

    def _collect(self, attribute):
        out = {}
        for layer_name, layer in self.named_layers():
            for key, value in getattr(layer, attribute).items():
                out[f"{layer_name}.{key}" if layer_name else key] = value
        return out

    def parameters(self):
        """dict dotted name -> parameter array, for the whole tree."""
        return self._collect("params")

    def gradients(self):
        """dict dotted name -> gradient array, same keys as parameters() after a backward pass."""
        return self._collect("grads")

    def state_dict(self):
        """Parameters and buffers of the whole tree: everything needed to restore the model."""
        return {**self._collect("params"), **self._collect("buffers")}

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into this model in place (keys and shapes must match exactly)."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"state does not fit this model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
        for name, array in own.items():
            if array.shape != np.shape(state[name]):
                raise ValueError(f"{name}: model has shape {array.shape}, state has "
                                 f"{np.shape(state[name])}")
            array[...] = state[name]

    def num_params(self):
        return sum(p.size for p in self.parameters().values())

    # ---- modes and dtype ----
    def train(self, mode=True):
        for _, layer in self.named_layers():
            layer.training = mode
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Convert every parameter and buffer to ``dtype`` (float64 for gradient checks). Returns self."""
        for _, layer in self.named_layers():
            for store in (layer.params, layer.buffers):
                for key in store:
                    store[key] = store[key].astype(dtype)
            layer.grads = {}
        return self

    def __repr__(self):
        children = list(self.children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""
