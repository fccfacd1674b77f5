"""Dense 2-D convolution in NumPy: im2col, then one matrix product per image.

After im2col the K x K window under each output pixel is a column of length Ci*K*K, and each output
channel is a row of w of that same length, so the whole convolution is (Co, Ci*K*K) @ (Ci*K*K, Ho*Wo).
"""

import numpy as np

from tinyinvo.ops.checks import output_size
from tinyinvo.ops.windows import col2im, im2col


def conv2d_forward(x, w, *, stride=1, padding=0):
    """y[n, o, i, j] = sum_{c,p,q} w[o, c, p, q] * xpad[n, c, i*stride + p, j*stride + q]

    Inputs:
    - x: (N, Ci, H, W)
    - w: (Co, Ci, K, K), same dtype as x
    - stride, padding: ints
    Returns y: (N, Co, Ho, Wo), Ho = (H + 2*padding - K) // stride + 1.
    """
    N, _, H, W = x.shape
    Co, Ci, K, _ = w.shape
    cols = im2col(x, K, stride, padding)      # (N, Ci*K*K, Ho*Wo)
    y = w.reshape(Co, Ci * K * K) @ cols      # (N, Co, Ho*Wo)
    return y.reshape(N, Co, output_size(H, K, stride, padding), output_size(W, K, stride, padding))


def conv2d_backward(dy, x, w, *, stride=1, padding=0):
    """Gradients of conv2d_forward.

    dw[o, c, p, q] = sum_{n,i,j} dy[n, o, i, j] * xpad[n, c, i*stride + p, j*stride + q]
    dx: each window gets dwindows[n, c, p, q, i, j] = sum_o w[o, c, p, q] * dy[n, o, i, j], added back by col2im.

    Inputs:
    - dy: (N, Co, Ho, Wo), upstream gradient
    - x, w, stride, padding: as in conv2d_forward
    Returns (dx, dw): (N, Ci, H, W) and (Co, Ci, K, K).
    """
    N, Co, Ho, Wo = dy.shape
    _, Ci, K, _ = w.shape
    dy_cols = dy.reshape(N, Co, Ho * Wo)
    cols = im2col(x, K, stride, padding)                        # (N, Ci*K*K, Ho*Wo)
    dw = np.einsum("nol,nkl->ok", dy_cols, cols, optimize=True)  # sum over images n and pixels l
    dcols = w.reshape(Co, Ci * K * K).T @ dy_cols               # (N, Ci*K*K, Ho*Wo)
    dx = col2im(dcols.reshape(N, Ci, K, K, Ho, Wo), x.shape, stride, padding)
    return dx, dw.reshape(w.shape)
