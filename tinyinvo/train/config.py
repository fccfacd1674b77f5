"""The settings of a training run (``TrainConfig``), the range each one must lie in, and the
random generators a run's seed makes.

Reproducibility. Every random choice comes from the run's seed: the initial weights from the
generator (seed, INIT_STREAM), the order and augmentation of epoch e's batches from the generator
(seed, EPOCH_STREAM, e). The batches of an epoch can therefore be made again at any time, which is
how a run continues from a checkpoint, even one saved in the middle of an epoch.
"""

import math
from dataclasses import dataclass, fields

import numpy as np

INIT_STREAM, EPOCH_STREAM = 0, 1  # the two uses of the seed: initial weights, batches of an epoch


def make_rng(seed, *stream):
    """A Generator for one use of the run's seed, e.g. ``make_rng(seed, EPOCH_STREAM, epoch)``.

    Different streams give independent generators; the same stream always gives the same one.
    """
    return np.random.default_rng([seed, *stream])


@dataclass
class TrainConfig:
    """The settings of a training run. The defaults suit a small network on a CPU."""

    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1              # peak learning rate, reached at the end of the warm-up
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4   # on weights only, see tinyinvo.train.optim
    warmup_epochs: float = 1.0   # linear warm-up length, then cosine decay to 0
    label_smoothing: float = 0.0
    augment: bool = True         # random crop and flip of the training images
    seed: int = 0

    def __post_init__(self):
        for field in fields(self):
            check_setting(field.name, getattr(self, field.name))


# setting: (lowest allowed, the bound it must stay below or None). A NaN or infinite learning rate
# trains to the end and saves a NaN checkpoint; a momentum >= 1 makes the steps grow without end.
LIMITS = dict(epochs=(1, None), batch_size=(1, None), lr=(0, None), momentum=(0, 1),
              weight_decay=(0, None), warmup_epochs=(0, None), label_smoothing=(0, 1), seed=(0, None))


def check_setting(name, value):
    """Return ``value`` if it is a valid value of TrainConfig's field ``name``, else raise
    ValueError naming the field and what was expected."""
    kind = next(field.type for field in fields(TrainConfig) if field.name == name)
    if kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value
    low, below = LIMITS[name]
    expected = (f"{'an integer' if kind is int else 'a finite number'} >= {low}"
                + ("" if below is None else f" and < {below}"))
    number_types = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if (not isinstance(value, number_types) or isinstance(value, bool)
            or not math.isfinite(value) or value < low or (below is not None and value >= below)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value
