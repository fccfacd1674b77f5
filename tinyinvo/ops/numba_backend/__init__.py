"""The Numba backend: fast, fused, multi-threaded kernels with the same signatures as ``numpy_backend``.

- ``depthwise.py`` and ``involution.py``: direct kernels that never build the K*K-times unfolded
  input, SIMD over long unit-stride rows: depthwise takes one channel of 8 or 16 images at a time,
  side by side; involution one (image, group) at a time, over a flat row-major index.
- ``conv.py``: Numba im2col / col2im around a BLAS matrix product (1x1 convs: the matrix product only).
- ``team.py``: runs the convs' pieces of work (batches of images, runs of channels) on all threads.
- ``batchnorm.py``: BatchNorm2d's train-mode forward/backward, one thread per channel.
- ``relu.py``: ReLU's forward/backward, one pass over memory on every core.
- ``add.py``: a + b (a residual block's sum), one pass over memory on every core.
- ``planes.py``: the zero-padded, polyphase plane buffers and the work split they all share.
- ``simd.py``: two LLVM intrinsics for depthwise: an 8x8 transposition in SIMD registers (its
  batch-last copies), and output rows summed over all taps in registers.
- ``threads.py``: starts Numba's threads with idle threads that sleep, even next to PyTorch.

All kernels are compiled on first use, once per dtype (float32, float64), and cached on disk
(``cache=True``), so later runs start fast. Results are bitwise reproducible run to run: every
output element is written by one thread, and every sum runs in a fixed order.
Debugging: ``NUMBA_DISABLE_JIT=1`` runs the same code as plain (slow) Python.
"""

from tinyinvo.ops.numba_backend.add import add
from tinyinvo.ops.numba_backend.batchnorm import batchnorm_backward, batchnorm_forward
from tinyinvo.ops.numba_backend.conv import conv2d_backward, conv2d_forward
from tinyinvo.ops.numba_backend.depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from tinyinvo.ops.numba_backend.involution import involution_backward, involution_forward
from tinyinvo.ops.numba_backend.relu import relu_backward, relu_forward
from tinyinvo.ops.numba_backend import threads
# GroupNorm: NumPy's reductions over contiguous groups already stream memory once per pass; a
# Numba loop would do the same passes, so the backend shares the reference.
from tinyinvo.ops.numpy_backend.groupnorm import group_norm_backward, group_norm_forward

threads.start_threads()  # before the first kernel: idle threads must sleep (see threads.py)

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "involution_forward", "involution_backward",
    "batchnorm_forward", "batchnorm_backward",
    "relu_forward", "relu_backward",
    "add",
    "group_norm_forward", "group_norm_backward",
]
