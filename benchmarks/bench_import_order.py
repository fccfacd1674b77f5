"""The import-order trap: a tinyinvo training step alone, and after `import torch` plus one PyTorch op.

    python benchmarks/bench_import_order.py [--models resnet26] [--threads 2] [--rounds 3] [--steps 3]

Each measurement is a fresh process of bench_train.py (its --worker mode, which times tinyinvo only):
"alone" never imports torch; "torch first" imports torch and runs one PyTorch conv before importing
tinyinvo, as a notebook comparing the two does. The two kinds take turns over the rounds (who goes
first alternates); per process the median of S steps, then the median over rounds. Prints images/s,
the slowdown (alone / torch first) and whether the torch-first process printed tinyinvo's warning.
Results go to a JSON file (default benchmarks/results/import_order.json).
"""

import json
import os
import subprocess
import sys

import numpy as np

from common import benchmark_parser

BENCH_TRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_train.py")
KINDS = ("alone", "torch first")


def parse_args():
    parser = benchmark_parser(__doc__, "import_order.json")
    parser.add_argument("--models", nargs="+", default=["resnet26"])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process (default 3)")
    return parser.parse_args()


def time_process(args, name, kind):
    """Median step seconds of one fresh tinyinvo process, and whether it warned about OpenMP."""
    command = [sys.executable, BENCH_TRAIN, "--worker", "tinyinvo", "--models", name,
               "--threads", str(args.threads), "--width", str(args.width),
               "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    command += ["--torch-first"] if kind == "torch first" else []
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{name} ({kind}) failed:\n{result.stderr}")
    steps = json.loads(result.stdout.splitlines()[-1])["step_seconds"]
    return float(np.median(steps)), "OMP_WAIT_POLICY" in result.stderr


def main():
    args = parse_args()
    print(f"batch {args.batch_size}, width {args.width}, threads {args.threads}, {args.rounds} rounds x "
          f"{args.steps} steps per process, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    seconds = {(name, kind): [] for name in args.models for kind in KINDS}
    warned = {name: False for name in args.models}
    for round_ in range(args.rounds):
        for name in args.models:
            for kind in (KINDS if round_ % 2 == 0 else KINDS[::-1]):
                step, warning = time_process(args, name, kind)
                seconds[name, kind].append(step)
                warned[name] |= warning and kind == "torch first"
                print(f"round {round_ + 1}/{args.rounds} {name:<14} {kind:<12} {args.batch_size / step:7.1f} images/s",
                      flush=True)
    rows = []
    print(f"\n{'model':<14}{'alone':>9}{'torch first':>13}{'slowdown':>10}  warned")
    for name in args.models:
        alone, first = (float(np.median(seconds[name, kind])) for kind in KINDS)
        rows.append(dict(model=name, step_seconds={kind: seconds[name, kind] for kind in KINDS},
                         slowdown=first / alone, warned=warned[name]))
        print(f"{name:<14}{args.batch_size / alone:9.1f}{args.batch_size / first:13.1f}{first / alone:10.2f}  "
              f"{'yes' if warned[name] else 'no'}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(dict(batch_size=args.batch_size, width=args.width, threads=args.threads,
                       rounds=args.rounds, steps=args.steps, results=rows), file, indent=1)
    print(f"\nwritten to {args.json} (images/s: medians over rounds)")


if __name__ == "__main__":
    main()
