"""Mini-batches for training and evaluation: shuffle, augment, normalise, one batch at a time.

Reproducibility: every random choice (the shuffle order, crop offsets, flips) is drawn from the
Generator you pass as ``rng``, in a fixed order: the permutation when the first batch is
requested, then the crop offsets and the flips of each batch in turn. So an epoch is fully
determined by the Generator's state when it starts: save ``rng.bit_generator.state`` in a
checkpoint at the start of an epoch, restore it, and the resumed run sees exactly the same batches.
"""

import numpy as np

from tinyinvo.data.augment import normalize, random_crop, random_flip


def iterate_batches(x, y, batch_size, *, rng=None, shuffle=True, augment=False, drop_last=False,
                    mean, std):
    """One epoch of mini-batches.

    Inputs:
    - x: uint8 images of shape (N, C, H, W)
    - y: int64 labels of shape (N,)
    - batch_size: examples per batch; the last batch is smaller unless drop_last=True drops it
    - rng: numpy Generator, required when shuffle or augment is on
    - shuffle: visit the examples in a random order (each one exactly once per epoch)
    - augment: apply random_crop (pad 4) and random_flip to each batch
    - mean, std: per-channel statistics of shape (C,) for normalize (use the training set's)
    Yields (x_batch, y_batch): float32 (B, C, H, W) normalised images and int64 (B,) labels.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if (shuffle or augment) and not isinstance(rng, np.random.Generator):
        raise ValueError("shuffle=True or augment=True needs rng=np.random.default_rng(seed), so that "
                         "the batches can be reproduced; pass shuffle=False, augment=False to evaluate")
    # the checks above run at call time; the batches are made lazily by the generator below
    return _batches(x, y, batch_size, rng, shuffle, augment, drop_last, mean, std)


def _batches(x, y, batch_size, rng, shuffle, augment, drop_last, mean, std):
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    end = len(x) - len(x) % batch_size if drop_last else len(x)
    for start in range(0, end, batch_size):
        idx = order[start:start + batch_size]
        images = x[idx]
        if augment:
            images = random_flip(random_crop(images, pad=4, rng=rng), rng)
        yield normalize(images, mean, std), y[idx]
