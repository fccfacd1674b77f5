"""The study's figures: test accuracy against MACs, params and measured CPU time, one point per
model (the mean over seeds) with its 95% confidence interval (``tinyinvo.study.stats``), a line at
chance level when a model comes near it; each model's difference to RedNet-26 with its 95%
interval; and the published ImageNet figures.

Drawn on matplotlib's Agg canvas directly (no ``pyplot``): no global plotting state changes.
"""

import os

import math
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from tinyinvo.study.stats import TIMING_COLUMNS, analyze, group_by_model, mean_interval

OP_COLORS = {"conv3": "black", "inv7": "tab:red", "dw7": "tab:blue", "dw3": "tab:green"}
BLOCK_MARKERS = {"bottleneck": "o", "inverted": "^", "basic": "s"}
ERROR_BARS = "accuracy bars: 95% confidence interval of the mean (t); time bars: lowest to highest seed"
BENCHMARKED = "accuracy bars: 95% confidence interval of the mean (t); times: each model alone"
CHANCE = 10.0  # % accuracy of a guess: both data sets (shapes, CIFAR-10) have 10 balanced classes
# the chance line is drawn when some model scores below this (%); when all are far above it, an axis
# down to 10% would squash their differences, and their intervals, into a thin band at the top
NEAR_CHANCE = 3 * CHANCE
# the study's x axes: file name, (row key, scale, axis label) per panel
STUDY_FIGURES = {
    "accuracy_vs_macs.png": [("macs", 1e-6, "MACs per image (M)")],
    "accuracy_vs_params.png": [("params", 1e-6, "parameters (M)")],
    "accuracy_vs_time.png": [("train_seconds", 1, "training time (s, wall clock of the run)"),
                             ("inference_ms_per_image", 1, "inference time (ms per image, batch 256)")],
}
# the time panels with the times of benchmarks/bench_study_models.py (every model alone, on a quiet
# machine) in place of the runs' own, which shared the machine
BENCHMARKED_TIME_PANELS = [("train_seconds_per_epoch", 1, "training time per epoch (s, benchmarked)"),
                           ("inference_ms_per_image", 1, "inference time (ms per image, benchmarked)")]
DIFFERENCE_FIGURE = "accuracy_difference.png"
SUBTITLE_CHARACTERS = 80  # per panel: a longer line of the subtitle is cut off at the figure's edge
FAMILY_COLORS = {"conv": "black", "involution": "tab:red", "depthwise": "tab:blue"}
# where a point's label goes, in points from the point: below right, else above right, else further down
LABEL_OFFSETS = [(3, -8), (3, 3), (3, -15), (3, 10)]


def summarize(rows, timing=()):
    """One dict per model (in order of first appearance): its architecture columns, the number of
    seeds, and mean / min / max over seeds of test_accuracy, train_seconds, inference_ms_per_image,
    plus test_accuracy_ci_low / _ci_high, the 95% interval of the mean (nan for a single seed).

    With ``timing`` (rows of benchmarks/bench_study_models.py, ``stats.read_timing``) each model
    carries that benchmark's train_seconds_per_epoch and inference_ms_per_image instead of its runs'
    inference time. Raises ValueError when a model's rows come from different recipes
    (``stats.group_by_model``) or the timing has no row for a model."""
    timed = {row["model"]: row for row in timing}
    summary = []
    for name, runs in group_by_model(rows).items():
        entry = {key: runs[0][key] for key in ("model", "block", "op", "width", "expansion",
                                               "divisor", "params", "macs")}
        entry["seeds"] = len(runs)
        measured = dict(test_accuracy=[run["test_accuracy"] for run in runs],
                        train_seconds=[run["train_seconds"] for run in runs])
        if timing:
            if name not in timed:
                raise ValueError(f"the timing rows have no {name}: time every model of the study "
                                 f"(benchmarks/bench_study_models.py)")
            entry.update({column: timed[name][column] for column in TIMING_COLUMNS})
        else:
            measured["inference_ms_per_image"] = [1000 / run["inference_images_per_s"] for run in runs]
        for key, values in measured.items():
            entry[key] = float(np.mean(values))
            entry[f"{key}_min"], entry[f"{key}_max"] = float(np.min(values)), float(np.max(values))
        _, _, (entry["test_accuracy_ci_low"], entry["test_accuracy_ci_high"]) = mean_interval(
            measured["test_accuracy"])
        summary.append(entry)
    return summary


def study_figures(rows, title=None, timing=(), reference="bottleneck-inv7"):
    """The figures of STUDY_FIGURES for the result rows: a dict file name -> matplotlib Figure.

    With ``timing`` (see ``summarize``) the time figure shows the benchmarked times. When
    ``reference`` and another model both have two seeds or more, DIFFERENCE_FIGURE is added: each
    model's difference to ``reference`` with its 95% interval (``difference_figure``)."""
    summary = summarize(rows, timing)
    seeds = sorted({entry["seeds"] for entry in summary})
    subtitle = f"mean over {'/'.join(map(str, seeds))} seed(s); {BENCHMARKED if timing else ERROR_BARS}"
    near_chance = min(100 * entry["test_accuracy"] for entry in summary) < NEAR_CHANCE
    if not near_chance:
        subtitle += f"; chance ({CHANCE:g}%) is far below the axis"
    layout = {**STUDY_FIGURES, "accuracy_vs_time.png": BENCHMARKED_TIME_PANELS} if timing else STUDY_FIGURES
    figures = {}
    for filename, panels in layout.items():
        figure = _figure(len(panels))
        for axes, (key, scale, label) in zip(figure.axes, panels):
            for entry in summary:
                _model_point(axes, entry, key, scale)
            if near_chance:
                axes.axhline(CHANCE, color="gray", linestyle=":", linewidth=1,
                             label=f"chance ({CHANCE:g}%)")
            axes.set_xlabel(label)
            axes.set_ylabel("test accuracy (%)")
            axes.grid(alpha=0.3)
        figure.axes[0].legend(fontsize=8)
        wrapped = "\n".join(textwrap.wrap(subtitle, SUBTITLE_CHARACTERS * len(panels)))
        figure.suptitle(f"{title}\n{wrapped}" if title else wrapped, fontsize=10)
        figures[filename] = figure
    table = analyze(rows, reference=reference)
    if any(entry["diff"] is not None for entry in table):
        figures[DIFFERENCE_FIGURE] = difference_figure(table, reference, title)
    return figures


def difference_figure(table, reference, title=None):
    """Each model's mean test accuracy minus ``reference``'s, in points, with its 95% interval
    (Welch), one row per model of ``table`` (``stats.analyze``) that has one, and a line at zero:
    an interval that crosses it does not tell the two models apart."""
    compared = [entry for entry in table if entry["diff"] is not None]
    figure = _figure(1)
    axes = figure.axes[0]
    for row, entry in enumerate(compared):
        low, high = (100 * bound for bound in entry["diff_ci"])
        diff = 100 * entry["diff"]
        axes.errorbar(diff, row, xerr=[[diff - low], [high - diff]],
                      fmt=BLOCK_MARKERS.get(entry["block"], "o"),
                      color=OP_COLORS.get(entry["op"], "gray"), capsize=3, markersize=8)
    axes.axvline(0, color="gray", linestyle=":", linewidth=1)
    axes.set_yticks(range(len(compared)), [entry["model"] for entry in compared])
    axes.invert_yaxis()  # the first model on top, as in the table
    axes.set_xlabel(f"test accuracy minus {reference}'s (points)")
    axes.grid(alpha=0.3, axis="x")
    subtitle = "mean difference with its 95% confidence interval (Welch's t)"
    figure.suptitle(f"{title}\n{subtitle}" if title else subtitle, fontsize=10)
    return figure


def plot_study(rows, out_dir, title=None, timing=()):
    """Write the figures of study_figures to ``out_dir``; returns their paths."""
    paths = []
    for filename, figure in study_figures(rows, title, timing).items():
        paths.append(os.path.join(out_dir, filename))
        figure.savefig(paths[-1], dpi=100)
    return paths


def _figure(num_panels):
    figure = Figure(figsize=(6 * num_panels, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.subplots(1, num_panels, squeeze=False)
    return figure


def _model_point(axes, entry, key, scale):
    """One model: its mean accuracy with its 95% interval (none for one seed); on the measured
    time axes, bars from the lowest to the highest seed."""
    def spread(name, factor, low, high):
        mean = entry[name] * factor
        return mean, [[mean - entry[f"{name}_{low}"] * factor], [entry[f"{name}_{high}"] * factor - mean]]

    y, yerr = spread("test_accuracy", 100, "ci_low", "ci_high")
    if math.isnan(entry["test_accuracy_ci_low"]):
        yerr = None
    if f"{key}_min" in entry:
        x, xerr = spread(key, scale, "min", "max")
    else:
        x, xerr = entry[key] * scale, None
    axes.errorbar(x, y, yerr=yerr, xerr=xerr, fmt=BLOCK_MARKERS.get(entry["block"], "o"),
                  color=OP_COLORS.get(entry["op"], "gray"), capsize=3, markersize=8,
                  label=entry["model"])


def plot_published(models, path=None):
    """Top-1 against MACs (left) and params (right) of published ImageNet models, one line per
    family, coloured by spatial op (dense conv, involution, depthwise). Log x axes.

    Inputs: models, PublishedModel entries (tinyinvo.data.published); path, where to save the PNG.
    Returns the matplotlib Figure.
    """
    figure = _figure(2)
    families = {}
    for model in models:
        families.setdefault(model.family, []).append(model)
    for axes, key, label in zip(figure.axes, ("macs_g", "params_m"),
                                ("MACs per image (G), log scale", "parameters (M), log scale")):
        for family, members in families.items():
            members = sorted(members, key=lambda model: getattr(model, key))
            xs = [getattr(model, key) for model in members]
            axes.plot(xs, [model.top1 for model in members], "-",
                      color=FAMILY_COLORS[members[0].op],
                      alpha=0.8, label=family, marker=_family_marker(family, families))
            for model, x in zip(members, xs):
                axes.annotate(model.name, (x, model.top1), fontsize=6, xytext=LABEL_OFFSETS[0],
                              textcoords="offset points")
        axes.set_xscale("log")
        axes.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        for axis_ticks in (axes.xaxis.set_major_formatter, axes.xaxis.set_minor_formatter):
            axis_ticks(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.5, 2, 20: not 2x10^1
        axes.set_xlabel(label)
        axes.set_ylabel("ImageNet top-1 (%)")
        axes.grid(alpha=0.3, which="both")
    figure.axes[0].legend(fontsize=8)
    _separate_labels(figure)
    figure.suptitle("Published ImageNet results (224x224; EfficientNet-B1..B3 at 240/260/300): "
                    "black dense conv, red involution, blue depthwise", fontsize=10)
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def _separate_labels(figure):
    """Move each point label that would print over an earlier one to the first free LABEL_OFFSETS place.

    Two models with the same top-1 and close MACs (MobileNetV3-Large 1.0 and MnasNet-A1) would
    otherwise share a line. Labels are placed left to right, in data order, so the result is the same
    on every run.
    """
    renderer = figure.canvas.get_renderer()
    for axes in figure.axes:
        placed = []
        for label in sorted(axes.texts, key=lambda text: tuple(text.xy)):
            for offset in LABEL_OFFSETS:
                label.xyann = offset
                box = label.get_window_extent(renderer)
                if not any(box.overlaps(other) for other in placed):
                    break
            placed.append(box)


def _family_marker(family, families):
    """A different marker for each family of the same colour."""
    return "os^Dvp<>"[list(families).index(family) % 8]
