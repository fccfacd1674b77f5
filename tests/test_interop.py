"""tinyinvo.interop: the PyTorch twin computes the same logits and every gradient in float64, for each
block type and stem; weights go both ways under torchvision-style names; check_against_autograd
catches a wrong backward."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install torch); tinyinvo.interop needs it")

from tinyinvo.interop import check_against_autograd, from_torch, to_torch, torch_names  # noqa: E402
from tinyinvo.models.blocks import basic_block, bottleneck_block, inverted_block  # noqa: E402
from tinyinvo.models.build import build  # noqa: E402
from tinyinvo.models.stems import make_stem  # noqa: E402
from tinyinvo.nn import BatchNorm2d, GlobalAvgPool, Involution2d, Layer, Linear, Sequential  # noqa: E402
from tinyinvo.nn import softmax_cross_entropy  # noqa: E402

BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block, "inverted": inverted_block}

# (stem, block, op): every block type with each of its spatial ops, and each stem
NETS = [("cifar", "basic", "conv3"),
        *[("cifar", "bottleneck", op) for op in ("conv3", "inv7", "dw7", "dw3")],
        *[("cifar", "inverted", op) for op in ("dw3", "dw7", "inv7")],
        ("cifar", "inverted", "inv7-group"),        # the study's inverted-inv7: GroupNorm after it
        ("imagenet", "bottleneck", "conv3"),        # ResNet's stem: 7x7 stride-2 conv + max-pool
        ("imagenet", "bottleneck", "inv7")]         # RedNet's stem, with a 3x3 involution


def small_net(stem, block, op, rng):
    """stem -> three blocks (identity shortcut, projection, stride 2) -> pool -> linear, in float64,
    every BatchNorm with random statistics (so no gamma = 0 hides a gradient, and eval mode differs)."""
    args = dict(rng=rng, dtype=np.float64)
    C = 32 if (stem, op) == ("imagenet", "inv7") else 16    # the RedNet stem's involution needs C / 2 >= 16
    make = BLOCKS[block]
    op, op_norm = (op[:-len("-group")], "group") if op.endswith("-group") else (op, "batch")
    if block == "inverted":        # E = 6 * 16 channels in the spatial op; residual only at stride 1, Ci == Co
        widths = [(C, 16, 1), (16, 16, 1), (16, 32, 2)]
    else:                          # a bottleneck's spatial op has Co / 4 = 16 channels
        Co = 16 if block == "basic" else 64
        widths = [(C, Co, 1), (Co, Co, 1), (Co, Co, 2)]
    blocks = [make(Ci, Co, op=op, stride=stride, op_norm=op_norm, **args) for Ci, Co, stride in widths]
    model = Sequential(make_stem(stem, C, involution=op == "inv7", **args), *blocks, GlobalAvgPool(),
                       Linear(widths[-1][1], 10, **args))
    for _, layer in model.named_layers():
        if isinstance(layer, BatchNorm2d):
            C = layer.channels
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, C)
            layer.params["beta"][...] = rng.normal(0, 0.1, C)
            layer.buffers["running_mean"][...] = rng.normal(0, 0.1, C)
            layer.buffers["running_var"][...] = rng.uniform(0.5, 1.5, C)
    return model


def assert_equal_in_float64(got, expected, name):
    # atol: 1e-9 of the array's largest entry, and at least 1e-14 for the gradients that are exactly 0
    # in exact arithmetic (a BatchNorm's beta before a train-mode BatchNorm cancels it), here rounding noise
    atol = max(1e-9 * np.abs(expected).max(), 1e-14)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=atol, err_msg=name)


@pytest.mark.parametrize("stem, block, op", NETS, ids=[f"{stem}-{block}-{op}" for stem, block, op in NETS])
def test_twin_has_the_same_logits_and_gradients_in_float64(stem, block, op):
    rng = np.random.default_rng(0)
    model = small_net(stem, block, op, rng)
    twin = to_torch(model)
    names = torch_names(model)
    x = rng.standard_normal((2, 3, 32, 32) if stem == "imagenet" else (2, 3, 8, 8))
    labels = np.array([3, 7])

    # train mode: batch statistics, and the running statistics move the same way
    logits = model.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    dx = model.backward(dlogits)
    x_torch = torch.tensor(x, requires_grad=True)
    logits_torch = twin(x_torch)
    loss_torch = torch.nn.functional.cross_entropy(logits_torch, torch.from_numpy(labels))
    loss_torch.backward()
    assert_equal_in_float64(logits_torch.detach().numpy(), logits, "logits")
    assert abs(loss_torch.item() - loss) < 1e-12
    assert_equal_in_float64(x_torch.grad.numpy(), dx, "dx")
    gradients = model.gradients()
    assert set(gradients) == set(model.parameters())
    for name, grad in gradients.items():
        assert_equal_in_float64(twin.get_parameter(names[name]).grad.numpy().reshape(grad.shape), grad, name)
    state = twin.state_dict()
    for name, array in model.state_dict().items():
        assert_equal_in_float64(state[names[name]].numpy().reshape(array.shape), array, name)

    # eval mode: the running statistics
    model.eval()
    twin.eval()
    with torch.no_grad():
        assert_equal_in_float64(twin(torch.from_numpy(x)).numpy(), model.forward(x), "eval logits")


def test_weights_go_to_torch_and_back_under_torchvision_style_names():
    model = build("resnet20", width=4)
    twin = to_torch(model)
    names = torch_names(model)
    assert names["layers.0.layers.0.w"] == "0.0.weight"                     # the stem's conv
    assert names["layers.0.layers.1.gamma"] == "0.1.weight"                  # its BatchNorm
    assert names["layers.0.layers.1.running_var"] == "0.1.running_var"
    assert names["layers.1.layers.0.branches.0.layers.0.layers.0.w"] == "1.0.branches.0.0.0.weight"
    assert names["layers.11.b"] == "11.bias"                                 # the classifier
    # every tensor of the twin is one of the model's (PyTorch also counts BatchNorm's batches)
    assert set(names.values()) == {key for key in twin.state_dict() if not key.endswith("num_batches_tracked")}
    assert next(twin.parameters()).dtype == torch.float32 and twin.training

    with torch.no_grad():                     # change the twin, then copy it back into a different model
        for tensor in twin.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(1.5)
    other = build("resnet20", width=4, seed=1)
    assert from_torch(twin, other) is other
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], (array * np.float32(1.5)), err_msg=name)


def test_depthwise_weights_change_shape_on_the_way():
    model = build("dwnet26", width=16)
    twin = to_torch(model)
    name = next(name for name, array in model.parameters().items() if array.ndim == 3)
    C, K, _ = model.parameters()[name].shape
    assert tuple(twin.state_dict()[torch_names(model)[name]].shape) == (C, 1, K, K)   # groups=C in PyTorch
    other = from_torch(twin, build("dwnet26", width=16, seed=1))
    np.testing.assert_array_equal(other.parameters()[name], model.parameters()[name])


def test_from_torch_refuses_a_module_of_another_model():
    twin = to_torch(build("resnet20", width=4))
    with pytest.raises(KeyError, match="is it the twin of this model"):
        from_torch(twin, Sequential(Linear(4, 10)))          # looks for "0.weight"
    with pytest.raises(ValueError, match="has shape"):
        from_torch(twin, build("resnet20", width=8))


def test_to_torch_names_a_layer_it_does_not_know():
    class Square(Layer):
        def forward(self, x):
            return x * x

    with pytest.raises(TypeError, match="to_torch does not know Square"):
        to_torch(Sequential(Square()))


class Scale(Layer):
    """A student's new layer: y[n, c] = s[c] * x[n, c], with a bug in ds when ``buggy``."""

    def __init__(self, C, buggy=False):
        super().__init__()
        self.params = {"s": np.linspace(0.5, 2.0, C)}
        self.buggy = buggy

    def forward(self, x):
        self.cache = x
        return self.params["s"][:, None, None] * x

    def backward(self, dy):
        x = self.cache
        self.grads = {"s": (dy if self.buggy else dy * x).sum(axis=(0, 2, 3))}
        return self.params["s"][:, None, None] * dy


def scale_reference(x, params):
    return params["s"][:, None, None] * x


def test_check_against_autograd_passes_a_right_layer_and_catches_a_wrong_backward(capsys):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    errors = check_against_autograd(Scale(3), x, scale_reference)
    assert set(errors) == {"y", "x", "s"} and max(errors.values()) < 1e-12
    assert "s " in capsys.readouterr().out                 # printed, one line per array
    errors = check_against_autograd(Scale(3, buggy=True), x, scale_reference, verbose=False)
    assert errors["y"] < 1e-12 and errors["x"] < 1e-12 and errors["s"] > 0.1


def test_check_against_autograd_uses_the_twin_of_a_known_layer():
    layer = Involution2d(16, 7, stride=2, rng=np.random.default_rng(1))
    errors = check_against_autograd(layer, np.random.default_rng(2).standard_normal((2, 16, 8, 8)), verbose=False)
    assert set(errors) == {"y", "x", *layer.parameters()} and max(errors.values()) < 1e-10
    assert layer.parameters()["span.w"].dtype == np.float64          # converted, as for gradcheck
