"""``python -m tinyinvo demo``: build a small RedNet and its fair baseline, run one forward and
backward pass on a batch of random images, and print what flows through them."""

import time

import numpy as np

from tinyinvo.backend import get_backend, set_backend
from tinyinvo.models import PRESETS, build
from tinyinvo.nn import softmax_cross_entropy
from tinyinvo.plumbing import blame
from tinyinvo.train.flags import positive_int


def add_arguments(parser):
    parser.add_argument("--models", nargs="+", default=["rednet26", "dwnet26", "resnet26"],
                        choices=sorted(PRESETS), metavar="NAME",
                        help="presets to build (default: %(default)s)")
    parser.add_argument("--width", type=positive_int, default=16,
                        help="base width (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="images per batch (default: %(default)s)")
    parser.add_argument("--backend", choices=["numpy", "numba"], default=None,
                        help="op backend (default: numba when installed)")


def run(args):
    if args.backend:
        set_backend(args.backend)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, args.batch_size)
    print(f"backend: {get_backend()}, batch: {x.shape}, width: {args.width}")
    print(f"{'model':<10} {'params':>10} {'logits':>12} {'loss':>8} {'|grad|':>10} {'fwd+bwd':>10}")
    for name in args.models:
        with blame("--width"):  # e.g. a width the involution's groups do not divide
            model = build(name, width=args.width)
        model.forward(x[:2])  # first call compiles the Numba kernels (cached on disk afterwards)
        model.backward(np.zeros((2, 10), np.float32))
        start = time.perf_counter()
        logits = model.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, labels)
        model.backward(dlogits)
        seconds = time.perf_counter() - start
        grad_norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2))
                                for g in model.gradients().values()))
        print(f"{name:<10} {model.num_params():>10,} {str(logits.shape):>12} {loss:>8.4f} "
              f"{grad_norm:>10.4f} {seconds * 1000:>8.0f}ms")
    print("loss is about ln(10) = 2.30 for an untrained model; `python -m tinyinvo train` trains one.")
