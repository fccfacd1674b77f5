"""The ReLU kernels of both backends: the same values to the bit, NaN kept, and the layer on odd inputs."""

import numpy as np
import pytest

from tinyinvo.nn import ReLU
from tinyinvo.ops.numba_backend import relu as numba_relu
from tinyinvo.ops.numpy_backend import relu as numpy_relu

BACKENDS = [numpy_relu, numba_relu]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5, 4), (1, 1, 1, 1)])
def test_backends_agree_bitwise_with_the_definition(shape, dtype):
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    x.flat[0] = 0.0                                   # the kink itself: y = 0, no gradient
    for backend in BACKENDS:
        y = backend.relu_forward(x)
        dx = backend.relu_backward(dy, y)
        assert y.dtype == dtype and dx.dtype == dtype and y.shape == dx.shape == shape
        assert np.array_equal(y, np.maximum(x, 0)), backend.__name__
        assert np.array_equal(dx, np.where(x > 0, dy, 0)), backend.__name__


@pytest.mark.parametrize("backend", BACKENDS, ids=["numpy", "numba"])
def test_nan_passes_through_the_forward(backend):
    # a diverging run must show NaN in its loss, not have it hidden as 0 by the activation
    y = backend.relu_forward(np.array([np.nan, -1.0, 2.0], np.float32))
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == 2


def test_layer_takes_a_non_contiguous_input():
    x = np.arange(-12, 12, dtype=np.float32).reshape(4, 6)
    layer = ReLU()
    y = layer.forward(x.T)                            # a transposed view, not C-contiguous
    assert np.array_equal(y, np.maximum(x.T, 0))
    dx = layer.backward(np.ones((6, 4), np.float32)[:, ::-1])
    assert np.array_equal(dx, (x.T > 0).astype(np.float32))
