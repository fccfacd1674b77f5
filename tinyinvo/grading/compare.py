"""Comparisons that fail with a message a student can act on: which call, which index, expected vs got.

Checks in ``tinyinvo/grading/tasks/`` build their cases with ``hidden_rng`` (fixed seeds that are not
shown in the notebooks) and compare the student's answer with the reference using these helpers.
"""

import zlib

import numpy as np


class GradingFailure(AssertionError):
    """A wrong answer. Its message is shown to the student as it is."""


def hidden_rng(task_name):
    """A random generator with a fixed seed per task, the same on every machine and every run."""
    return np.random.default_rng(zlib.crc32(f"tinyinvo-grading/{task_name}".encode()))


def describe_call(function_name, **arguments):
    """'f(x: (2, 3, 5, 5) float64, stride=2)': how a case is named in a message (arrays by shape)."""
    def describe(value):
        if isinstance(value, np.ndarray):
            return f"{value.shape} {value.dtype}"
        return repr(value)
    parts = [f"{name}: {describe(value)}" if isinstance(value, np.ndarray) else f"{name}={describe(value)}"
             for name, value in arguments.items()]
    return f"{function_name}({', '.join(parts)})"


def expect_array(got, expected, *, call, what="the result", rtol=1e-5, atol=1e-6):
    """Fail unless ``got`` is an array of ``expected``'s shape whose entries are all close to it.

    call: the case, as written by describe_call; what: which output this is (e.g. "dx").
    """
    expected = np.asarray(expected)
    if not isinstance(got, np.ndarray):
        raise GradingFailure(f"{call}: {what} should be a numpy array of shape {expected.shape}, "
                             f"got {type(got).__name__}")
    if got.shape != expected.shape:
        raise GradingFailure(f"{call}: {what} has shape {got.shape}, expected {expected.shape}")
    if not np.all(np.isfinite(got)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0])
        raise GradingFailure(f"{call}: {what} contains {got[index]} at index {index}")
    close = np.isclose(got, expected, rtol=rtol, atol=atol)
    if not close.all():
        index = tuple(int(i) for i in np.argwhere(~close)[0])
        raise GradingFailure(
            f"{call}: {what} is wrong at index {index}: expected {expected[index]:.6g}, got {got[index]:.6g} "
            f"({int((~close).sum())} of {close.size} entries differ)")


def expect_equal(got, expected, *, call, what="the result"):
    """Fail unless ``got == expected`` (exact: ints, strings, tuples)."""
    if got != expected:
        raise GradingFailure(f"{call}: {what} should be {expected!r}, got {got!r}")


def expect_unchanged(before, after, *, call, name):
    """Fail if the student's function modified its input array ``name`` in place."""
    if not np.array_equal(before, after):
        raise GradingFailure(f"{call}: your function changed its input {name} in place; work on a copy")
