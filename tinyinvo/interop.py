"""tinyinvo and PyTorch: the same network as a ``torch.nn.Module``, weights both ways, and a check of a
hand-written layer against autograd.

    twin = to_torch(model)          # a torch.nn.Module: same layers, same weights and buffers
    torch.onnx.export(twin, torch.zeros(1, 3, 32, 32), "model.onnx")   # on to ONNX, if you like
    ...                             # train, fine-tune or prune the twin in PyTorch
    from_torch(twin, model)         # and the weights come back into the tinyinvo model

    check_against_autograd(MyLayer(...), x)       # your new layer's forward and gradients vs autograd

PyTorch is optional: nothing here imports it until a function is called (``pip install torch``).

Names. The twin is made of the standard ``torch.nn`` modules (Conv2d, with ``groups=C`` for a
depthwise conv; BatchNorm2d; GroupNorm; ReLU; pools; Linear; Sequential), so its ``state_dict`` reads like a
torchvision one: tinyinvo's ``w`` and ``b`` become ``weight`` and ``bias``, BatchNorm's ``gamma``
and ``beta`` become ``weight`` and ``bias``, the running statistics keep their names, and a
Sequential's children are numbered (``layers.3.layers.0.w`` -> ``3.0.weight``). Three modules have no
torch.nn equivalent and are defined here: ``Add`` (children ``branches.0``, ``branches.1``, ...),
``BatchNormReLU`` (a ``torch.nn.BatchNorm2d`` with a ReLU after it, for ``BatchNorm2d(relu=True)``;
its ``state_dict`` is BatchNorm2d's) and ``Involution2d`` (children ``pool``, ``reduce``, ``bn``, ``relu``, ``span``, as in tinyinvo; the op
itself is the paper's reference: unfold x, multiply by the generated kernel, sum over the K*K taps).
``torch_names(model)`` lists the mapping.
"""

import functools

import numpy as np

from tinyinvo import nn as tnn
from tinyinvo.gradcheck import rel_error

# tinyinvo parameter or buffer name -> PyTorch's
TORCH_KEYS = {"w": "weight", "b": "bias", "gamma": "weight", "beta": "bias",
              "running_mean": "running_mean", "running_var": "running_var"}


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError("tinyinvo.interop needs PyTorch, which tinyinvo does not install: "
                          "pip install torch") from None
    return torch


@functools.cache
def _modules():
    """The three torch modules that torch.nn lacks, defined on first use (so that torch stays optional)."""
    torch = _import_torch()

    class Add(torch.nn.Module):
        """y = sum_b branch_b(x), like tinyinvo.nn.Add."""

        def __init__(self, branches):
            super().__init__()
            self.branches = torch.nn.ModuleList(branches)

        def forward(self, x):
            return sum(branch(x) for branch in self.branches)

    class BatchNormReLU(torch.nn.BatchNorm2d):
        """relu(BatchNorm2d(x)), like tinyinvo.nn.BatchNorm2d(relu=True); the ReLU holds no state."""

        def __init__(self, channels, eps, momentum, relu):
            super().__init__(channels, eps=eps, momentum=momentum)
            self.relu = relu

        def forward(self, x):
            return self.relu(super().forward(x))

    class Involution2d(torch.nn.Module):
        """tinyinvo.nn.Involution2d with the paper's reference op: kernel generator, unfold x,
        multiply by the kernel, sum over the K*K taps."""

        def __init__(self, layer, make_relu):
            super().__init__()
            self.K, self.G, self.C, self.stride = layer.kernel_size, layer.groups, layer.channels, layer.stride
            # the kernel generator: tinyinvo's children under the same names
            self.pool, self.reduce, self.bn, self.relu, self.span = (
                _twin(getattr(layer, name), make_relu) for name in ("pool", "reduce", "bn", "relu", "span"))

        def forward(self, x):
            kernel = self.span(self.relu(self.bn(self.reduce(self.pool(x)))))   # (N, G*K*K, Ho, Wo)
            N, _, Ho, Wo = kernel.shape
            kernel = kernel.view(N, self.G, 1, self.K * self.K, Ho, Wo)
            windows = torch.nn.functional.unfold(x, self.K, padding=(self.K - 1) // 2, stride=self.stride)
            windows = windows.view(N, self.G, self.C // self.G, self.K * self.K, Ho, Wo)
            return (kernel * windows).sum(dim=3).view(N, self.C, Ho, Wo)

    return Add, BatchNormReLU, Involution2d


def _twin(layer, make_relu):
    """The torch module computing what the tinyinvo ``layer`` computes (weights not yet copied);
    ``make_relu()`` makes each ReLU."""
    nn = _import_torch().nn
    Add, BatchNormReLU, Involution2d = _modules()
    bias = "b" in layer.params
    if isinstance(layer, tnn.Sequential):
        return nn.Sequential(*[_twin(child, make_relu) for child in layer.layers])
    if isinstance(layer, tnn.Add):
        return Add([_twin(branch, make_relu) for branch in layer.branches])
    if isinstance(layer, tnn.Involution2d):
        return Involution2d(layer, make_relu)
    if isinstance(layer, tnn.Conv2d):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         bias=bias)
    if isinstance(layer, tnn.DepthwiseConv2d):
        return nn.Conv2d(layer.channels, layer.channels, layer.kernel_size, layer.stride, layer.padding,
                         groups=layer.channels, bias=bias)
    if isinstance(layer, tnn.BatchNorm2d) and layer.relu:
        return BatchNormReLU(layer.channels, layer.eps, layer.momentum, make_relu())
    if isinstance(layer, tnn.BatchNorm2d):
        return nn.BatchNorm2d(layer.channels, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, tnn.GroupNorm2d):
        return nn.GroupNorm(layer.groups, layer.channels, eps=layer.eps)
    if isinstance(layer, tnn.Linear):
        return nn.Linear(layer.in_features, layer.out_features)
    if isinstance(layer, tnn.ReLU):
        return make_relu()
    if isinstance(layer, tnn.Identity):
        return nn.Identity()
    if isinstance(layer, tnn.MaxPool2d):
        return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, tnn.AvgPool2d):
        return nn.AvgPool2d(layer.kernel_size, layer.stride)
    if isinstance(layer, tnn.GlobalAvgPool):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    raise TypeError(f"to_torch does not know {type(layer).__name__}; for a layer of your own, pass a "
                    f"reference function to check_against_autograd instead")


def torch_names(model):
    """dict tinyinvo name -> PyTorch name, for every parameter and buffer of ``model`` (its
    ``state_dict()`` keys) and the twin that ``to_torch(model)`` makes."""
    names = {}

    def walk(layer, ours, theirs):
        for key in (*layer.params, *layer.buffers):
            names[ours + key] = theirs + TORCH_KEYS[key]
        for name, child in layer.children():
            torch_name = name.split(".")[1] if isinstance(layer, tnn.Sequential) else name  # layers.3 -> 3
            walk(child, f"{ours}{name}.", f"{theirs}{torch_name}.")

    walk(model, "", "")
    return names


def to_torch(model, *, inplace_relu=False):
    """A ``torch.nn.Module`` that computes what ``model`` computes, with copies of its weights and buffers.

    Inputs:
    - model: a tinyinvo Layer (a whole network from ``tinyinvo.models.build`` or a single layer)
    - inplace_relu: ReLU(inplace=True) as in torchvision's ResNets, which saves memory; safe when no
      ReLU's input is read by another layer too (true for every network of tinyinvo.models)
    Returns the module, in the model's dtype (float32 or float64) and mode (train or eval).
    """
    torch = _import_torch()
    module = _twin(model, functools.partial(torch.nn.ReLU, inplace=inplace_relu))
    arrays = model.state_dict()
    float64 = any(array.dtype == np.float64 for array in arrays.values())
    module = module.to(torch.float64 if float64 else torch.float32)
    state, names = module.state_dict(), torch_names(model)
    with torch.no_grad():
        for ours, array in arrays.items():
            target = state[names[ours]]
            target.copy_(torch.from_numpy(np.asarray(array)).reshape(target.shape))
    return module.train(model.training)


def from_torch(module, model):
    """Copy the weights and buffers of ``module`` into ``model``, in place; returns ``model``.

    ``module`` is a twin from ``to_torch(model)`` (trained further in PyTorch, say), or any module whose
    ``state_dict`` has the names of ``torch_names(model)`` and the same number of entries in each.
    """
    state = module.state_dict()
    own = model.state_dict()
    copied = {}
    for ours, theirs in torch_names(model).items():
        if theirs not in state:
            raise KeyError(f"the module has no {theirs!r} (tinyinvo's {ours!r}); is it the twin of this model?")
        value = state[theirs].detach().cpu().numpy()
        if value.size != own[ours].size:
            raise ValueError(f"{theirs} has shape {tuple(value.shape)} but tinyinvo's {ours} has "
                             f"{own[ours].shape}")
        copied[ours] = value.reshape(own[ours].shape)
    model.load_state_dict(copied)
    return model


def check_against_autograd(layer, x, reference=None, *, seed=0, verbose=True):
    """Compare a layer's forward pass and every gradient with PyTorch autograd, in float64.

    For a student writing a new layer: write its forward in torch operations (``reference``), and
    this runs both on the same input and the same random upstream gradient dy.

    Inputs:
    - layer: a tinyinvo Layer; converted to float64 in place (``layer.astype``), as for gradcheck
    - x: an input array for the layer (converted to float64)
    - reference: function (x, params) -> y in torch operations, where x is a tensor and params a dict
      of tensors under the layer's parameter names (``layer.parameters()``); None: the layer's twin
      from ``to_torch`` (for the layers tinyinvo already has)
    - seed: seeds the random dy; verbose: print the errors
    Returns dict name -> largest relative error (``rel_error``) of "y", "x" (dx) and every parameter
    gradient. Around 1e-12 means equal; a wrong backward gives errors near 1.
    """
    torch = _import_torch()
    layer.astype(np.float64)
    x = np.asarray(x, dtype=np.float64)
    if reference is None:
        twin = to_torch(layer)           # before our forward: a train-mode forward moves the running stats
        names = torch_names(layer)
        params = {name: twin.get_parameter(names[name]) for name in layer.parameters()}

        def reference(x_torch, _):
            return twin(x_torch)
    else:
        params = {name: torch.tensor(value, requires_grad=True) for name, value in layer.parameters().items()}
    y = layer.forward(x)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    ours = {"y": y, "x": layer.backward(dy), **layer.gradients()}

    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = reference(x_torch.clone(), params)    # a clone: an in-place first op must not hit the leaf
    (y_torch * torch.from_numpy(dy)).sum().backward()
    theirs = {"y": y_torch.detach(), "x": x_torch.grad,
              **{name: torch.zeros_like(p) if p.grad is None else p.grad for name, p in params.items()}}
    errors = {name: rel_error(ours[name], theirs[name].numpy().reshape(np.shape(ours[name]))) for name in ours}
    if verbose:
        for name, error in errors.items():
            print(f"{name:<32} {error:.2e}")
    return errors
