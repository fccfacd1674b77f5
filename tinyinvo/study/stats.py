"""The study's statistics: each model's mean test accuracy over seeds with a 95% confidence
interval, and each model's difference to a reference model (RedNet-26) with Welch's t interval.

    table = analyze(rows, reference="bottleneck-inv7")
    for entry in table: print(entry["model"], entry["mean"], entry["ci"], entry["diff"], entry["diff_ci"])

With n seeds a model's mean has the interval  mean +- t(0.975, n - 1) * s / sqrt(n),  s the sample
standard deviation. Two models a, b (Welch, unequal variances):

    diff = mean_b - mean_a,   se = sqrt(s_a^2 / n_a + s_b^2 / n_b),   diff +- t(0.975, df) * se,
    df = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1))   (Welch-Satterthwaite).

With 3 seeds t(0.975, 2) = 4.30: the intervals are wide, and saying so is the point.
Rows of different recipes are never pooled: ``analyze`` refuses a model whose rows disagree on any
recipe or data column.
"""

import csv
import functools
import math

import numpy as np

from tinyinvo.study.results import DESIGN_COLUMNS

# the columns that must agree for rows to be seeds of one experiment (see study.results.COLUMNS)
EXPERIMENT_COLUMNS = DESIGN_COLUMNS + ("epochs", "batch_size", "lr", "momentum", "nesterov",
                                       "weight_decay", "warmup_epochs", "label_smoothing", "augment",
                                       "data", "eval_split", "n_train", "n_test")
LEVEL = 0.95
TIMING_COLUMNS = ("train_seconds_per_epoch", "inference_ms_per_image")


@functools.lru_cache(maxsize=256)
def t_quantile(p, df):
    """The p-quantile of Student's t distribution with ``df`` (> 0, need not be an integer) degrees
    of freedom, for 0.5 <= p < 1: the t with P(T <= t) = p.

    Found by bisection on the CDF, which is 0.5 plus the integral of the density from 0 to t,
    computed with Simpson's rule on the substitution t = tan(u) (finite range, smooth integrand).
    Accurate to about 1e-6, far below what a confidence interval needs.
    """
    if not 0.5 <= p < 1 or not df > 0:
        raise ValueError(f"need 0.5 <= p < 1 and df > 0, got p={p}, df={df}")
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t):
        u = np.linspace(0.0, math.atan(t), 401)  # t = tan(u), dt = du / cos(u)^2
        density = np.exp(log_norm - (df + 1) / 2 * np.log1p(np.tan(u) ** 2 / df)) / np.cos(u) ** 2
        h = u[1] - u[0]
        return 0.5 + h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum()
                              + 2 * density[2:-1:2].sum())

    low, high = 0.0, 1.0
    while cdf(high) < p:
        high *= 2
    for _ in range(40):  # high / 2^40: far below 1e-6
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


def mean_interval(values, level=LEVEL):
    """mean, sample standard deviation and the ``level`` confidence interval (low, high) of the
    mean of ``values`` (t interval; (nan, nan) with fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, (math.nan, math.nan)
    std = float(values.std(ddof=1))
    half = t_quantile((1 + level) / 2, len(values) - 1) * std / math.sqrt(len(values))
    return mean, std, (mean - half, mean + half)


def welch_interval(a, b, level=LEVEL):
    """mean(b) - mean(a) and its ``level`` confidence interval (low, high) by Welch's t.

    Needs at least 2 values on each side; when both samples have zero spread the interval is the
    difference itself."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's interval needs at least 2 values per model, got {len(a)} and "
                         f"{len(b)}")
    diff = float(b.mean() - a.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, (diff, diff)
    df = se ** 4 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile((1 + level) / 2, df) * se
    return diff, (diff - half, diff + half)


def group_by_model(rows):
    """{model name: its rows}, in order of first appearance. Raises ValueError when a model's rows
    disagree on a column of EXPERIMENT_COLUMNS (different recipes must not be averaged)."""
    groups = {}
    for row in rows:
        groups.setdefault(row["model"], []).append(row)
    for name, runs in groups.items():
        differing = [column for column in EXPERIMENT_COLUMNS
                     if len({run.get(column) for run in runs}) > 1]
        if differing:
            raise ValueError(f"the rows of {name} differ in {differing}: they are not seeds of one "
                             f"experiment; select the rows of one recipe first")
    return groups


def analyze(rows, *, reference="bottleneck-inv7", key="test_accuracy", level=LEVEL, timing=()):
    """One dict per model: model, n (seeds), mean, std, ci (low, high) of ``key``; and, against
    ``reference`` (when it has rows and n >= 2 on both sides), diff = mean - reference mean with
    diff_ci (Welch); None for the reference itself or when it cannot be computed. Also carries the
    model's architecture and size columns (block, op, width, params, macs, lr) from its first row,
    and train_seconds_per_epoch, inference_ms_per_image from ``timing`` (rows of
    benchmarks/bench_study_models.py, see ``read_timing``; None for a model it does not time)."""
    timed = {row["model"]: row for row in timing}
    groups = group_by_model(rows)
    base = [run[key] for run in groups.get(reference, [])]
    table = []
    for name, runs in groups.items():
        values = [run[key] for run in runs]
        mean, std, ci = mean_interval(values, level)
        entry = {column: runs[0].get(column) for column in ("block", "op", "width", "params",
                                                             "macs", "lr")}
        entry.update(model=name, n=len(values), mean=mean, std=std, ci=ci, diff=None, diff_ci=None)
        for column in TIMING_COLUMNS:
            entry[column] = timed[name][column] if name in timed else None
        if name != reference and len(base) >= 2 and len(values) >= 2:
            entry["diff"], entry["diff_ci"] = welch_interval(base, values, level)
        table.append(entry)
    return table


def read_timing(path):
    """The rows of a timing CSV written by benchmarks/bench_study_models.py, times as floats."""
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = [column for column in ("model", *TIMING_COLUMNS)
                   if column not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} is not a timing file of benchmarks/bench_study_models.py: "
                             f"it lacks {missing}")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        for column in TIMING_COLUMNS:
            try:
                row[column] = float(row[column])
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {line}, column {column}: expected a number, got "
                                 f"{row[column]!r}") from None
    return rows


def format_analysis(table, reference="bottleneck-inv7"):
    """The analysis as a Markdown table: accuracy (mean, 95% CI, std) in %, the difference to the
    reference with its 95% CI in points, params, MACs, and the benchmarked times where known."""
    def percent(value):
        return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"

    def interval(pair, sign=""):
        return "-" if pair is None or math.isnan(pair[0]) else \
            f"[{100 * pair[0]:{sign}.2f}, {100 * pair[1]:{sign}.2f}]"

    lines = [f"| model | lr | seeds | accuracy % | 95% CI | std | vs {reference} (points, 95% CI) "
             f"| params | MACs | train s/epoch | inference ms/image |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in table:
        diff = "reference" if entry["model"] == reference else (
            "-" if entry["diff"] is None else
            f"{100 * entry['diff']:+.2f} {interval(entry['diff_ci'], '+')}")
        train = entry["train_seconds_per_epoch"]
        inference = entry["inference_ms_per_image"]
        lines.append(
            f"| {entry['model']} | {entry['lr']:g} | {entry['n']} | {percent(entry['mean'])} | "
            f"{interval(entry['ci'])} | {percent(entry['std'])} | {diff} | "
            f"{entry['params'] / 1e6:.3f}M | {entry['macs'] / 1e6:.2f}M | "
            f"{'-' if train is None else f'{train:.0f}'} | "
            f"{'-' if inference is None else f'{inference:.2f}'} |")
    return "\n".join(lines)
