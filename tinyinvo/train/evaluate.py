"""Evaluation of a model on a labelled set of images, and the progress bars of training.

    evaluate(model, data.x_test, data.y_test, mean=data.mean, std=data.std)["accuracy"]
"""

import math

import numpy as np
from tqdm.auto import tqdm

from tinyinvo.data import iterate_batches
from tinyinvo.nn import softmax_cross_entropy


def evaluate(model, x, y, batch_size=256, *, mean, std, progress=False):
    """Loss and accuracy of ``model`` in eval mode (BatchNorm uses its running statistics).

    Inputs:
    - model: a Layer mapping (N, C, H, W) images to (N, num_classes) logits
    - x: uint8 images (N, C, H, W); y: int64 labels (N,)
    - batch_size: images per forward pass
    - mean, std: per-channel statistics (C,) of the training set, to normalise x
    - progress: show a progress bar
    Returns a dict: loss (mean cross-entropy), accuracy, per_class_accuracy (num_classes,) array
    (nan for a class without test images), predictions (N,) int array.
    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    loss_sum, predictions = 0.0, []
    batches = iterate_batches(x, y, batch_size, shuffle=False, augment=False, mean=mean, std=std)
    try:
        for xb, yb in progress_bar(progress, batches, total=math.ceil(len(y) / batch_size), desc="test"):
            logits = model.forward(xb)
            loss, _ = softmax_cross_entropy(logits, yb)
            loss_sum += loss * len(yb)
            predictions.append(logits.argmax(axis=1))
    finally:
        model.train(was_training)
    predictions = np.concatenate(predictions)
    num_classes = logits.shape[1]
    hits = np.bincount(y[predictions == y], minlength=num_classes)
    counts = np.bincount(y, minlength=num_classes)
    per_class = np.divide(hits, counts, out=np.full(num_classes, np.nan), where=counts > 0)
    return dict(loss=loss_sum / len(y), accuracy=float(np.mean(predictions == y)),
                per_class_accuracy=per_class, predictions=predictions)


def progress_bar(show, iterable=None, **kwargs):
    """A tqdm bar over batches, or none when ``show`` is False. ``disable`` is passed only to turn the
    bar off, so the environment's ``TQDM_DISABLE=1`` (and other TQDM_* settings) still apply."""
    if not show:
        kwargs["disable"] = True
    return tqdm(iterable, unit="batch", leave=False, **kwargs)
