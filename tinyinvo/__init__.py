"""tinyinvo: convolution, depthwise convolution and involution from scratch, in NumPy and Numba."""

from tinyinvo.backend import get_backend, set_backend
from tinyinvo.gradcheck import gradcheck, numerical_gradient, rel_error

__version__ = "0.1.0"

__all__ = ["get_backend", "set_backend", "gradcheck", "numerical_gradient", "rel_error"]
