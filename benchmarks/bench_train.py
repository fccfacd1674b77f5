"""Benchmark whole training steps: tinyinvo vs the same networks in PyTorch CPU (when importable).

    python benchmarks/bench_train.py [--models rednet26 resnet26 ...] [--width 16]
        [--batch-size 128] [--threads 2] [--steps S] [--warmup-steps W] [--separate-processes [--rounds R] [--busy-core]] [--json PATH]

Models: the presets rednet26, resnet26, dwnet26 and mbv2 at --width, and the study's inverted nets
inverted-dw7 and inverted-inv7 at the width the study solves for 32M MACs (tinyinvo.study.grid).

One training step = forward, softmax cross-entropy, backward, SGD update (momentum 0.9, weight
decay 5e-4), on random 32x32 images. The PyTorch twin of each model is made from the tinyinvo model
itself, layer by layer (same blocks, same parameter count, same initial weights: the script checks
both), with the paper's reference involution (unfold, multiply by the kernel, sum over K*K) and
autograd for every backward pass. Images/s is the median over S timed steps after W warm-up steps
(default 3): the first step compiles or loads kernels, and the next few still pay for fresh pages
while the heap grows to the size that every array of a step fits into (in both frameworks: each
process keeps freed memory, see below), so the timed steps are the ones a long training run repeats.
The frameworks take turns, one step each per round, so that a busy spell of the shared machine hits
both alike.

Then a few more tinyinvo steps run with every layer timed, and the step time is split by layer type
(conv 1x1, conv KxK, depthwise, involution op, BatchNorm, ReLU/Add/pool, linear + loss, optimizer),
each layer counted without the layers inside it: this is where the time goes.
Results go to a JSON file (default benchmarks/results/train.json).

Two ways to run:
- in one process (the default): both frameworks, one step each per round, plus the breakdown;
- --separate-processes: each framework in a fresh process of its own, as a user runs it (the
  tinyinvo process never imports torch), R rounds taking turns (who goes first alternates); per
  process the median of S steps, then the median over rounds. One process running both is what
  two OpenMP runtimes in one process can distort; this mode cannot be.
--busy-core (with --separate-processes) also times every process while a second program keeps one
core busy (a Python loop that never sleeps, as a browser tab or a compile might), and reports each
framework's slowdown, its busy step time over its quiet one: how it fares on a laptop that is never quiet.
--torch-first (with --separate-processes) imports torch and runs one PyTorch op before tinyinvo
in the tinyinvo process: the import-order trap, measured as a user would meet it.

The script first makes glibc keep freed memory for reuse (tinyinvo.memory), in every process,
PyTorch's included. --default-malloc leaves malloc as it is.
"""

import argparse
import os
import sys

from common import benchmark_parser, pin_threads

DEFAULT_MODELS = ("rednet26", "resnet26", "dwnet26", "mbv2", "inverted-dw7", "inverted-inv7")
STUDY_MACS = 32_000_000  # the study's budget: its inverted nets are timed at the width it solves for


def parse_args():
    parser = benchmark_parser(__doc__, "train.json")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and framework (default 5)")
    parser.add_argument("--warmup-steps", type=int, default=3,
                        help="untimed steps first, per model and framework and process (default 3; see above)")
    parser.add_argument("--no-torch", action="store_true", help="time tinyinvo only")
    parser.add_argument("--separate-processes", action="store_true",
                        help="time each framework in a fresh process of its own, in turns (see above)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --separate-processes (default 3)")
    parser.add_argument("--busy-core", action="store_true",
                        help="with --separate-processes: time each process also while another program "
                             "keeps one core busy, and report the slowdown of each framework")
    parser.add_argument("--torch-first", action="store_true",
                        help="tinyinvo's processes import torch and run one op first (the import-order trap)")
    parser.add_argument("--worker", choices=("tinyinvo", "pytorch"), help=argparse.SUPPRESS)
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc as it is instead of keeping freed memory for "
                             "reuse as the Trainer does (tinyinvo.memory; affects both frameworks)")
    args = parser.parse_args()
    if args.busy_core and not args.separate_processes:
        parser.error("--busy-core needs --separate-processes (each framework timed in a process of its own)")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    pin_threads(ARGS.threads, idle_threads_sleep=not (ARGS.separate_processes or ARGS.worker))
    if ARGS.worker == "tinyinvo" and ARGS.torch_first:   # the trap: torch and one op before tinyinvo
        import torch  # noqa: E402
        torch.set_num_threads(ARGS.threads)
        torch.nn.functional.conv2d(torch.ones(8, 16, 32, 32), torch.ones(16, 16, 3, 3), padding=1)

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
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
from tinyinvo.study.grid import STUDY_MODELS, solve_grid  # noqa: E402
from tinyinvo.train.optim import SGD  # noqa: E402

torch = None  # imported by load_torch(), only in a process that times PyTorch (or --torch-first)


def load_torch():
    """Import PyTorch into this module's ``torch``, if installed (None otherwise)."""
    global torch
    try:
        import torch as module
    except ImportError:
        module = None
    torch = module
    return torch


def wants_torch(args):
    """Whether this process imports torch: not a tinyinvo worker (unless it models the trap)."""
    if args.worker == "tinyinvo":
        return args.torch_first
    return not args.no_torch

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


def build_model(name, width):
    """A preset at ``width``, or a model of the study at the size it solves for STUDY_MACS."""
    if name in STUDY_MODELS:
        return build(**solve_grid([name], STUDY_MACS)[0].build_kwargs())
    return build(name, width=width)


def prepare(name, args, rng, frameworks=("tinyinvo", "pytorch")):
    """The steps to time for one model: {"tinyinvo": step, "pytorch": step}, twins checked.
    The logits check runs tinyinvo's kernels, so a PyTorch-only process checks the parameters only."""
    x = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, args.batch_size)
    model = build_model(name, args.width)
    steps = {"tinyinvo": TinyinvoStep(model, x, labels)} if "tinyinvo" in frameworks else {}
    if torch is not None and "pytorch" in frameworks:
        twin = TorchStep(model, x, labels)
        if twin.num_params() != model.num_params():
            raise AssertionError(f"{name}: PyTorch twin has {twin.num_params()} params, "
                                 f"tinyinvo {model.num_params()}")
        if "tinyinvo" in frameworks:
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
    if args.separate_processes and args.worker is None:
        return drive_processes(args)
    kept = not args.default_malloc and keep_freed_memory()
    if wants_torch(args) and load_torch() is not None:
        torch.set_num_threads(args.threads)
    if args.worker == "pytorch":
        return time_in_this_process(args, "pytorch")
    set_num_threads(args.threads)
    if args.worker == "tinyinvo":
        return time_in_this_process(args, "tinyinvo")
    load = os.getloadavg()[0]
    print(f"batch {args.batch_size}, 32x32, width {args.width}, threads {args.threads} (Numba, BLAS, PyTorch), "
          f"{args.steps} timed steps, load average {load:.1f} on {os.cpu_count()} cores, freed memory "
          f"{'kept for reuse' if kept else 'returned to the system'} (tinyinvo.memory)", flush=True)
    rng = np.random.default_rng(0)
    prepared = {name: prepare(name, args, rng) for name in args.models}
    frameworks = [f for f in ("tinyinvo", "pytorch") if f in prepared[args.models[0]][0]]
    times = {(name, f): [] for name in args.models for f in frameworks}
    for name, (steps, _) in prepared.items():   # warm-up: compile, grow the heap, fill caches
        for step in steps.values():
            warm_up(step, args.warmup_steps)
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
                       warmup_steps=args.warmup_steps,
                       load_average_start=load, load_average_end=os.getloadavg()[0],
                       numba=numba.__version__, numpy=np.__version__,
                       torch=None if torch is None else torch.__version__,
                       cpu=platform.processor() or platform.machine(), results=rows), file, indent=1)
    print(f"\nwritten to {args.json}")


# ---------------------------------------------------------------- one framework per process


def warm_up(step, steps):
    """Run ``steps`` untimed steps (at least one: the first compiles or loads the kernels)."""
    for _ in range(max(1, steps)):
        step.run()


def time_in_this_process(args, framework):
    """A worker of --separate-processes: time ``framework``'s steps of the one model, print a JSON line."""
    name, = args.models
    steps, num_params = prepare(name, args, np.random.default_rng(0), frameworks=(framework,))
    step = steps[framework]
    warm_up(step, args.warmup_steps)
    print(json.dumps(dict(model=name, framework=framework, params=num_params,
                          step_seconds=[seconds(step.run) for _ in range(args.steps)])))


def run_worker(args, framework, name):
    """Run one worker process of this script; its JSON line as a dict."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--models", name,
               "--threads", str(args.threads), "--width", str(args.width),
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--warmup-steps", str(args.warmup_steps)]
    command += ["--torch-first"] * args.torch_first + ["--default-malloc"] * args.default_malloc
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"worker {framework} {name} failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def busy_core():
    """Start a program that keeps one core busy until killed: a Python loop that never sleeps."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_worker_under(args, framework, name, condition):
    """run_worker, with a busy core beside it when ``condition`` is "busy"."""
    if condition == "quiet":
        return run_worker(args, framework, name)
    spinner = busy_core()
    try:
        return run_worker(args, framework, name)
    finally:
        spinner.kill()
        spinner.wait()


def drive_processes(args):
    """--separate-processes: every (round, model, framework[, condition]) in a fresh process;
    frameworks take turns, the first one alternating from round to round; medians over rounds of
    per-process medians. With --busy-core each process runs once quiet and once next to a busy core."""
    import importlib.util
    has_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    frameworks = ["tinyinvo", "pytorch"] if has_torch else ["tinyinvo"]
    load = os.getloadavg()[0]
    print(f"separate processes: batch {args.batch_size}, 32x32, width {args.width} (presets), threads "
          f"{args.threads}, {args.rounds} rounds x {args.steps} timed steps per process, load average "
          f"{load:.1f} on {os.cpu_count()} cores{', torch imported first in tinyinvo processes' * args.torch_first}",
          flush=True)
    conditions = ("quiet", "busy") if args.busy_core else ("quiet",)
    medians = {(name, f, c): [] for name in args.models for f in frameworks for c in conditions}
    params = {}
    for round_ in range(args.rounds):
        order = frameworks if round_ % 2 == 0 else frameworks[::-1]
        for name in args.models:
            for framework in order:
                for condition in conditions:
                    result = run_worker_under(args, framework, name, condition)
                    params[name] = result["params"]
                    medians[name, framework, condition].append(float(np.median(result["step_seconds"])))
                    print(f"round {round_ + 1}/{args.rounds} {name:<14} {framework:<9} {condition:<6}"
                          f"{args.batch_size / medians[name, framework, condition][-1]:7.1f} images/s", flush=True)
    rows = []
    print(f"\nimages/s, median over {args.rounds} processes per framework (each: median of {args.steps} steps)\n")
    header = f"{'model':<14}{'params':>9}{'tinyinvo':>10}{'PyTorch':>10}{'tinyinvo/PyTorch':>18}"
    print(header)
    print("-" * len(header))
    for name in args.models:
        rate = {f: args.batch_size / float(np.median(medians[name, f, "quiet"])) for f in frameworks}
        ratio = rate["tinyinvo"] / rate["pytorch"] if "pytorch" in rate else None
        rows.append(dict(model=name, params=params[name], images_per_s=rate, tinyinvo_over_pytorch=ratio,
                         process_median_step_seconds={f: medians[name, f, "quiet"] for f in frameworks}))
        torch_column = f"{rate['pytorch']:10.1f}{ratio:18.2f}" if ratio else f"{'-':>10}{'-':>18}"
        print(f"{name:<14}{params[name]:>9}{rate['tinyinvo']:10.1f}{torch_column}")
    if args.busy_core:
        report_slowdowns(args, frameworks, medians, rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(dict(mode="separate processes", batch_size=args.batch_size, width=args.width,
                       threads=args.threads, rounds=args.rounds, steps=args.steps, warmup_steps=args.warmup_steps,
                       torch_first=args.torch_first,
                       busy_core=args.busy_core,
                       load_average_start=load, load_average_end=os.getloadavg()[0],
                       numba=numba.__version__, numpy=np.__version__,
                       cpu=platform.processor() or platform.machine(), results=rows), file, indent=1)
    print(f"\nwritten to {args.json}")


def report_slowdowns(args, frameworks, medians, rows):
    """--busy-core: each framework's busy/quiet step time (medians over rounds), added to ``rows``."""
    print("\nslowdown with one core busy: step time busy / quiet (medians over rounds; lower is better)\n")
    header = f"{'model':<14}" + "".join(f"{f:>10}" for f in frameworks)
    print(header)
    print("-" * len(header))
    for name, row in zip(args.models, rows):
        slowdown = {f: float(np.median(medians[name, f, "busy"]) / np.median(medians[name, f, "quiet"]))
                    for f in frameworks}
        row["busy_core"] = dict(slowdown=slowdown,
                                process_median_step_seconds={f: medians[name, f, "busy"] for f in frameworks})
        print(f"{name:<14}" + "".join(f"{slowdown[f]:9.2f}x" for f in frameworks))


def report(args, prepared, frameworks, times, parts):
    rows = []
    print(f"\nimages/s (median of {args.steps} steps; step = forward + loss + backward + SGD update)\n")
    header = f"{'model':<14}{'params':>9}{'tinyinvo':>10}{'PyTorch':>10}{'tinyinvo/PyTorch':>18}"
    print(header)
    print("-" * len(header))
    for name, (_, num_params) in prepared.items():
        rate = {f: args.batch_size / float(np.median(times[name, f])) for f in frameworks}
        ratio = rate["tinyinvo"] / rate["pytorch"] if "pytorch" in rate else None
        rows.append(dict(model=name, params=num_params, images_per_s=rate, tinyinvo_over_pytorch=ratio,
                         step_seconds={f: times[name, f] for f in frameworks},
                         tinyinvo_breakdown_s=parts[name]))
        torch_column = f"{rate['pytorch']:10.1f}{ratio:18.2f}" if ratio else f"{'-':>10}{'-':>18}"
        print(f"{name:<14}{num_params:>9}{rate['tinyinvo']:10.1f}{torch_column}")
    print("\ntinyinvo step time by layer type, ms (each layer's own time; median of 2 timed steps)\n")
    header = f"{'layer type':<15}" + "".join(f"{name:>15}" for name in prepared)
    print(header)
    print("-" * len(header))
    for part in CATEGORIES + ("total",):
        cells = []
        for name in prepared:
            ms = 1e3 * (sum(parts[name].values()) if part == "total" else parts[name][part])
            share = ms / (1e3 * sum(parts[name].values()))
            cells.append(f"{ms:6.0f} {100 * share:2.0f}%" if part != "total" else f"{ms:11.0f}")
        print(f"{part:<15}" + "".join(f"{cell:>15}" for cell in cells))
    if torch is None and not args.no_torch:
        print('\nPyTorch is not importable: install it with `pip install -e ".[bench]"` (PyTorch 2.13 CPU) '
              "for that column.")
    return rows


if __name__ == "__main__":
    main()
