"""Training and inference time of each model of the study, on a quiet machine, for the study's table.

    python benchmarks/bench_study_models.py --csv results/study-cifar10-32M-full/timing.csv
    python benchmarks/bench_study_models.py --threads 2 --rounds 5

The study's runs share the machine two at a time, so their own wall clock is not a fair time. This
benchmark times every model alone: a training step at the study's batch size (forward, backward,
SGD update, on random images) and an eval-mode forward pass, each the median over interleaved rounds
(every model once per round, so a noisy moment hits all alike). Like the study's workers, the
process keeps freed memory for reuse (``tinyinvo.memory``), so the rounds after the first time the
steady state of a long run, not fresh pages. It reports seconds per epoch of
50,000 training images and milliseconds per image at inference, and writes them with the date, the
thread count and the commit to a CSV that ``tinyinvo.study.stats.analyze`` joins by model name.
"""

import csv
import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import benchmark_parser, pin_threads  # noqa: E402

TRAIN_IMAGES = 50_000  # one CIFAR-10 epoch


def parse_args():
    parser = benchmark_parser(__doc__, "bench_study_models.json")
    parser.set_defaults(threads=1)  # as the study's runs: one thread each
    parser.add_argument("--macs", default="32M", help="MAC budget (default: %(default)s)")
    parser.add_argument("--models", help="comma-separated study models (default: all)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch (default: 64)")
    parser.add_argument("--inference-batch", type=int, default=256, help="(default: 256)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round (default: 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    parser.add_argument("--csv", help="also write the table to this CSV")
    return parser.parse_args()


def time_calls(call, repeats):
    """Median seconds of ``call()`` over ``repeats`` calls, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    args = parse_args()
    pin_threads(args.threads)
    import numpy as np

    from tinyinvo.memory import keep_freed_memory
    from tinyinvo.models import build
    from tinyinvo.nn import softmax_cross_entropy
    from tinyinvo.provenance import provenance
    from tinyinvo.study.grid import STUDY_MODELS, parse_macs, solve_grid
    from tinyinvo.train.optim import SGD

    keep_freed_memory()  # as the study's worker processes do (tinyinvo.study.executors)
    names = args.models.split(",") if args.models else list(STUDY_MODELS)
    specs = solve_grid(names, parse_macs(args.macs))
    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    y_train = rng.integers(0, 10, args.batch_size)
    x_test = rng.standard_normal((args.inference_batch, 3, 32, 32)).astype(np.float32)
    models = {spec.name: build(**spec.build_kwargs(), rng=np.random.default_rng(0)) for spec in specs}
    optimizers = {name: SGD(model.parameters(), 0.01, momentum=0.9, weight_decay=5e-4)
                  for name, model in models.items()}

    def train_step(name):
        model = models[name].train()
        _, dlogits = softmax_cross_entropy(model.forward(x_train), y_train)
        model.backward(dlogits)
        optimizers[name].step(model.gradients(), lr=0.01)

    def inference(name):
        models[name].eval().forward(x_test)

    seconds = {name: dict(train=[], inference=[]) for name in models}
    for round_number in range(args.rounds):
        for name in models:
            seconds[name]["train"].append(time_calls(lambda: train_step(name), args.steps))
            seconds[name]["inference"].append(time_calls(lambda: inference(name), args.steps))
            print(f"round {round_number + 1}: {name:<18} step {seconds[name]['train'][-1]:.3f} s, "
                  f"inference {seconds[name]['inference'][-1]:.3f} s", flush=True)
    record = provenance()
    rows = []
    for name in models:
        step, forward = (statistics.median(seconds[name][key]) for key in ("train", "inference"))
        rows.append(dict(model=name, threads=args.threads, batch_size=args.batch_size,
                         train_seconds_per_epoch=step * TRAIN_IMAGES / args.batch_size,
                         inference_ms_per_image=1000 * forward / args.inference_batch,
                         date=datetime.date.today().isoformat(), commit=record["commit"]))
    print(f"\nmedian of {args.rounds} rounds x {args.steps} steps, {args.threads} thread(s), batch "
          f"{args.batch_size} (training) and {args.inference_batch} (inference):")
    print(f"{'model':<18} {'train s/epoch':>14} {'inference ms/image':>19}")
    for row in rows:
        print(f"{row['model']:<18} {row['train_seconds_per_epoch']:>14.0f} "
              f"{row['inference_ms_per_image']:>19.3f}")
    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        with open(args.csv, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
