"""The ReLU activation, y = max(x, 0)."""

import numpy as np

from tinyinvo.backend import resolve
from tinyinvo.nn.layer import Layer


class ReLU(Layer):
    """y = max(x, 0) elementwise; dx = dy where x > 0, else 0. Works for any shape, no params.

    Backward needs only the output (y > 0 exactly where x > 0), so that is what the layer keeps.
    """

    def forward(self, x):
        y = resolve().relu_forward(np.ascontiguousarray(x))
        self.cache = y
        return y

    def backward(self, dy):
        y = self.saved_for_backward()
        return resolve().relu_backward(np.ascontiguousarray(dy), y)
