"""Checkpoints: everything a training run needs to continue, in one ``.npz`` file.

The file is a plain NumPy archive, readable with ``np.load(path, allow_pickle=False)`` (no pickle,
so opening a checkpoint cannot run code). Its entries:

- ``model/<name>``:     every parameter and BatchNorm buffer (``model.state_dict()``)
- ``optimizer/<name>``: the momentum buffers (``SGD.state_dict()``)
- ``config``:    JSON: the run's settings, enough to rebuild the model and reload the data
- ``progress``:  JSON: epoch, step, position within the epoch, running sums of the epoch so far
- ``rng``:       JSON: the epoch generator's ``bit_generator.state``
- ``history``:   JSON: the metric rows of the finished epochs

JSON records are stored as 0-d string arrays. Python writes floats to JSON with enough digits to
read back the same float, so the history survives a round trip bit for bit.

Writing is atomic (``tinyinvo.plumbing.atomic_write``): the archive goes to a temporary file in
the same directory, which then replaces the old checkpoint in one ``os.replace``. A crash, a
Ctrl-C or a full disk while writing leaves the previous checkpoint as it was, never a half-written
file.
"""

import json
import os

import numpy as np

from tinyinvo.plumbing import atomic_write

ARRAY_GROUPS = ("model", "optimizer")
RECORDS = ("config", "progress", "rng", "history")


def save_checkpoint(path, contents):
    """Write ``contents`` to ``path`` atomically.

    Inputs:
    - path: file name, conventionally ``.../checkpoint.npz``
    - contents: dict with the keys ARRAY_GROUPS (each a dict name -> ndarray) and RECORDS
      (each anything ``json.dumps`` accepts)
    """
    expected = set(ARRAY_GROUPS) | set(RECORDS)
    if set(contents) != expected:
        raise KeyError(f"checkpoint contents need exactly the keys {sorted(expected)}, "
                       f"got {sorted(contents)}")
    entries = {f"{group}/{name}": np.asarray(array)
               for group in ARRAY_GROUPS for name, array in contents[group].items()}
    for record in RECORDS:
        entries[record] = np.array(json.dumps(contents[record]))
    atomic_write(path, lambda file: np.savez(file, **entries))


def load_checkpoint(path):
    """Read a checkpoint written by ``save_checkpoint``: returns the same dict of contents."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    contents = {group: {} for group in ARRAY_GROUPS}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            group, _, name = key.partition("/")
            if group in ARRAY_GROUPS:
                contents[group][name] = archive[key]
            else:
                contents[key] = json.loads(archive[key].item())
    missing = [record for record in RECORDS if record not in contents]
    if missing:
        raise ValueError(f"{path} is not a tinyinvo checkpoint: it has no {missing}")
    return contents
