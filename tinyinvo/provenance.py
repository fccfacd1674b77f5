"""Where a result came from: the versions of tinyinvo, NumPy and Numba, and the git commit.

    provenance()   # {'tinyinvo': '0.1.0', 'numpy': '2.4.6', 'numba': '0.68.1', 'commit': '1a2b3c4d5e6f'}

Recorded with every run (its config.json, the study's results.csv), so a number can always be traced
to the code that made it. The commit is that of the checkout tinyinvo was imported from, with a
"+dirty" suffix when it has uncommitted changes; None when tinyinvo is not in a git checkout (an
installed wheel) or git is missing.
"""

import functools
import os
import subprocess

import numba
import numpy

import tinyinvo


def provenance():
    """A dict of strings: tinyinvo, numpy, numba versions and commit (None when unknown)."""
    return dict(tinyinvo=tinyinvo.__version__, numpy=numpy.__version__, numba=numba.__version__,
                commit=git_commit())


@functools.lru_cache(maxsize=1)
def git_commit():
    """The short commit of the checkout holding tinyinvo ("+dirty" if changed), or None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(tinyinvo.__file__)))
    if not os.path.exists(os.path.join(root, ".git")):
        return None

    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tinyinvo")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
