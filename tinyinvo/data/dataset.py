"""The Dataset container: uint8 images and int64 labels for a train and a test split.

Images are stored as uint8 (N, 3, 32, 32) in NCHW layout, the smallest exact form (CIFAR-10's
50,000 training images take 150 MB this way, 600 MB as float32). They are converted to
normalised float32 one mini-batch at a time (see ``tinyinvo.data.batches``).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(eq=False)
class Dataset:
    """A labelled image data set with a train and a test split.

    Fields:
    - x_train: uint8 array of shape (N, 3, H, W), the training images (NCHW, values 0..255)
    - y_train: int64 array of shape (N,), labels in 0 .. len(classes) - 1
    - x_test, y_test: the same for the test split
    - classes: list of class names; label k means classes[k]
    - name: a short name such as "shapes" or "cifar10"
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list
    name: str

    def __post_init__(self):
        for split in ("train", "test"):
            check_split(f"x_{split}", getattr(self, f"x_{split}"),
                        f"y_{split}", getattr(self, f"y_{split}"), len(self.classes))

    @cached_property
    def _mean_and_std(self):
        return channel_statistics(self.x_train)

    @property
    def mean(self):
        """Per-channel mean of the training images in [0, 1] units: float32 array of shape (3,)."""
        return self._mean_and_std[0]

    @property
    def std(self):
        """Per-channel standard deviation of the training images in [0, 1] units: float32 (3,)."""
        return self._mean_and_std[1]

    def subset(self, n_train, n_test=None, seed=0):
        """A smaller copy with ``n_train`` training and ``n_test`` test examples (None: all of them).

        Examples are picked class by class in turns (one of each class, then a second of each, ...),
        in an order shuffled by ``seed``, so the classes are as balanced as the data allows and the
        same seed always gives the same subset. The picked examples keep their original order.
        """
        rng = np.random.default_rng(seed)
        train = pick_balanced(self.y_train, n_train, rng, "n_train")
        test = pick_balanced(self.y_test, n_test, rng, "n_test")
        return Dataset(self.x_train[train], self.y_train[train], self.x_test[test], self.y_test[test],
                       list(self.classes), self.name)

    def hold_out(self, n_validation, seed=0):
        """A copy whose test split is ``n_validation`` training images, class-balanced, and whose
        training split is the rest: a validation split for tuning, so the test set stays untouched.

        The images are picked as in ``subset`` (classes in turns, order shuffled by ``seed``); the same
        seed always holds out the same images. The original test split is dropped from the copy.
        """
        rng = np.random.default_rng(seed)
        held = pick_balanced(self.y_train, n_validation, rng, "validation")
        kept = np.setdiff1d(np.arange(len(self.y_train)), held)
        return Dataset(self.x_train[kept], self.y_train[kept], self.x_train[held], self.y_train[held],
                       list(self.classes), self.name)

    def __repr__(self):
        return (f"Dataset({self.name!r}: {len(self.y_train)} train / {len(self.y_test)} test images "
                f"of shape {self.x_train.shape[1:]}, {len(self.classes)} classes)")


def check_split(x_name, x, y_name, y, num_classes):
    """Raise ValueError unless x is uint8 (N, 3, H, W) and y is int64 (N,) with labels in range."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{x_name} must be a uint8 array of shape (N, 3, H, W), got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
        raise ValueError(f"{y_name} must be an int64 array of shape ({len(x)},), got "
                         f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{y_name} must hold labels 0..{num_classes - 1}, got {y.min()}..{y.max()}")


def channel_statistics(x, chunk=1000):
    """Per-channel mean and standard deviation of uint8 images x (N, C, H, W), in [0, 1] units.

    Sums of pixel values and of their squares are accumulated ``chunk`` images at a time, so no
    float copy of the whole array is made (CIFAR-10 would need 1.2 GB in float64). The sums are
    integers below 2**53, so float64 holds them exactly and var = E[x^2] - E[x]^2 loses nothing.
    Returns (mean, std), float32 arrays of shape (C,).
    """
    total, total_of_squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].astype(np.float64)
        total += part.sum(axis=(0, 2, 3))
        total_of_squares += (part * part).sum(axis=(0, 2, 3))
    pixels = x.shape[0] * x.shape[2] * x.shape[3]  # per channel
    mean = total / pixels / 255
    variance = total_of_squares / pixels / 255 ** 2 - mean ** 2
    return mean.astype(np.float32), np.sqrt(variance).astype(np.float32)


def pick_balanced(labels, n, rng, name):
    """Indices (sorted) of ``n`` examples taken from each class in turns, in a random order.

    Inputs:
    - labels: int64 array of shape (N,)
    - n: how many to pick, 0 <= n <= N, or None for all of them
    - rng: numpy Generator that decides which examples of each class come first
    Returns an int64 array of shape (n,).
    """
    if n is None:
        n = len(labels)
    if not 0 <= n <= len(labels):
        raise ValueError(f"{name} must be between 0 and {len(labels)} (the split's size), got {n}")
    shuffled = rng.permutation(len(labels))
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]  # grouped by class, random within
    counts = np.bincount(labels)
    class_start = np.repeat(np.cumsum(counts) - counts, counts)
    rank_in_class = np.arange(len(labels)) - class_start  # 0 for each class's first pick, 1, 2, ...
    turns = by_class[np.argsort(rank_in_class, kind="stable")]
    return np.sort(turns[:n])
