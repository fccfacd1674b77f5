"""The ReLU activation, y = max(x, 0)."""

import numpy as np

from tinyinvo.nn.layer import Layer


class ReLU(Layer):
    """y = max(x, 0) elementwise; dx = dy where x > 0, else 0. Works for any shape, no params."""

    def forward(self, x):
        self.cache = x > 0
        return np.maximum(x, 0)

    def backward(self, dy):
        positive = self.saved_for_backward()
        return dy * positive
