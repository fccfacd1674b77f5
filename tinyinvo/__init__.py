"""tinyinvo: convolution, depthwise convolution and involution from scratch, in NumPy and Numba."""

import os

# Idle OpenMP threads (Numba's parallel kernels) sleep instead of spinning on a core. Spinning
# threads steal the cores that BLAS, or another process on a small laptop, needs next; measured on
# 2 cores shared with a second job, a training step went from 25 s to 0.6 s; alone on 2 cores, a
# resnet26 step (Numba kernels between BLAS calls) ran 10x slower with spinning. Read when the OpenMP
# runtime starts (the first parallel kernel), so it is set here, at import. Your own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tinyinvo.backend import get_backend, set_backend
from tinyinvo.gradcheck import gradcheck, numerical_gradient, rel_error

__version__ = "0.1.0"

__all__ = ["get_backend", "set_backend", "gradcheck", "numerical_gradient", "rel_error"]
