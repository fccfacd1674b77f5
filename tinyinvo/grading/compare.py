"""Comparisons that fail with a message a student can act on: which call, which index, expected vs got.

Checks in ``tinyinvo/grading/tasks/`` build their cases with ``hidden_rng`` (from the instructor's
secret when there is one) and compare the student's answer with the reference using these helpers.
"""

import hashlib
import os

import numpy as np

SECRET_VARIABLE = "TINYINVO_GRADING_SEED"  # the instructor's secret; the student's kernel never sees it


class GradingFailure(AssertionError):
    """A wrong answer. Its message is shown to the student as it is; ``hint`` names the likely mistake
    (the class summary counts students by hint)."""

    def __init__(self, message, hint=""):
        super().__init__(message)
        self.hint = hint


class StudentCrash(Exception):
    """The student's code raised: the message names the case and the student's line.

    error: 'IndexError: index 3 is out of bounds ...', the exception alone (checks read it for hints);
    hint: the likely mistake, when a check recognised one.
    """

    def __init__(self, message, error="", hint=""):
        super().__init__(message)
        self.error, self.hint = error, hint


def hidden_rng(task_name):
    """A random generator per task: from the secret in $TINYINVO_GRADING_SEED when an instructor
    grades (``grade --seed``), else from a fixed seed, the same on every machine (students' checks)."""
    secret = os.environ.get(SECRET_VARIABLE, "")
    digest = hashlib.sha256(f"tinyinvo-grading/{secret}/{task_name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def describe_call(function_name, **arguments):
    """'f(x: (2, 3, 5, 5) float64, stride=2)': how a case is named in a message (arrays by shape)."""
    def describe(value):
        if isinstance(value, np.ndarray):
            return f"{value.shape} {value.dtype}"
        return "a function" if callable(value) else repr(value)
    parts = [f"{name}: {describe(value)}" if isinstance(value, np.ndarray) else f"{name}={describe(value)}"
             for name, value in arguments.items()]
    return f"{function_name}({', '.join(parts)})"


TOLERANCE = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-5),  # float32 sums in another order
             np.dtype(np.float64): dict(rtol=1e-5, atol=1e-6)}


def expect_array(got, expected, *, call, what="the result", rtol=None, atol=None):
    """Fail unless ``got`` is an array of ``expected``'s shape and dtype whose entries are all close to it.

    call: the case, as written by describe_call; what: which output this is (e.g. "dx");
    rtol, atol: the tolerance (default: TOLERANCE of expected's dtype).
    """
    expected = np.asarray(expected)
    default = TOLERANCE.get(expected.dtype, TOLERANCE[np.dtype(np.float64)])
    rtol, atol = default["rtol"] if rtol is None else rtol, default["atol"] if atol is None else atol
    if not isinstance(got, np.ndarray):
        raise GradingFailure(f"{call}: {what} should be a numpy array of shape {expected.shape}, "
                             f"got {type(got).__name__}")
    if got.shape != expected.shape:
        raise GradingFailure(f"{call}: {what} has shape {got.shape}, expected {expected.shape}")
    if got.dtype != expected.dtype and np.issubdtype(expected.dtype, np.floating):
        raise GradingFailure(f"{call}: {what} has dtype {got.dtype}, expected {expected.dtype} (the input's "
                             f"dtype): allocate it with dtype=x.dtype (np.zeros(shape, dtype=x.dtype), "
                             f"np.zeros_like(x)); np.zeros(shape) alone is float64", hint="lost the input's dtype")
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
