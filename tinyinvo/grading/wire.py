"""Values as data only: how the grader and the student's kernel hand each other arguments and results.

A message is one ``.npz`` file: its arrays, plus one string entry ``__json__`` that holds the rest
(numbers, strings, None, and tuples, lists and dicts of them) with each array replaced by its key.
It is read with ``allow_pickle=False``, so a message can carry no code and no objects: whatever
the student's kernel writes, the grader reads numbers. An array passed twice (e.g. ``x`` and a
function of ``x``) arrives as one array, so the kernel sees the same object twice, as the check did.
"""

import importlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

MAX_BYTES = 1 << 28  # 256 MiB: far above any hidden case, and the grader does not read beyond it


class NotData:
    """What a value that is not data (a function, a custom object, an object array) arrives as."""

    def __init__(self, description):
        self.description = description

    def __repr__(self):
        return f"<{self.description}, which is not data>"


class KernelCall(tuple):
    """``KernelCall(module, name, *args)``: the value ``module.name(*args)``, computed where it is used.

    A check passes it to a student's function that needs a callable argument (e.g. the f of
    numerical_gradient): the callable is then built next to the student's code, which calls it.
    """

    def __new__(cls, module, name, *args):
        return super().__new__(cls, (module, name, args))

    def resolve(self):
        module, name, args = self
        return getattr(importlib.import_module(module), name)(*args)


def encode(value, arrays, seen):
    """``value`` as JSON-ready data; its arrays go into ``arrays`` by key (``seen``: id -> key)."""
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            return {"not_data": "a numpy array of dtype object"}
        if id(value) not in seen:
            seen[id(value)] = f"a{len(arrays)}"
            arrays[seen[id(value)]] = np.asarray(value)
        return {"array" if isinstance(value, np.ndarray) else "scalar": seen[id(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, KernelCall):
        module, name, args = value
        return {"kernel_call": [module, name, [encode(arg, arrays, seen) for arg in args]]}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [encode(item, arrays, seen) for item in value]}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: encode(item, arrays, seen) for key, item in value.items()}}
    if isinstance(value, NotData):
        return {"not_data": value.description}
    return {"not_data": f"a {type(value).__name__}"}


def decode(data, arrays):
    """The inverse of ``encode``: ``arrays`` maps keys to the arrays read from the message."""
    if not isinstance(data, dict):
        return data
    (kind, content), = data.items()
    if kind == "array":
        return arrays[content]
    if kind == "scalar":
        return arrays[content][()]
    if kind in ("tuple", "list"):
        items = [decode(item, arrays) for item in content]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {key: decode(item, arrays) for key, item in content.items()}
    if kind == "kernel_call":
        module, name, args = content
        return KernelCall(module, name, *(decode(arg, arrays) for arg in args))
    if kind == "not_data":
        return NotData(str(content))
    raise ValueError(f"unknown kind of value {kind!r}")


def write_message(path, value):
    """Write ``value`` to ``path`` (an .npz file) atomically: a reader never sees half a message."""
    arrays, seen = {}, {}
    tree = json.dumps(encode(value, arrays, seen))
    path = Path(path)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, __json__=np.array(tree), **arrays)
    os.replace(partial, path)


def read_message(path):
    """The value written by ``write_message``; ValueError if the file is not such a message."""
    with zipfile.ZipFile(path) as archive:  # refuse a message that unpacks to more than MAX_BYTES
        if sum(member.file_size for member in archive.infolist()) > MAX_BYTES:
            raise ValueError(f"{path} holds more than {MAX_BYTES} bytes")
    with np.load(path, allow_pickle=False) as message:
        arrays = {key: message[key] for key in message.files}
    tree = json.loads(str(arrays.pop("__json__")))
    return decode(tree, arrays)
