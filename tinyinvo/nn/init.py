"""Helpers every layer uses: a seeded random generator, He (Kaiming) initialisation, argument checks.

Weights start random but reproducible: each constructor takes ``rng``, a ``numpy.random.Generator``.
Pass the same generator to every layer of a model to get a different (but repeatable) draw per
layer; leave it as None to get ``np.random.default_rng(0)``, so the same layer is built every run.
"""

import numpy as np

from tinyinvo.ops.checks import FLOAT_DTYPES


def as_generator(rng):
    """``rng`` itself if it is a Generator; None gives a fresh ``np.random.default_rng(0)``."""
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)) "
                        f"or None, got {type(rng).__name__}")
    return rng


def float_dtype(dtype):
    """``dtype`` as a numpy dtype, which must be float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def kaiming_normal(shape, fan_in, rng, dtype=np.float32):
    """He et al. (2015) initialisation for layers followed by a ReLU.

    w ~ Normal(0, std^2) with std = sqrt(2 / fan_in), which keeps the variance of the activations
    roughly constant from layer to layer.

    Inputs:
    - shape: tuple, the weight shape, e.g. (Co, Ci, K, K)
    - fan_in: number of inputs summed into one output (Ci*K*K for a convolution, Ci for Linear)
    - rng: numpy.random.Generator
    - dtype: float32 or float64
    Returns an array of ``shape``. The draw is made in float64 and then cast, so float32 and float64
    layers built from the same seed hold the same numbers (up to rounding).
    """
    std = np.sqrt(2.0 / fan_in)
    return (std * rng.standard_normal(shape)).astype(float_dtype(dtype))


def check_int(name, value, minimum=1):
    """``value`` must be an int >= ``minimum`` (bools are rejected: True is not a size)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)

