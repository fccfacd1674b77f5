"""Study throughput (runs per hour) of ``compare`` on each way of running it on this machine.

    python benchmarks/bench_study.py                      # 1x2, 2x1 pool, 2x1 Dask; 1 round
    python benchmarks/bench_study.py --rounds 3 --epochs 2

The same small study (4 runs on ``shapes`` by default) is run from scratch, in a fresh directory,
through each layout, exactly as a user would type it:

- ``1x2``: one run at a time in this process, with 2 Numba/BLAS threads (``--threads 2``)
- ``2x1 pool``: two runs at once in 2 local worker processes of 1 thread (``--workers 2``)
- ``2x1 dask``: two runs at once on a 2-worker Dask ``LocalCluster`` (``--scheduler``)

Rounds are interleaved (every layout once per round) so that a noisy neighbour hits all of them
alike; the table gives the median per layout and its ratio to ``1x2``. Worker start-up and loading
the Numba kernels from the disk cache are part of what is measured: a user pays them too.
"""

import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import benchmark_parser, pin_threads  # noqa: E402

LAYOUTS = ("1x2", "2x1 pool", "2x1 dask")


def parse_args():
    parser = benchmark_parser(__doc__, "bench_study.json")
    parser.add_argument("--models", default="bottleneck-inv7,bottleneck-dw7",
                        help="study models (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per model (default: %(default)s)")
    parser.add_argument("--macs", default="3M", help="MAC budget (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default: %(default)s)")
    parser.add_argument("--subset", default="2000,500", help="train,test images (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated subset of "
                        + ", ".join(LAYOUTS))
    return parser.parse_args()


def study_arguments(args, out):
    return ["compare", "--data", "shapes", "--models", args.models, "--seeds", str(args.seeds),
            "--macs", args.macs, "--epochs", str(args.epochs), "--subset", args.subset, "--out", out]


def layout_arguments(layout, cluster):
    if layout == "1x2":
        return ["--workers", "1", "--threads", "2"]
    if layout == "2x1 pool":
        return ["--workers", "2", "--threads-per-worker", "1"]
    return ["--scheduler", cluster.scheduler_address, "--threads-per-worker", "1"]


def time_study(arguments):
    """Seconds to run ``python -m tinyinvo compare ARGUMENTS`` from scratch (its output is kept quiet)."""
    from tinyinvo.__main__ import main
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(arguments)
    if status:
        raise SystemExit(f"compare failed ({status}): {' '.join(arguments)}")
    return time.perf_counter() - start


def main():
    args = parse_args()
    pin_threads(2)
    os.environ["TQDM_DISABLE"] = "1"
    layouts = [name.strip() for name in args.layouts.split(",")]
    runs = len(args.models.split(",")) * args.seeds
    seconds = {layout: [] for layout in layouts}
    with contextlib.ExitStack() as stack:
        cluster = None
        if "2x1 dask" in layouts:
            import distributed
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=":0"))
        for round_number in range(args.rounds):
            for layout in layouts:
                with tempfile.TemporaryDirectory() as out:
                    arguments = study_arguments(args, out) + layout_arguments(layout, cluster)
                    seconds[layout].append(time_study(arguments))
                print(f"round {round_number + 1}: {layout:<9} {seconds[layout][-1]:7.1f} s", flush=True)
    baseline = statistics.median(seconds[layouts[0]])
    print(f"\n{runs} runs per study ({args.models} x {args.seeds} seeds, {args.epochs} epoch(s), "
          f"subset {args.subset}), median of {args.rounds} round(s):")
    print(f"{'layout':<10} {'seconds':>8} {'runs/hour':>10} {'vs ' + layouts[0]:>8}")
    summary = {}
    for layout in layouts:
        median = statistics.median(seconds[layout])
        summary[layout] = dict(seconds=seconds[layout], median_seconds=median,
                               runs_per_hour=runs * 3600 / median)
        print(f"{layout:<10} {median:8.1f} {runs * 3600 / median:10.1f} {baseline / median:7.2f}x")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(dict(config=vars(args), runs=runs, layouts=summary), file, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
