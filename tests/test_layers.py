"""Tests of the layers in tinyinvo.nn: gradients, train/eval, state, dtype, initialisation, errors.

Gradients are checked against finite differences (tinyinvo.gradcheck) in float64, for the input and
for every parameter. The layers run on the NumPy backend here (one test checks that they give the
same results on Numba); the ops themselves are tested on both backends in test_ops.py.
"""

import numpy as np
import pytest

import tinyinvo
from tinyinvo import gradcheck
from tinyinvo.backend import BACKENDS
from tinyinvo.nn import (Add, AvgPool2d, BatchNorm2d, Conv2d, DepthwiseConv2d, GlobalAvgPool,
                         GroupNorm2d, Identity, Involution2d, Linear, MaxPool2d, ReLU, Sequential,
                         accuracy, softmax_cross_entropy)
from tinyinvo.ops import involution_forward

TOLERANCE = 1e-6


@pytest.fixture(autouse=True)
def numpy_backend():
    previous = tinyinvo.get_backend()
    tinyinvo.set_backend("numpy")
    yield
    tinyinvo.set_backend(previous)


def randn(*shape, seed=10):
    """Standard normal array. The seed differs from gradcheck's (0), whose dy would otherwise equal x."""
    return np.random.default_rng(seed).standard_normal(shape)


def distinct_values(*shape, seed=0):
    """A random arrangement of 0.1, 0.2, ...: no two entries tie, even after a finite-difference nudge."""
    return 0.1 * (np.random.default_rng(seed).permutation(int(np.prod(shape))) + 1.0).reshape(shape)


def away_from_zero(*shape, seed=0):
    """Random values with 0.1 <= |x| <= 1, so a ReLU's kink is never inside a finite difference."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape)


def gradient_errors(layer, x):
    """Relative errors of dx and of every parameter gradient of ``layer`` at ``x``, in float64."""
    layer.astype(np.float64)
    x = np.array(x, dtype=np.float64)
    params = layer.parameters()

    def backward(dy):
        dx = layer.backward(dy)
        return {"x": dx, **layer.gradients()}

    errors = gradcheck(lambda: layer.forward(x), {"x": x, **params}, backward)
    assert set(layer.gradients()) == set(params)
    return errors


def assert_gradients(layer, x):
    errors = gradient_errors(layer, x)
    assert max(errors.values()) < TOLERANCE, errors


def forward_backward(layer, x, seed=1):
    y = layer.forward(x)
    dx = layer.backward(randn(*y.shape, seed=seed).astype(y.dtype))
    return y, dx


# ---------------------------------------------------------------- gradient checks

def test_gradient_check_catches_a_wrong_backward():
    class LeakyBackwardReLU(ReLU):
        def backward(self, dy):
            return dy  # wrong: ignores the mask

    errors = gradient_errors(LeakyBackwardReLU(), away_from_zero(2, 3, 4, 4))
    assert errors["x"] > 0.5


@pytest.mark.parametrize("stride, padding, K, bias", [
    (1, 0, 1, True), (1, 1, 3, False), (2, 1, 3, True), (2, 0, 1, False), (1, 3, 3, True),
    (2, 3, 3, False),
])
def test_conv2d_gradients(stride, padding, K, bias):
    layer = Conv2d(3, 2, kernel_size=K, stride=stride, padding=padding, bias=bias)
    assert ("b" in layer.params) == bias
    assert_gradients(layer, randn(2, 3, 5, 4))


@pytest.mark.parametrize("K, stride, bias", [(3, 1, True), (3, 2, False), (7, 1, False), (7, 2, True)])
def test_depthwise_conv2d_gradients(K, stride, bias):
    layer = DepthwiseConv2d(3, kernel_size=K, stride=stride, padding=(K - 1) // 2, bias=bias)
    assert_gradients(layer, randn(2, 3, 6, 5))


@pytest.mark.parametrize("stride, groups, K, H, W", [
    (1, 1, 3, 5, 6), (1, 2, 7, 4, 5), (2, 2, 3, 4, 6), (2, 1, 7, 6, 4), (1, 4, 3, 3, 5),
])
def test_involution2d_gradients_train_mode(stride, groups, K, H, W):
    layer = Involution2d(4, kernel_size=K, stride=stride, group_channels=4 // groups,
                         reduction_ratio=2, rng=np.random.default_rng(3))
    assert layer.groups == groups
    assert_gradients(layer, randn(2, 4, H, W))


def test_involution2d_gradients_eval_mode():
    layer = Involution2d(4, kernel_size=3, stride=2, group_channels=2, reduction_ratio=2)
    layer.forward(randn(2, 4, 4, 6, seed=5).astype(np.float32))  # move the running stats
    assert_gradients(layer.eval(), randn(2, 4, 4, 6))


@pytest.mark.parametrize("relu", [False, True], ids=["alone", "relu"])
def test_batchnorm2d_gradients_train_mode(relu):
    layer = BatchNorm2d(3, relu=relu)
    layer.params["gamma"][:] = [0.5, -1.5, 2.0]
    layer.params["beta"][:] = [0.1, 0.2, -0.3]
    assert_gradients(layer, 3 * randn(2, 3, 4, 5) + 1)


@pytest.mark.parametrize("relu", [False, True], ids=["alone", "relu"])
def test_batchnorm2d_gradients_eval_mode(relu):
    layer = BatchNorm2d(3, relu=relu).eval()
    layer.params["gamma"][:] = [0.5, -1.5, 2.0]
    layer.buffers["running_mean"][:] = [0.3, -0.2, 1.0]
    layer.buffers["running_var"][:] = [0.5, 2.0, 1.5]
    assert_gradients(layer, randn(2, 3, 4, 5))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm2d_relu_is_batchnorm2d_then_relu(training):
    fused, bn = BatchNorm2d(3, dtype=np.float64, relu=True), BatchNorm2d(3, dtype=np.float64)
    apart = Sequential(bn, ReLU())
    for layer in (fused, bn):
        layer.params["beta"][:] = [0.5, -0.5, 0.0]
    for layer in (fused, apart):
        layer.train(training)
    x, dy = randn(2, 3, 4, 5, seed=1), randn(2, 3, 4, 5, seed=2)
    y = fused.forward(x)
    assert 0 < np.count_nonzero(y == 0) < y.size
    np.testing.assert_array_equal(y, apart.forward(x))
    np.testing.assert_allclose(fused.backward(dy), apart.backward(dy), rtol=1e-12, atol=1e-14)
    assert repr(fused).endswith("relu=True)")


def test_batchnorm2d_relu_must_be_a_bool():
    with pytest.raises(TypeError, match="relu must be True or False, got 1"):
        BatchNorm2d(3, relu=1)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_groupnorm2d_gradients(groups):
    layer = GroupNorm2d(4, groups)
    layer.params["gamma"][:] = [0.5, -1.5, 2.0, 1.0]
    layer.params["beta"][:] = [0.1, 0.2, -0.3, 0.0]
    assert_gradients(layer, 3 * randn(2, 4, 3, 5) + 1)


def test_groupnorm2d_normalises_each_image_on_its_own():
    x = randn(3, 4, 5, 5)
    x[1] *= 1000  # one image far larger than the others: BatchNorm would squash the rest
    y = GroupNorm2d(4, 2, dtype=np.float64)(x).reshape(3, 2, -1)
    np.testing.assert_allclose(y.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=2), 1, rtol=1e-4)  # var / (var + eps) under the root


def test_groupnorm2d_refuses_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match="groups \\(3\\) must divide channels \\(4\\)"):
        GroupNorm2d(4, 3)


@pytest.mark.parametrize("K, stride, padding", [(2, None, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_maxpool2d_gradients(K, stride, padding):
    assert_gradients(MaxPool2d(K, stride=stride, padding=padding), distinct_values(2, 2, 5, 6))


@pytest.mark.parametrize("K, stride", [(2, None), (3, 2), (3, 1)])
def test_avgpool2d_gradients(K, stride):
    assert_gradients(AvgPool2d(K, stride=stride), randn(2, 2, 5, 6))


def test_global_avg_pool_gradients():
    assert_gradients(GlobalAvgPool(), randn(2, 3, 4, 5))


def test_static_start_involution_starts_as_the_same_filter_at_every_pixel():
    rng = np.random.default_rng(0)
    layer = Involution2d(8, kernel_size=3, group_channels=4, reduction_ratio=2, static_start=True, rng=rng)
    x = randn(2, 8, 5, 5).astype(np.float32)
    layer.forward(x)
    kernel = layer.last_kernel                              # (N, G, K, K, Ho, Wo)
    expected = layer.span.params["b"].reshape(1, 2, 3, 3, 1, 1)
    assert not layer.span.params["w"].any() and expected.std() > 0.1     # He-normal, fan_in K*K = 9
    assert np.array_equal(kernel, np.broadcast_to(expected, kernel.shape))
    # so the layer is a static grouped filter: channel c uses the filter of group c // 4
    from tinyinvo import ops
    w = np.repeat(layer.span.params["b"].reshape(2, 3, 3), 4, axis=0)
    assert np.allclose(layer.forward(x), ops.depthwise_conv2d_forward(x, w, padding=1), atol=1e-5)
    # and it learns a dynamic part: span.w gets a gradient
    layer.backward(np.ones_like(x))
    assert np.abs(layer.span.grads["w"]).max() > 0


def test_static_start_is_for_involution_nets_only():
    from tinyinvo.models import build

    assert build(block="bottleneck", op="inv7", depth=26, width=16, static_start=True).config["static_start"]
    with pytest.raises(ValueError, match="static_start=True .* it is for op='inv7', got op='dw7'"):
        build(block="bottleneck", op="dw7", depth=26, width=8, static_start=True)
    with pytest.raises(ValueError, match="static_start must be True or False"):
        build(block="bottleneck", op="inv7", depth=26, width=8, static_start="yes")


def test_linear_gradients():
    assert_gradients(Linear(5, 4), randn(3, 5))


def test_linear_runs_its_products_on_one_blas_thread(monkeypatch):
    # On several BLAS threads, BLAS's idle threads would spin on the cores the next layers need
    # (tinyinvo.backend.blas_on_one_thread): forward and backward each take their products there.
    import contextlib

    import tinyinvo.nn.linear as linear_module

    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(linear_module, "blas_on_one_thread", recording)
    layer = Linear(5, 4)
    layer.backward(np.ones_like(layer.forward(randn(3, 5).astype(np.float32))))
    assert len(entered) == 2


def test_relu_gradients():
    assert_gradients(ReLU(), away_from_zero(2, 3, 4, 5))


def test_sequential_gradients():
    rng = np.random.default_rng(0)
    # No bias before a train-mode BatchNorm: BN subtracts the mean, so that bias's gradient is exactly
    # 0 and a relative error against finite-difference noise would be meaningless.
    model = Sequential(Conv2d(2, 3, kernel_size=3, padding=1, bias=False, rng=rng), BatchNorm2d(3), ReLU(),
                       MaxPool2d(2), GlobalAvgPool(), Linear(3, 4, rng=rng))
    assert_gradients(model, randn(2, 2, 4, 6))


def test_add_gradients_residual_and_projection():
    rng = np.random.default_rng(0)
    residual = Add(Sequential(Conv2d(3, 3, kernel_size=3, padding=1, bias=False, rng=rng), BatchNorm2d(3)),
                   Identity())
    assert_gradients(residual, randn(2, 3, 4, 4))
    projection = Add(Sequential(DepthwiseConv2d(3, kernel_size=3, stride=2, padding=1, rng=rng),
                                Conv2d(3, 5, kernel_size=1, rng=rng)),
                     Conv2d(3, 5, kernel_size=1, stride=2, rng=rng))
    assert_gradients(projection, randn(2, 3, 4, 6))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_softmax_cross_entropy_gradient(label_smoothing):
    logits, labels = randn(4, 5), np.array([0, 3, 4, 3])
    errors = gradcheck(
        lambda: np.array(softmax_cross_entropy(logits, labels, label_smoothing)[0]),
        {"logits": logits},
        lambda dy: {"logits": dy * softmax_cross_entropy(logits, labels, label_smoothing)[1]})
    assert errors["logits"] < TOLERANCE


# ---------------------------------------------------------------- forward values

def test_layers_give_the_same_results_on_the_numba_backend():
    rng = np.random.default_rng(0)
    model = Sequential(
        Conv2d(4, 4, kernel_size=3, padding=1, bias=False, rng=rng), BatchNorm2d(4), ReLU(),
        DepthwiseConv2d(4, kernel_size=3, stride=2, padding=1, rng=rng),
        Involution2d(4, kernel_size=3, stride=2, group_channels=2, reduction_ratio=2, rng=rng))
    x = randn(2, 4, 8, 8).astype(np.float32)
    results = {}
    for name in BACKENDS:
        tinyinvo.set_backend(name)
        y, dx = forward_backward(model, x)
        results[name] = {"y": y, "dx": dx, **model.gradients()}
    for key, expected in results["numpy"].items():
        assert results["numba"][key].dtype == np.float32
        np.testing.assert_allclose(results["numba"][key], expected, rtol=1e-4, atol=1e-5, err_msg=key)


def test_involution2d_matches_the_official_layout():
    """out[n, c] = sum_{p,q} h[n, g*K*K + p*K + q] * xpad[n, c, p::stride, q::stride], with h the
    generator output and g = c // group_channels, as in the official involution_naive.py."""
    C, K, stride, group_channels = 4, 3, 2, 2
    layer = Involution2d(C, kernel_size=K, stride=stride, group_channels=group_channels,
                         reduction_ratio=2, dtype=np.float64)
    x = randn(2, C, 4, 6)
    out = layer.forward(x)
    pooled = x.reshape(2, C, 2, 2, 3, 2).mean(axis=(3, 5))  # 2x2 average pooling by hand
    h = layer.span.forward(layer.relu.forward(layer.bn.forward(layer.reduce.forward(pooled))))
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros_like(out)
    for c in range(C):
        g = c // group_channels
        for p in range(K):
            for q in range(K):
                expected[:, c] += h[:, g * K * K + p * K + q] * xpad[:, c, p:p + 4:stride, q:q + 6:stride]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert layer.last_kernel.shape == (2, C // group_channels, K, K, 2, 3)
    np.testing.assert_array_equal(involution_forward(x, layer.last_kernel, stride=stride), out)


def test_maxpool2d_pads_with_minus_infinity_and_routes_ties_to_one_element():
    x = -np.ones((1, 1, 4, 4))  # all negative: zero padding would win every border window
    y = MaxPool2d(3, stride=1, padding=1).forward(x)
    np.testing.assert_array_equal(y, -1.0)
    pool = MaxPool2d(2)
    pool.forward(np.zeros((1, 2, 4, 4)))  # every value ties
    dx = pool.backward(np.ones((1, 2, 2, 2)))
    windows = dx.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    np.testing.assert_array_equal(np.count_nonzero(windows, axis=-1), 1)
    np.testing.assert_array_equal(windows.sum(axis=-1), 1.0)


def test_pools_forward_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(AvgPool2d(2).forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(MaxPool2d(2).forward(x)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(GlobalAvgPool().forward(x), [[7.5]])


def test_add_sums_its_branches_and_checks_shapes():
    rng = np.random.default_rng(0)
    body = Conv2d(3, 3, kernel_size=3, padding=1, rng=rng)
    x = randn(2, 3, 4, 4).astype(np.float32)
    np.testing.assert_allclose(Add(body, Identity()).forward(x), body.forward(x) + x, rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        Add(Conv2d(3, 3, kernel_size=3, rng=rng), Identity()).forward(x)


def test_softmax_cross_entropy_values_and_stability():
    logits, labels = randn(3, 4), np.array([2, 0, 1])
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(-log_probs[np.arange(3), labels].mean(), rel=1e-12)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-15)
    assert softmax_cross_entropy(np.zeros((2, 10)), np.array([1, 7]))[0] == pytest.approx(np.log(10))
    big = 1e4 * randn(3, 4, seed=1)
    for dtype in (np.float32, np.float64):
        big_loss, big_dlogits = softmax_cross_entropy(big.astype(dtype), labels)
        shifted_loss, _ = softmax_cross_entropy((big - 1e4).astype(dtype), labels)
        assert np.isfinite(big_loss) and np.all(np.isfinite(big_dlogits))
        assert big_dlogits.dtype == dtype
        assert big_loss == pytest.approx(shifted_loss, rel=1e-3)


def test_softmax_cross_entropy_label_smoothing_target():
    # With smoothing eps the target is (1 - eps) * onehot + eps / num_classes, so for equal
    # logits the loss is still log(num_classes) and the gradient is (1/4 - target) / N.
    loss, dlogits = softmax_cross_entropy(np.zeros((2, 4)), np.array([1, 2]), label_smoothing=0.2)
    assert loss == pytest.approx(np.log(4))
    np.testing.assert_allclose(dlogits[0], [0.1, -0.3, 0.1, 0.1])


def test_accuracy():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(logits, np.array([1, 0, 0, 1])) == 0.5


# ---------------------------------------------------------------- train / eval and BatchNorm stats

def test_batchnorm2d_running_stats_match_a_hand_computation():
    layer = BatchNorm2d(2, momentum=0.1, dtype=np.float64)
    batches = [randn(3, 2, 4, 5, seed=s) * 2 + s for s in (1, 2)]
    running_mean, running_var = np.zeros(2), np.ones(2)
    for x in batches:
        per_channel = x.transpose(1, 0, 2, 3).reshape(2, -1)
        running_mean = 0.9 * running_mean + 0.1 * per_channel.mean(axis=1)
        running_var = 0.9 * running_var + 0.1 * per_channel.var(axis=1, ddof=1)
        y = layer.forward(x)
        batch_normalised = (x - per_channel.mean(axis=1)[:, None, None]) / np.sqrt(
            per_channel.var(axis=1)[:, None, None] + 1e-5)
        np.testing.assert_allclose(y, batch_normalised, atol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], running_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], running_var, rtol=1e-12)
    x, stats_before_eval = batches[0], layer.state_dict()
    expected = (x - running_mean[:, None, None]) / np.sqrt(running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(layer.eval().forward(x), expected, atol=1e-12)
    for name, array in layer.state_dict().items():  # eval mode leaves the running stats alone
        np.testing.assert_array_equal(array, stats_before_eval[name])


def small_layers():
    """One of each layer with a float32 input, as pytest params (layer, x) named after the layer."""
    rng = np.random.default_rng(0)
    image = randn(2, 4, 4, 6).astype(np.float32)
    cases = [
        (Conv2d(4, 3, kernel_size=3, padding=1, rng=rng), image),
        (DepthwiseConv2d(4, kernel_size=3, stride=2, padding=1, rng=rng), image),
        (Involution2d(4, kernel_size=3, stride=2, group_channels=2, reduction_ratio=2, rng=rng), image),
        (BatchNorm2d(4), image),
        (GroupNorm2d(4, 2), image),
        (ReLU(), image),
        (MaxPool2d(3, stride=2, padding=1), image),
        (AvgPool2d(2), image),
        (GlobalAvgPool(), image),
        (Linear(4, 3, rng=rng), image[:, :, 0, 0]),
        (Sequential(Conv2d(4, 4, kernel_size=1, rng=rng), ReLU()), image),
        (Add(Conv2d(4, 4, kernel_size=1, rng=rng), Identity()), image),
        (Identity(), image),
    ]
    return [pytest.param(layer, x, id=type(layer).__name__) for layer, x in cases]


@pytest.mark.parametrize("layer, x", small_layers())
def test_train_and_eval_differ_only_through_batchnorm(layer, x):
    layer.forward(x)  # one train-mode step moves any running statistics away from (0, 1)
    y_train = layer.train().forward(x)
    y_eval = layer.eval().forward(x)
    has_batchnorm = any(isinstance(sub, BatchNorm2d) for _, sub in layer.named_layers())
    assert all(not sub.training for _, sub in layer.named_layers())
    if has_batchnorm:
        assert not np.allclose(y_train, y_eval)
    else:
        np.testing.assert_array_equal(y_train, y_eval)


@pytest.mark.parametrize("layer, x", small_layers())
def test_float32_in_float32_out_and_grads_match_params(layer, x):
    y, dx = forward_backward(layer, x)
    assert y.dtype == np.float32 and dx.dtype == np.float32 and dx.shape == x.shape
    params, grads = layer.parameters(), layer.gradients()
    assert set(grads) == set(params)
    for name in params:
        assert grads[name].shape == params[name].shape and grads[name].dtype == np.float32


@pytest.mark.parametrize("layer, x", small_layers())
def test_astype_float64_keeps_float64(layer, x):
    layer.astype(np.float64)
    y, dx = forward_backward(layer, x.astype(np.float64))
    assert y.dtype == np.float64 and dx.dtype == np.float64
    assert all(g.dtype == np.float64 for g in layer.gradients().values())
    assert all(b.dtype == np.float64 for _, sub in layer.named_layers() for b in sub.buffers.values())


@pytest.mark.parametrize("layer, x", [case for case in small_layers()
                                      if not isinstance(case.values[0], (Identity, Sequential, Add))])
def test_backward_before_forward_is_an_error(layer, x):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 4, 4, 6), np.float32))


def test_float32_layer_rejects_float64_input():
    for case in small_layers():
        layer, x = case.values
        if layer.parameters():
            with pytest.raises(TypeError, match="dtype"):
                layer.forward(x.astype(np.float64))


# ---------------------------------------------------------------- names, state, initialisation

def test_parameter_names():
    layer = Involution2d(4, kernel_size=3, group_channels=2, reduction_ratio=2)
    assert set(layer.parameters()) == {"reduce.w", "bn.gamma", "bn.beta", "span.w", "span.b"}
    assert set(layer.state_dict()) == set(layer.parameters()) | {"bn.running_mean", "bn.running_var"}
    assert layer.parameters()["span.w"].shape == (2 * 3 * 3, 2, 1, 1)
    model = Sequential(Conv2d(3, 4, bias=False), BatchNorm2d(4), Add(Linear(4, 4), Identity()))
    assert set(model.parameters()) == {"layers.0.w", "layers.1.gamma", "layers.1.beta",
                                       "layers.2.branches.0.w", "layers.2.branches.0.b"}


def test_state_dict_round_trip():
    def build(seed):
        return Sequential(Involution2d(4, kernel_size=3, group_channels=2, reduction_ratio=2,
                                       rng=np.random.default_rng(seed)), BatchNorm2d(4))

    x = randn(2, 4, 4, 4).astype(np.float32)
    source, target = build(1), build(2)
    source.forward(x)  # changes the running statistics
    state = {name: array.copy() for name, array in source.state_dict().items()}
    assert not np.allclose(source.eval().forward(x), target.eval().forward(x))
    target.load_state_dict(state)
    np.testing.assert_array_equal(target.forward(x), source.forward(x))
    for name, array in target.state_dict().items():
        np.testing.assert_array_equal(array, state[name])


def test_init_is_deterministic_and_he_scaled():
    def weights(**kwargs):
        return Conv2d(8, 16, kernel_size=3, **kwargs).params["w"]

    np.testing.assert_array_equal(weights(), weights())  # rng=None means default_rng(0)
    np.testing.assert_array_equal(weights(rng=np.random.default_rng(7)),
                                  weights(rng=np.random.default_rng(7)))
    assert not np.allclose(weights(rng=np.random.default_rng(7)), weights(rng=np.random.default_rng(8)))
    np.testing.assert_allclose(weights(dtype=np.float64), weights(), rtol=1e-6)
    conv = Conv2d(64, 64, kernel_size=3)
    assert conv.params["w"].std() == pytest.approx(np.sqrt(2 / (64 * 9)), rel=0.02)
    np.testing.assert_array_equal(conv.params["b"], 0)
    assert DepthwiseConv2d(256, kernel_size=7).params["w"].std() == pytest.approx(np.sqrt(2 / 49), rel=0.02)
    assert Linear(500, 300).params["w"].std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    first, second = (Involution2d(8, kernel_size=3, group_channels=4) for _ in range(2))
    for name, array in first.parameters().items():
        np.testing.assert_array_equal(array, second.parameters()[name])


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make, error, match", [
    (lambda: Involution2d(6, group_channels=4), ValueError, "divisible by group_channels"),
    (lambda: Involution2d(8, kernel_size=4, group_channels=4), ValueError, "odd"),
    (lambda: Involution2d(4, group_channels=4, reduction_ratio=8), ValueError, "reduction_ratio"),
    (lambda: Involution2d(4, stride=0, group_channels=4), ValueError, "stride"),
    (lambda: Conv2d(3, 4, kernel_size=0), ValueError, "kernel_size"),
    (lambda: Conv2d(3, 4, padding=-1), ValueError, "padding"),
    (lambda: Conv2d(3, True), ValueError, "out_channels"),
    (lambda: DepthwiseConv2d(3, stride=1.5), ValueError, "stride"),
    (lambda: Conv2d(3, 4, rng=42), TypeError, "Generator"),
    (lambda: Linear(3, 4, dtype=np.int64), TypeError, "float32 or float64"),
    (lambda: BatchNorm2d(3, momentum=2.0), ValueError, "momentum"),
    (lambda: MaxPool2d(3, padding=2), ValueError, "padding"),
    (lambda: AvgPool2d(2, stride=0), ValueError, "stride"),
    (lambda: Sequential(Conv2d(3, 4), "relu"), TypeError, "Layer"),
    (lambda: Add(), ValueError, "at least one"),
])
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("layer, x, match", [
    (Involution2d(4, stride=2, group_channels=2, reduction_ratio=2), np.zeros((1, 4, 5, 6), np.float32),
     "divisible by the stride"),
    (Involution2d(4, group_channels=2, reduction_ratio=2), np.zeros((1, 3, 5, 6), np.float32), "channels"),
    (BatchNorm2d(3), np.zeros((2, 4, 3, 3), np.float32), "channels"),
    (BatchNorm2d(3), np.zeros((1, 3, 1, 1), np.float32), "more than one value"),
    (Linear(3, 2), np.zeros((2, 4), np.float32), "features"),
    (Linear(3, 2), np.zeros((2, 3, 1, 1), np.float32), "dimensions"),
    (MaxPool2d(3), np.zeros((1, 1, 2, 2), np.float32), "too small"),
    (Conv2d(3, 2), np.zeros((1, 2, 5, 5), np.float32), "channel mismatch"),
])
def test_bad_inputs(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer.forward(x)


@pytest.mark.parametrize("labels, error, match", [
    (np.array([0, 5]), ValueError, r"in \[0, 5\)"),
    (np.array([-1, 2]), ValueError, r"in \[0, 5\)"),
    (np.array([0, 1, 2]), ValueError, "shape"),
    (np.array([[0], [1]]), ValueError, "shape"),
    (np.array([0.0, 1.0]), TypeError, "integers"),
    (np.array([True, False]), TypeError, "integers"),
])
def test_bad_labels(labels, error, match):
    with pytest.raises(error, match=match):
        softmax_cross_entropy(np.zeros((2, 5)), labels)
    with pytest.raises(error, match=match):
        accuracy(np.zeros((2, 5)), labels)


def test_bad_label_smoothing():
    with pytest.raises(ValueError, match="label_smoothing"):
        softmax_cross_entropy(np.zeros((2, 5)), np.array([0, 1]), label_smoothing=1.0)
