"""The classification loss (softmax cross-entropy) and accuracy."""

import numpy as np

from tinyinvo.ops.checks import check_float_array


def _check_labels(logits, labels):
    """logits must be (N, num_classes) floats and labels N ints in [0, num_classes)."""
    check_float_array("logits", logits, 2, "(N, num_classes)")
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers (class indices), got dtype {labels.dtype}")
    N, num_classes = logits.shape
    if labels.shape != (N,):
        raise ValueError(f"labels must have shape (N,) = ({N},) to match logits {logits.shape}, "
                         f"got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}) for {num_classes} classes, got "
                         f"values from {labels.min()} to {labels.max()}")
    return labels


def softmax_cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean softmax cross-entropy over a batch, and its gradient.

    p = softmax(logits[n]);  loss = -1/N sum_n sum_k t[n, k] * log p[n, k]
    with target t = (1 - eps) * onehot(labels[n]) + eps / num_classes (eps = label_smoothing).
    log p is computed as logits - max - log(sum(exp(logits - max))), which never overflows.

    Inputs:
    - logits: (N, num_classes) float32 or float64
    - labels: (N,) ints in [0, num_classes)
    - label_smoothing: float in [0, 1)
    Returns (loss, dlogits): a Python float and the gradient (N, num_classes) of the mean loss,
    dlogits = (p - t) / N, in the dtype of logits.
    """
    labels = _check_labels(logits, labels)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    N, num_classes = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    targets = np.full_like(logits, label_smoothing / num_classes)
    targets[np.arange(N), labels] += 1 - label_smoothing
    loss = -float(np.sum(targets * log_probs)) / N
    dlogits = (np.exp(log_probs) - targets) / N
    return loss, dlogits


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is at the label: logits (N, num_classes), labels (N,)."""
    labels = _check_labels(logits, labels)
    return float(np.mean(logits.argmax(axis=1) == labels))
