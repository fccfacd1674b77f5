"""The ReLU activation, y = max(x, 0)."""

from tinyinvo.nn.layer import Layer
from tinyinvo.ops import relu_backward, relu_forward


class ReLU(Layer):
    """y = max(x, 0) elementwise; dx = dy where x > 0, else 0. Works for any shape, no params.

    Backward needs only the output (y > 0 exactly where x > 0), so that is what the layer keeps.
    """

    def forward(self, x):
        y = relu_forward(x)
        self.cache = y
        return y

    def backward(self, dy):
        y = self.saved_for_backward()
        return relu_backward(dy, y)
