"""Data augmentation and normalisation for uint8 image batches in NCHW layout.

The two standard CIFAR-10 augmentations (He et al., 2016): a random crop after zero padding (a
random shift of up to ``pad`` pixels) and a random horizontal flip. Both draw one random choice
per image from the Generator you pass in, so the same Generator state gives the same batch.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def random_crop(x, pad=4, *, rng):
    """Zero-pad each image by ``pad`` pixels on every side, then crop a random H x W window.

    Inputs:
    - x: uint8 array of shape (N, C, H, W)
    - pad: int >= 0, the largest shift in pixels
    - rng: numpy Generator; one offset pair (dy, dx) in 0..2*pad is drawn per image
    Returns a new uint8 array of shape (N, C, H, W).
    """
    N, C, H, W = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # every possible crop, as a view: windows[n, c, dy, dx] is the H x W crop at offset (dy, dx)
    windows = sliding_window_view(padded, (H, W), axis=(2, 3))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, N))
    return windows[np.arange(N), :, dy, dx]  # (N, C, H, W): one crop per image


def random_flip(x, rng):
    """Mirror each image left-right with probability 1/2.

    Inputs:
    - x: array of shape (N, C, H, W)
    - rng: numpy Generator; one coin flip is drawn per image
    Returns a new array of the same shape and dtype.
    """
    flip = rng.random(len(x)) < 0.5
    return np.where(flip[:, None, None, None], x[:, :, :, ::-1], x)


def normalize(x, mean, std):
    """Scale uint8 images to [0, 1], then standardise each channel: (x / 255 - mean[c]) / std[c].

    Inputs:
    - x: uint8 array of shape (N, C, H, W)
    - mean, std: arrays of shape (C,) in [0, 1] units (Dataset.mean, Dataset.std)
    Returns a float32 array of shape (N, C, H, W).
    """
    mean = np.asarray(mean, dtype=np.float32)[:, None, None]
    std = np.asarray(std, dtype=np.float32)[:, None, None]
    return (x.astype(np.float32) / 255 - mean) / std
