"""ReLU, the readable NumPy reference: y = max(x, 0), dx = dy where y > 0, else 0.

The Numba twin is ``tinyinvo.ops.numba_backend.relu``. The backward pass needs only the output
y (y > 0 exactly where x > 0), which the next layer keeps anyway, so no mask is stored.
"""

import numpy as np


def relu_forward(x):
    """x: any shape -> y = max(x, 0), same shape and dtype (NaN stays NaN)."""
    return np.maximum(x, 0)


def relu_backward(dy, y):
    """dy, y: the same shape (y the forward's output) -> dx = dy * (y > 0)."""
    return np.where(y > 0, dy, 0).astype(dy.dtype, copy=False)
