"""The elementwise sum of two arrays, a + b: a residual block's shortcut and branch meet here.

Its gradient passes dy to both inputs unchanged, so there is no backward function; the Add layer
uses this same function backward, to sum its branches' gradients. The Numba twin is
``tinyinvo.ops.numba_backend.add``.
"""


def add(a, b):
    """a, b: the same shape and dtype -> a + b, a new array."""
    return a + b
