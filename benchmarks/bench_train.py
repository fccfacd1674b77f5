"""Benchmark whole training steps: tinyinvo vs the same networks in PyTorch CPU (when importable).

    python benchmarks/bench_train.py [--models rednet26 resnet26 dwnet26] [--width 16]
        [--batch-size 128] [--threads 2] [--steps S] [--json PATH]

One training step = forward, softmax cross-entropy, backward, SGD update (momentum 0.9, weight
decay 5e-4), on random 32x32 images. The PyTorch twin of each model is made from the tinyinvo model
itself, layer by layer (same blocks, same parameter count, same initial weights: the script checks
both), with the paper's reference involution (unfold, multiply by the kernel, sum over K*K) and
autograd for every backward pass. Images/s is the median over S timed steps after one warm-up step;
the frameworks take turns, one step each per round, so that a busy spell of the shared machine hits
both alike.

Then a few more tinyinvo steps run with every layer timed, and the step time is split by layer type
(conv 1x1, conv KxK, depthwise, involution op, BatchNorm, ReLU/Add/pool, linear + loss, optimizer),
each layer counted without the layers inside it: this is where the time goes.
Results go to a JSON file (default benchmarks/results/train.json).

Like the Trainer, the script first makes glibc keep freed memory for reuse (tinyinvo.memory); that
holds for the whole process, PyTorch included. --default-malloc leaves malloc as it is.
"""

import os
import sys

from common import benchmark_parser, pin_threads


def parse_args():
    parser = benchmark_parser(__doc__, "train.json")
    parser.add_argument("--models", nargs="+", default=["rednet26", "resnet26", "dwnet26"])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and framework (default 5)")
    parser.add_argument("--no-torch", action="store_true", help="time tinyinvo only")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc as it is instead of keeping freed memory for "
                             "reuse as the Trainer does (tinyinvo.memory; affects both frameworks)")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    pin_threads(ARGS.threads)

import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tinyinvo import nn as tnn  # noqa: E402
from tinyinvo.backend import set_num_threads  # noqa: E402
from tinyinvo.interop import to_torch  # noqa: E402
from tinyinvo.memory import keep_freed_memory  # noqa: E402
from tinyinvo.models import build  # noqa: E402
from tinyinvo.nn import softmax_cross_entropy  # noqa: E402
from tinyinvo.train.optim import SGD  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:
    torch = None

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
CATEGORIES = ("conv 1x1", "conv KxK", "depthwise", "involution op", "batchnorm", "relu/add/pool",
              "linear + loss", "optimizer")


# ---------------------------------------------------------------- tinyinvo


class TinyinvoStep:
    """One tinyinvo training step on fixed inputs; ``run()`` does forward, loss, backward, update."""

    def __init__(self, model, x, labels):
        self.model, self.x, self.labels = model, x, labels
        self.optimizer = SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def run(self, clock=None):
        logits = self.model.forward(self.x)
        start = time.perf_counter()
        loss, dlogits = softmax_cross_entropy(logits, self.labels)
        loss_seconds = time.perf_counter() - start
        self.model.backward(dlogits)
        start = time.perf_counter()
        self.optimizer.step(self.model.gradients())
        if clock is not None:
            clock.totals["linear + loss"] += loss_seconds
            clock.totals["optimizer"] += time.perf_counter() - start
        return loss


def category(layer):
    """The row of the breakdown table that a layer's own time goes to."""
    if isinstance(layer, tnn.Conv2d):
        return "conv 1x1" if layer.kernel_size == 1 else "conv KxK"
    if isinstance(layer, tnn.DepthwiseConv2d):
        return "depthwise"
    if isinstance(layer, tnn.Involution2d):  # its own time: the op; the generator's layers count apart
        return "involution op"
    if isinstance(layer, tnn.BatchNorm2d):
        return "batchnorm"
    if isinstance(layer, tnn.Linear):
        return "linear + loss"
    return "relu/add/pool"  # ReLU, Add, Identity, pools, Sequential's own (tiny) time


class LayerClock:
    """Times every layer's forward and backward, each without the time of the layers it calls.

    It replaces ``forward``/``backward`` on each layer instance by a timed version (``detach``
    puts the originals back). A stack of running timers gives each layer its own ("self") time:
    when a child finishes, its total time is taken off its parent's.
    """

    def __init__(self, model):
        self.model = model
        self.totals = defaultdict(float)
        self.children_seconds = [0.0]   # one entry per running timer: its children's time so far
        for _, layer in model.named_layers():
            for method in ("forward", "backward"):
                setattr(layer, method, self._timed(getattr(layer, method), category(layer)))

    def _timed(self, function, name):
        def timed(argument):
            self.children_seconds.append(0.0)
            start = time.perf_counter()
            result = function(argument)
            seconds = time.perf_counter() - start
            self.totals[name] += seconds - self.children_seconds.pop()
            self.children_seconds[-1] += seconds
            return result
        return timed

    def detach(self):
        for _, layer in self.model.named_layers():
            del layer.forward, layer.backward   # the instance attributes: back to the class methods


# ---------------------------------------------------------------- the PyTorch twin


class TorchStep:
    """The same training step in PyTorch: forward, cross-entropy, autograd backward, SGD update."""

    def __init__(self, model, x, labels):
        self.model = to_torch(model, inplace_relu=True).train()   # in-place ReLUs, as torchvision's
        self.x, self.labels = torch.from_numpy(x), torch.from_numpy(labels)
        # Weight decay on the weights only, as tinyinvo's SGD (BatchNorm's gamma/beta and biases: none)
        decayed = [q for q in self.model.parameters() if q.ndim >= 2]
        others = [q for q in self.model.parameters() if q.ndim < 2]
        self.optimizer = torch.optim.SGD([dict(params=decayed, weight_decay=WEIGHT_DECAY),
                                          dict(params=others, weight_decay=0.0)], lr=LR, momentum=MOMENTUM)

    def num_params(self):
        return sum(q.numel() for q in self.model.parameters())

    def logits(self):
        with torch.no_grad():
            return self.model(self.x).numpy()

    def run(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.labels)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


# ---------------------------------------------------------------- main


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def prepare(name, args, rng):
    """The steps to time for one model: {"tinyinvo": step, "pytorch": step}, twins checked."""
    x = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, args.batch_size)
    model = build(name, width=args.width)
    steps = {"tinyinvo": TinyinvoStep(model, x, labels)}
    if torch is not None and not args.no_torch:
        twin = TorchStep(model, x, labels)
        if twin.num_params() != model.num_params():
            raise AssertionError(f"{name}: PyTorch twin has {twin.num_params()} params, "
                                 f"tinyinvo {model.num_params()}")
        # same weights, same batch statistics: the logits must agree before any step
        reference = model.forward(x)
        np.testing.assert_allclose(twin.logits(), reference, rtol=1e-3, atol=1e-3 * np.abs(reference).max())
        steps["pytorch"] = twin
    return steps, model.num_params()


def breakdown(step, repeats=2):
    """Seconds per step by layer type, the median of ``repeats`` timed steps."""
    clock = LayerClock(step.model)
    runs = []
    for _ in range(repeats):
        clock.totals = defaultdict(float)
        step.run(clock)
        runs.append(dict(clock.totals))
    clock.detach()
    return {name: float(np.median([run.get(name, 0.0) for run in runs])) for name in CATEGORIES}


def main():
    args = ARGS
    set_num_threads(args.threads)
    kept = not args.default_malloc and keep_freed_memory()
    if torch is not None:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"batch {args.batch_size}, 32x32, width {args.width}, threads {args.threads} (Numba, BLAS, PyTorch), "
          f"{args.steps} timed steps, load average {load:.1f} on {os.cpu_count()} cores, freed memory "
          f"{'kept for reuse' if kept else 'returned to the system'} (tinyinvo.memory)", flush=True)
    rng = np.random.default_rng(0)
    prepared = {name: prepare(name, args, rng) for name in args.models}
    frameworks = [f for f in ("tinyinvo", "pytorch") if f in prepared[args.models[0]][0]]
    times = {(name, f): [] for name in args.models for f in frameworks}
    for name, (steps, _) in prepared.items():   # warm-up: compile, allocate, fill caches
        for step in steps.values():
            step.run()
    for round_ in range(args.steps):
        print(f"round {round_ + 1}/{args.steps}", flush=True)
        for name, (steps, _) in prepared.items():
            for framework, step in steps.items():
                times[name, framework].append(seconds(step.run))
    parts = {name: breakdown(steps["tinyinvo"]) for name, (steps, _) in prepared.items()}
    rows = report(args, prepared, frameworks, times, parts)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(dict(batch_size=args.batch_size, width=args.width, threads=args.threads, steps=args.steps,
                       load_average_start=load, load_average_end=os.getloadavg()[0],
                       numba=numba.__version__, numpy=np.__version__,
                       torch=None if torch is None else torch.__version__,
                       cpu=platform.processor() or platform.machine(), results=rows), file, indent=1)
    print(f"\nwritten to {args.json}")


def report(args, prepared, frameworks, times, parts):
    rows = []
    print(f"\nimages/s (median of {args.steps} steps; step = forward + loss + backward + SGD update)\n")
    header = f"{'model':<10}{'params':>9}{'tinyinvo':>10}{'PyTorch':>10}{'tinyinvo/PyTorch':>18}"
    print(header)
    print("-" * len(header))
    for name, (_, num_params) in prepared.items():
        rate = {f: args.batch_size / float(np.median(times[name, f])) for f in frameworks}
        ratio = rate["tinyinvo"] / rate["pytorch"] if "pytorch" in rate else None
        rows.append(dict(model=name, params=num_params, images_per_s=rate, tinyinvo_over_pytorch=ratio,
                         step_seconds={f: times[name, f] for f in frameworks},
                         tinyinvo_breakdown_s=parts[name]))
        torch_column = f"{rate['pytorch']:10.1f}{ratio:18.2f}" if ratio else f"{'-':>10}{'-':>18}"
        print(f"{name:<10}{num_params:>9}{rate['tinyinvo']:10.1f}{torch_column}")
    print("\ntinyinvo step time by layer type, ms (each layer's own time; median of 2 timed steps)\n")
    header = f"{'layer type':<15}" + "".join(f"{name:>11}" for name in prepared)
    print(header)
    print("-" * len(header))
    for part in CATEGORIES + ("total",):
        cells = []
        for name in prepared:
            ms = 1e3 * (sum(parts[name].values()) if part == "total" else parts[name][part])
            share = ms / (1e3 * sum(parts[name].values()))
            cells.append(f"{ms:6.0f} {100 * share:2.0f}%" if part != "total" else f"{ms:11.0f}")
        print(f"{part:<15}" + "".join(f"{cell:>11}" for cell in cells))
    if torch is None:
        print("\nPyTorch is not importable: install it with `pip install torch` for that column.")
    return rows


if __name__ == "__main__":
    main()
