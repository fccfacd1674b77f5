"""Running a student's function: the only place where the student's code runs while a task is checked.

A check never holds the student's function itself but a ``StudentFunction``: calling it runs the
student's code through ``run_call``, which returns an outcome as data (the result, or which
exception, where, in which case). ``LocalFunction`` runs it in this process (``check()`` in a
notebook); the grader's ``RemoteFunction`` (notebook.py) asks the student's kernel to run it, where
``serve`` answers. Either way the comparison is made by the check, outside the student's reach.

The reference is off-limits inside a graded function. While the student's function runs, a
profiler (``sys.setprofile``) watches every Python call: a call from code outside tinyinvo into a
function defined in tinyinvo's source (``tinyinvo.ops.conv2d_forward``, a private helper, anything)
marks the call as using the reference, unless the check itself handed that function over (the
reference ``pad_input`` given to a student's ``conv_forward_naive``). Switching the profiler off is
seen too. Numba-compiled code makes no Python calls, so a Numba function's global names are checked
instead. Plain numpy is never affected.
"""

import copy
import importlib
import inspect
import os
import resource
import signal
import sys
import sysconfig
import threading
import traceback
import types
from pathlib import Path

import numpy as np

import tinyinvo
from tinyinvo.grading.compare import GradingFailure, StudentCrash, describe_call
from tinyinvo.grading.wire import KernelCall, read_message, write_message

TINYINVO = str(Path(tinyinvo.__file__).resolve().parent) + os.sep
LIBRARIES = tuple(str(Path(sysconfig.get_paths()[key]).resolve()) + os.sep for key in ("stdlib", "purelib", "platlib"))
TRACING = (sys.setprofile, sys.settrace, threading.setprofile, threading.settrace)


def in_tinyinvo(code):
    path = code.co_filename
    return path.startswith(TINYINVO) or (not path.startswith(("/", "<")) and os.path.abspath(path).startswith(TINYINVO))


def tinyinvo_name(code):
    """'tinyinvo.ops.conv2d_forward' for a code object of tinyinvo's source."""
    module = Path(os.path.abspath(code.co_filename)[len(TINYINVO):]).with_suffix("").parts
    module = module[:-1] if module[-1] == "__init__" else module
    return ".".join(("tinyinvo", *module, code.co_qualname))


class ReferenceWatch:
    """A profile function that records the first use of tinyinvo's code by the student's code.

    allowed: code objects the check handed over (they, and whatever they call, may run).
    entry: the frame that calls the student's function (a graded function that *is* a tinyinvo
    function, e.g. ``conv_forward_naive = ops.conv2d_forward``, is called from there).
    """

    def __init__(self, allowed, entry):
        self.allowed, self.entry, self.used = allowed, entry, None

    def __call__(self, frame, event, arg):
        if self.used is not None:
            return
        if event == "call":
            code, caller = frame.f_code, frame.f_back
            if in_tinyinvo(code) and code not in self.allowed and (
                    caller is None or caller is self.entry or not in_tinyinvo(caller.f_code)):
                self.used = tinyinvo_name(code)
        elif event == "c_call" and any(arg is function for function in TRACING) and not in_tinyinvo(frame.f_code):
            self.used = f"{arg.__module__}.{arg.__name__} (it switched off this check)"


def numba_reference(function):
    """The tinyinvo name a Numba-compiled function refers to (checked by name, not by watching), or None."""
    py_func = getattr(function, "py_func", None)
    if not isinstance(py_func, types.FunctionType):
        return None
    codes, names = [py_func.__code__], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    for name in sorted(names):
        value = py_func.__globals__.get(name)
        origin = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(origin, str) and origin.split(".")[0] == "tinyinvo":
            return f"{origin} (as {name})"
    module = getattr(py_func, "__module__", None) or ""
    return f"{module}.{py_func.__qualname__}" if module.split(".")[0] == "tinyinvo" else None


def student_line(error):
    """'in conv_forward_naive, line 14: `y[n, o] = ...`': the innermost line of the student's code in
    the exception's traceback (not tinyinvo's, numpy's or Python's), or ''."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = str(Path(frame.filename).resolve()) if os.path.isabs(frame.filename) else frame.filename
        if not path.startswith((TINYINVO, *LIBRARIES)):
            source = f": `{frame.line.strip()}`" if frame.line else ""
            return f"in {frame.name}, line {frame.lineno}{source}"
    return ""


def describe_case(name, function, args, kwargs):
    """The call as describe_call writes it, with the argument names of the student's signature."""
    try:
        named = inspect.signature(function).bind(*args, **kwargs).arguments
    except (TypeError, ValueError):  # no signature, or the call does not fit it (it will crash, named)
        named = {**{f"arg{index}": value for index, value in enumerate(args)}, **kwargs}
    return describe_call(name, **named)


def run_call(name, function, args, kwargs, references=None, watch=True):
    """Call the student's ``function(*args, **kwargs)`` and return the outcome as a dict of data.

    - references: {global name: function} that the function sees in place of its own (isolated())
    - watch: whether calling tinyinvo's code counts as using the reference
    The outcome has "case" (the call, described) and one of: "result" (with "after": the array
    arguments after the call), "not_implemented", "crash" (with "where"), "reference".
    """
    references = references or {}
    args = [value.resolve() if isinstance(value, KernelCall) else value for value in args]
    kwargs = {key: value.resolve() if isinstance(value, KernelCall) else value for key, value in kwargs.items()}
    handed_over = [*references.values(), *(value for value in [*args, *kwargs.values()] if callable(value))]
    allowed = {getattr(value, "__code__", None) for value in handed_over}
    if references and isinstance(function, types.FunctionType):
        clone = types.FunctionType(function.__code__, {**function.__globals__, **references}, function.__name__,
                                   function.__defaults__, function.__closure__)
        clone.__kwdefaults__ = function.__kwdefaults__
        function = clone
    outcome = {"case": describe_case(name, function, args, kwargs)}
    used = numba_reference(function) if watch else None
    if used:
        return {**outcome, "reference": used}
    profiler = ReferenceWatch(allowed, sys._getframe()) if watch else None
    before = sys.getprofile()
    try:
        sys.setprofile(profiler)
        result = function(*args, **kwargs)
    except NotImplementedError as error:
        return {**outcome, "not_implemented": str(error)}
    except Exception as error:  # the student's code crashed: say how and where, never crash the check
        return {**outcome, "crash": f"{type(error).__name__}: {error}", "where": student_line(error)}
    finally:
        tampered = watch and sys.getprofile() is not profiler
        sys.setprofile(before)
    if watch and (profiler.used or tampered):
        return {**outcome, "reference": profiler.used or "sys.setprofile (it switched off this check)"}
    after = {str(index): value for index, value in enumerate(args) if isinstance(value, np.ndarray)}
    after.update({key: value for key, value in kwargs.items() if isinstance(value, np.ndarray)})
    return {**outcome, "result": result, "after": after}


class StudentFunction:
    """A student's function as a check sees it: call it like the function; it raises NotImplementedError
    for a stub, StudentCrash when the student's code crashed, GradingFailure when it used the reference."""

    def __init__(self, name, references=None):
        self.name, self.references = name, dict(references or {})

    def isolated(self, references):
        """The same function, seeing ``references`` (name -> module-level function) in place of its own."""
        other = copy.copy(self)
        other.references = {**self.references, **references}
        return other

    def __call__(self, *args, **kwargs):
        outcome = self.run(args, kwargs)
        case = outcome["case"]
        if "not_implemented" in outcome:
            raise NotImplementedError(outcome["not_implemented"])
        if "crash" in outcome:
            where = f" ({outcome['where']})" if outcome.get("where") else ""
            raise StudentCrash(f"{case} crashed: {outcome['crash']}{where}", outcome["crash"])
        if "reference" in outcome:
            raise GradingFailure(f"{case} calls {outcome['reference']}: a graded function must "
                                 f"compute its answer itself (plain numpy is fine), so this task scores 0",
                                 hint="called tinyinvo's reference")
        for key, after in outcome["after"].items():  # what the student's code did to its array arguments
            original = args[int(key)] if key.isdigit() and int(key) < len(args) else kwargs.get(key)
            if isinstance(original, np.ndarray) and isinstance(after, np.ndarray) and after is not original \
                    and after.shape == original.shape and after.dtype == original.dtype:
                np.copyto(original, after)
        return outcome["result"]


class LocalFunction(StudentFunction):
    """A function of this process (``check()`` in a notebook, the tests)."""

    def __init__(self, name, function, watch=True):
        super().__init__(name)
        self.function, self.watch = function, watch

    def run(self, args, kwargs):
        return run_call(self.name, self.function, args, kwargs, self.references, self.watch)

    def inspect(self, inspector):
        """``inspector(function)``: facts about the function itself (e.g. is it compiled by Numba)."""
        return inspector(self.function)


def wrap_namespace(namespace, names, watch=True):
    """{name: value} for ``names`` found in ``namespace``, callables wrapped as LocalFunction."""
    return {name: LocalFunction(name, namespace[name], watch) if callable(namespace[name]) else namespace[name]
            for name in names if name in namespace}


# ---- in the student's kernel: answering the grader ----
class CpuTimeExceeded(Exception):
    """Raised in the student's code when the task's CPU time is used up (SIGXCPU)."""


def on_cpu_limit(signum, frame):
    raise CpuTimeExceeded("the task's CPU time limit was reached (an endless loop?)")


def cpu_seconds_used():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def virtual_memory_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def set_limits(limits):
    """Bound this process: total CPU seconds and memory once (hard limits, which can only go down);
    this call's CPU seconds each time (the soft limit: SIGXCPU, which raises CpuTimeExceeded)."""
    if not getattr(set_limits, "done", False):
        signal.signal(signal.SIGXCPU, on_cpu_limit)
        for which, budget in ((resource.RLIMIT_CPU, cpu_seconds_used() + limits["cpu_total"]),
                              (resource.RLIMIT_AS, virtual_memory_bytes() + limits["memory_bytes"])):
            hard = resource.getrlimit(which)[1]
            limit = int(budget) + 1 if hard == resource.RLIM_INFINITY else min(hard, int(budget) + 1)
            resource.setrlimit(which, (limit, limit))
        set_limits.done = True
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (min(int(cpu_seconds_used() + limits["cpu_seconds"]) + 1, hard), hard))


def serve(namespace, request_path, response_path):
    """Answer one request of the grader (read from ``request_path``), writing the answer as data.

    Requests: {"describe": [names]} -> {name: "function" | ("value", value) | "missing"};
    {"call": name, "args", "kwargs", "references": {name: (module, qualname)}, "limits"} -> run_call's
    outcome; {"inspect": name, "inspector": (module, qualname)} -> what the inspector returns.
    """
    request = read_message(request_path)
    if "describe" in request:
        answer = {name: ("missing",) if name not in namespace else ("function",) if callable(namespace[name])
                  else ("value", namespace[name]) for name in request["describe"]}
    elif "inspect" in request:
        answer = by_name(request["inspector"])(namespace[request["inspect"]])
    else:
        references = {key: by_name(where) for key, where in request["references"].items()}
        set_limits(request["limits"])
        try:
            answer = run_call(request["call"], namespace[request["call"]], request["args"], request["kwargs"],
                              references)
        finally:
            soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
    write_message(response_path, answer)


def by_name(where):
    """The module-level object ``(module, qualname)`` names."""
    module, qualname = where
    value = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def where_defined(function):
    """(module, qualname) of a module-level function, as ``by_name`` finds it again."""
    return (function.__module__, function.__qualname__)


__all__ = ["StudentFunction", "LocalFunction", "run_call", "serve", "wrap_namespace"]
