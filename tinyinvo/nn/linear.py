"""The fully connected layer, y = x @ w.T + b (the classifier at the end of a network).

Its matrix products are small (a batch of feature vectors times a few classes), and run on one
BLAS thread: on several, BLAS's threads would go on spinning on the cores that the next layers'
kernels need (``tinyinvo.backend.blas_on_one_thread``).
"""

import numpy as np

from tinyinvo.backend import blas_on_one_thread
from tinyinvo.nn.init import as_generator, check_int, float_dtype, kaiming_normal
from tinyinvo.nn.layer import Layer
from tinyinvo.ops.checks import check_float_array, check_same_dtype


class Linear(Layer):
    """Affine map of feature vectors: y[n, o] = sum_c x[n, c] * w[o, c] + b[o].

    Inputs: in_features Ci, out_features Co, rng (numpy Generator, None -> default_rng(0)), dtype.
    Params: w (Co, Ci), He-normal with fan_in = Ci; b (Co,) zeros.
    """

    def __init__(self, in_features, out_features, rng=None, dtype=np.float32):
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        Co, Ci = self.out_features, self.in_features
        self.params = {"w": kaiming_normal((Co, Ci), Ci, as_generator(rng), dtype),
                       "b": np.zeros(Co, float_dtype(dtype))}

    def forward(self, x):
        """x: (N, Ci) -> y: (N, Co)."""
        check_float_array("x", x, 2, "(N, Ci)")
        check_same_dtype("w", self.params["w"], x)
        if x.shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) got x with "
                             f"{x.shape[1]} features (x.shape={x.shape})")
        self.cache = x
        with blas_on_one_thread():
            return x @ self.params["w"].T + self.params["b"]

    def backward(self, dy):
        """dy: (N, Co) -> dx: (N, Ci); sets grads["w"] = dy.T @ x (Co, Ci), grads["b"] = sum_n dy."""
        x = self.saved_for_backward()
        with blas_on_one_thread():
            self.grads = {"w": dy.T @ x, "b": dy.sum(axis=0)}
            return dy @ self.params["w"]

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}"
