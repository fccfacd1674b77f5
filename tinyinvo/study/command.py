"""``python -m tinyinvo compare``: the apples-to-apples study.

    python -m tinyinvo compare --data cifar10 --data-dir ../shared/data/cifar10-jpg.tar.gz \\
        --macs 32M --epochs 6 --subset 5000,2000 --seeds 2 --workers 2

Solves every model's width (and knobs) for the MAC budget, prints them, trains each model with
each seed under one recipe (skipping runs results.csv already holds), then prints the analysis
table (``tinyinvo.study.stats``) and writes it and the figures; ``--timing`` gives them the times
of ``benchmarks/bench_study_models.py``.
With ``--tune-lrs`` it runs the tuning search on a validation split instead, and ``--lr-from``
gives each model the learning rate that search chose (``tinyinvo.study.tuning``).
"""

import argparse
import os

from tinyinvo.backend import BACKENDS, set_backend, set_num_threads
from tinyinvo.data.published import PUBLISHED
from tinyinvo.plumbing import UserError, check_writable_folder, load_requested_data, sigterm_as_ctrl_c
from tinyinvo.study import runs
from tinyinvo.study.executors import default_threads, default_workers, make_executor
from tinyinvo.study.grid import STUDY_MODELS, parse_macs, solve_grid
from tinyinvo.study.plots import plot_published, plot_study
from tinyinvo.study.results import read_results, run_missing
from tinyinvo.study.stats import analyze, format_analysis, read_timing
from tinyinvo.study.tuning import choose_lrs, format_edges, format_tuning, rows_of_designs
from tinyinvo.train.flags import add_data_arguments, add_recipe_arguments, positive_int


def add_arguments(parser):
    add_data_arguments(parser, given_only=False)  # the same data for every run
    # 32M: RedNet-26 at width 16 (31.6M), the 15-epoch CIFAR run of the README
    parser.add_argument("--macs", type=parse_macs, default=parse_macs("32M"),
                        help="MAC budget per 32x32 image, e.g. 32M (default: 32M)")
    parser.add_argument("--tolerance", type=_fraction, default=0.05,
                        help="allowed |MACs / budget - 1| (default: %(default)s)")
    parser.add_argument("--depth", type=positive_int, default=26, help="depth of the bottleneck nets "
                        "(default: %(default)s)")
    parser.add_argument("--models", type=_parse_models, default=list(STUDY_MODELS),
                        help=f"comma-separated subset of {','.join(STUDY_MODELS)} (default: all)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=positive_int, default=2, help="seeds 0..N-1 (default: %(default)s)")
    seeds.add_argument("--seed-list", type=_parse_ints, help="explicit seeds, e.g. 0,1,7")
    add_recipe_arguments(parser, given_only=False, leave_out=("seed",))
    parser.add_argument("--validation", type=positive_int, metavar="N",
                        help="hold out N class-balanced training images and score the runs on them "
                             "instead of the test set (for tuning)")
    tuning = parser.add_mutually_exclusive_group()
    tuning.add_argument("--tune-lrs", type=_parse_floats, metavar="LR,LR,...",
                        help="tuning: train every model at each of these peak learning rates "
                             "(needs --validation)")
    tuning.add_argument("--lr-from", metavar="TUNING_CSV",
                        help="give each model the learning rate with the best validation accuracy "
                             "in this results.csv of a --tune-lrs study")
    parser.add_argument("--timing", metavar="TIMING_CSV",
                        help="the times of benchmarks/bench_study_models.py (every model alone on a "
                             "quiet machine) for the table and the time figure, in place of the "
                             "runs' own")
    parser.add_argument("--out", help="study directory (default: runs/compare-DATA-MACS)")
    parser.add_argument("--runs-dir", help="where each run's checkpoint, metrics and curves go "
                        "(default: OUT/runs)")
    parser.add_argument("--dry-run", action="store_true", help="print the solved models and stop")
    parser.add_argument("--threads", type=positive_int, help="threads for Numba and BLAS of the runs in this "
                        "process, i.e. with --workers 1 (default: all cores)")
    parser.add_argument("--workers", type=positive_int,
                        help="runs at once, each in its own local process; 1: one run after the "
                             "other in this process (default: one per core, at most one per run, "
                             "the fastest layout measured)")
    parser.add_argument("--threads-per-worker", type=positive_int,
                        help="Numba and BLAS threads of each worker (default: the cores shared "
                             "out evenly; with --scheduler: 1)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help='send the runs to this running Dask scheduler instead '
                             '(pip install "tinyinvo[cluster]")')
    parser.add_argument("--backend", choices=BACKENDS, help="op backend (default: numba if installed)")


def run(args):
    if args.backend:
        set_backend(args.backend)
    if args.threads:
        set_num_threads(args.threads)
    try:
        specs = solve_grid(args.models, args.macs, depth=args.depth, tolerance=args.tolerance)
    except ValueError as error:
        raise UserError(f"--macs: {error}; choose another --macs, a larger --tolerance, or leave "
                        f"these models out with --models") from None
    print(f"budget {args.macs / 1e6:.2f}M MACs per 32x32 image, within {args.tolerance:.0%}:")
    print(format_specs(specs, args.macs))
    if args.dry_run:
        return 0
    out = args.out or os.path.join("runs", f"compare-{args.data}-{args.macs / 1e6:g}M")
    study = _plan(args, specs)
    timing = _read_timing(args.timing, specs)
    _check_before_training(out, study[0].data, study[0].recipe)
    print(f"{len(study)} runs ({len(specs)} models x seeds {_seeds(args)}"
          f"{' x lrs ' + str(args.tune_lrs) if args.tune_lrs else ''}), recipe "
          f"{study[0].recipe}; writing to {out}")
    workers = args.workers or default_workers(len(study))
    threads = _threads_per_worker(args, workers)
    runs_dir = args.runs_dir or os.path.join(out, "runs")
    try:
        with sigterm_as_ctrl_c(), make_executor(workers, threads, args.scheduler) as executor:
            rows = run_missing(study, os.path.join(out, "results.csv"), runs.train_run,
                               runs_dir=runs_dir, executor=executor, threads=threads)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the runs in flight here saved their checkpoints in {runs_dir}, the "
              f"finished ones are in {os.path.join(out, 'results.csv')}; the same command "
              f"continues from there")
        return 130  # the usual exit status after Ctrl-C
    if args.tune_lrs:
        print(format_tuning(rows) if rows else "no finished tuning runs")
        print(f"results: {os.path.join(out, 'results.csv')}; final runs: the same command with "
              f"--lr-from {os.path.join(out, 'results.csv')} in place of --tune-lrs and --validation")
        return _failed(study, rows)
    figures = plot_study(rows, out, title=f"{args.data}, {args.macs / 1e6:g}M MACs, "
                                          f"{args.epochs} epochs", timing=timing)
    figures.append(os.path.join(out, "published_imagenet.png"))
    plot_published(PUBLISHED, figures[-1])
    table = format_analysis(analyze(rows, timing=timing))
    with open(os.path.join(out, "analysis.md"), "w") as file:
        file.write(table + "\n")
    print(f"test accuracy, mean over seeds with its 95% confidence interval:\n{table}")
    print(f"results: {os.path.join(out, 'results.csv')}, table: {os.path.join(out, 'analysis.md')}"
          f"\nfigures: " + ", ".join(figures))
    return _failed(study, rows)


def _read_timing(path, specs):
    """The rows of the --timing CSV (() without one); every model of the study must have one."""
    if path is None:
        return ()
    try:
        timing = read_timing(path)
    except (OSError, ValueError) as error:
        raise UserError(f"--timing {path}: {error}") from None
    timed = {row["model"] for row in timing}
    missing = [spec.name for spec in specs if spec.name not in timed]
    if missing:
        raise UserError(f"--timing {path} has no times of {missing}: time them with "
                        f"benchmarks/bench_study_models.py --models {','.join(missing)}")
    return timing


def _plan(args, specs):
    """The study's runs: every model x seed (x lr when tuning), each with its recipe and data."""
    recipe = {key: getattr(args, key) for key in runs.RECIPE_FIELDS}
    data = dict(name=args.data, data_dir=args.data_dir, subset=args.subset, seed=0)
    if args.validation is not None:
        data["validation"] = args.validation
    if args.tune_lrs and args.validation is None:
        raise UserError("--tune-lrs must not see the test set: add --validation N (e.g. "
                        "--validation 5000) to tune on held-out training images")
    if args.tune_lrs:
        return [runs.Run(spec, seed, {**recipe, "lr": lr}, data)
                for spec in specs for lr in args.tune_lrs for seed in _seeds(args)]
    lrs = {spec.name: args.lr for spec in specs}
    if args.lr_from:
        try:
            tuning_rows = rows_of_designs(read_results(args.lr_from), specs)
            lrs = choose_lrs(tuning_rows, list(lrs))
        except (OSError, ValueError) as error:
            raise UserError(f"--lr-from {args.lr_from}: {error}") from None
        print("learning rates chosen by tuning: " + ", ".join(f"{name} {lr:g}"
                                                             for name, lr in lrs.items()))
        edges = format_edges([row for row in tuning_rows if row["model"] in lrs])
        if edges:
            print(f"warning: {edges}")
    return [runs.Run(spec, seed, {**recipe, "lr": lrs[spec.name]}, data)
            for spec in specs for seed in _seeds(args)]


def _seeds(args):
    return args.seed_list if args.seed_list is not None else list(range(args.seeds))


def _failed(study, rows):
    """Exit status 1 (and say so) when some runs of ``study`` have no row."""
    if len(rows) < len(study):
        print(f"{len(study) - len(rows)} of {len(study)} runs failed (see above); run the same "
              f"command again to retry them")
        return 1
    return 0


def _check_before_training(out, data, recipe):
    """Every mistake the runs would meet, found now: the folder, the data, the subset, a results
    file that cannot be read, a batch larger than the training set."""
    check_writable_folder(out, "--out")
    try:
        read_results(os.path.join(out, "results.csv"))
    except ValueError as error:
        raise UserError(f"--out: {error}") from None
    dataset = load_requested_data(data)  # only to check it: the runs load it where they train
    if recipe["batch_size"] > len(dataset.y_train):
        raise UserError(f"--batch-size: {recipe['batch_size']} is larger than the training set "
                        f"({len(dataset.y_train)} images)")


def format_specs(specs, target):
    lines = [f"{'model':<18} {'width':>5} {'expansion':>9} {'divisor':>7} {'params':>10} "
             f"{'MACs':>12} {'vs budget':>9}"]
    for spec in specs:
        lines.append(f"{spec.name:<18} {spec.width:>5} {_dash(spec.expansion):>9} "
                     f"{_dash(spec.divisor):>7} {spec.params:>10,} {spec.macs:>12,} "
                     f"{spec.macs / target - 1:>+9.1%}")
    return "\n".join(lines)


def _threads_per_worker(args, workers):
    """Threads of each run on a worker; None for runs in this process (--threads applies)."""
    if args.scheduler is not None:
        return args.threads_per_worker or 1
    if workers > 1:
        return args.threads_per_worker or default_threads(workers)
    return None


def _dash(value):
    return "-" if value is None else value


def _parse_models(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STUDY_MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown}; choose from "
                                         f"{','.join(STUDY_MODELS)}")
    return names


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _parse_floats(text):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.05,0.1, got {text!r}") from None
    if not all(0 < value < float("inf") for value in values):
        raise argparse.ArgumentTypeError(f"learning rates must be positive and finite, got {text!r}")
    return values


def _parse_ints(text):
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,7, got {text!r}") from None
