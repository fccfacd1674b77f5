"""Gradient checking: compare a hand-written backward pass with central finite differences.

For a scalar loss L = sum(f(inputs) * dy) with a fixed random dy, the gradient of L with respect
to an input is exactly what a backward pass returns when handed dy. We estimate it numerically:

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2 h)

Use float64: with float32 the rounding error of L swamps the difference for any useful h.
"""

import numpy as np


def rel_error(a, b):
    """Largest elementwise relative error, max |a - b| / max(1e-8, |a| + |b|) (as in CS231n)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(loss, x, h=1e-5):
    """Central-difference gradient of the no-argument function ``loss()`` with respect to array ``x``.

    ``loss`` must read ``x`` when called: each entry of ``x`` is nudged in place by +-h and restored.
    Costs 2 * x.size calls of ``loss``, so keep the arrays small.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical gradients need float64 arrays, got {x.dtype}")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = loss()
        x[index] = old - h
        minus = loss()
        x[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


def gradcheck(forward, inputs, backward, *, h=1e-5, seed=0):
    """Relative error of analytic gradients against finite differences, per input.

    Inputs:
    - forward: no-argument function returning the output array; it must read the arrays in ``inputs``
    - inputs: dict name -> float64 array (these are perturbed in place and restored)
    - backward: function dy -> dict name -> gradient, for the names in ``inputs``
    Returns dict name -> rel_error(analytic, numerical). For a correct backward pass in float64 they
    are typically < 1e-8; tinyinvo's tests require < 1e-6.

    Example, for an op:
        errors = gradcheck(lambda: conv2d_forward(x, w), {"x": x, "w": w},
                           lambda dy: dict(zip(["x", "w"], conv2d_backward(dy, x, w))))
    """
    rng = np.random.default_rng(seed)
    y = forward()
    dy = rng.standard_normal(y.shape)
    analytic = {name: np.array(g, dtype=np.float64) for name, g in backward(dy).items()}
    missing = set(inputs) - set(analytic)
    if missing:
        raise KeyError(f"backward returned no gradient for {sorted(missing)}")

    def loss():
        return float(np.sum(forward() * dy))

    return {name: rel_error(analytic[name], numerical_gradient(loss, x, h))
            for name, x in inputs.items()}
