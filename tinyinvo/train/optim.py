"""Stochastic gradient descent with momentum, the optimizer of the ResNet/RedNet papers.

One step, for every parameter p with gradient g (the PyTorch convention):

    g = g + weight_decay * p          (only for "decayed" parameters, see below)
    v = momentum * v + g              (v: the momentum buffer, zeros at the start)
    d = g + momentum * v  if nesterov else  v
    p = p - lr * d

Which parameters get weight decay is decided by their number of dimensions: weights of
convolutions (Co, Ci, K, K), depthwise convolutions (C, K, K) and linear layers (Co, Ci) have
ndim >= 2 and are decayed; BatchNorm's gamma and beta and every bias have ndim == 1 and are not
(shrinking them towards 0 does not regularise anything, it only fights the normalisation).
"""

import numpy as np


def is_decayed(param):
    """True for weights (ndim >= 2), False for BatchNorm parameters and biases (ndim == 1)."""
    return param.ndim >= 2


class SGD:
    """SGD with momentum, optional Nesterov momentum and weight decay.

    Inputs:
    - params: dict name -> array, e.g. ``model.parameters()``; updated in place by ``step``
    - lr: default learning rate (``step`` can be given another one, e.g. from a schedule)
    - momentum: 0 for plain SGD, 0.9 usually
    - nesterov: use Nesterov momentum (needs momentum > 0)
    - weight_decay: L2 coefficient, applied to the parameters with ndim >= 2 only
    """

    def __init__(self, params, lr=0.1, *, momentum=0.9, nesterov=False, weight_decay=0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0, got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.velocity = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads, lr=None):
        """Update every parameter in place from ``grads`` (dict name -> array, same keys)."""
        lr = self.lr if lr is None else lr
        missing = sorted(set(self.params) - set(grads))
        if missing:
            raise KeyError(f"no gradient for {missing[:5]}: call model.backward before step")
        for name, p in self.params.items():
            g = grads[name]
            if self.weight_decay and is_decayed(p):
                g = g + self.weight_decay * p
            v = self.velocity[name]
            v *= self.momentum
            v += g
            direction = g + self.momentum * v if self.nesterov else v
            p -= lr * direction

    def state_dict(self):
        """The momentum buffers, dict name -> array (what a checkpoint must keep)."""
        return dict(self.velocity)

    def load_state_dict(self, state):
        """Copy saved momentum buffers in place (same names and shapes as the parameters)."""
        if set(state) != set(self.velocity):
            raise KeyError("optimizer state does not fit these parameters: "
                           f"missing {sorted(set(self.velocity) - set(state))[:5]}, "
                           f"unexpected {sorted(set(state) - set(self.velocity))[:5]}")
        for name, v in self.velocity.items():
            v[...] = state[name]
