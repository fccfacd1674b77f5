"""The study's tuning protocol: every model gets the same small search of the peak learning rate on
a validation split held out of the training set, and its final runs use the rate it scored best.

    python -m tinyinvo compare ... --validation 5000 --tune-lrs 0.02,0.05,0.1,0.2,0.4 --seeds 1 --out T
    python -m tinyinvo compare ... --lr-from T/results.csv --seeds 3          # final, on the test set

The test set is never seen while tuning: ``choose_lrs`` accepts only rows scored on a validation
split. A model's rate is the one with the highest mean validation accuracy over its seeds; a tie
goes to the smaller rate. A rate chosen at the edge of a model's search (its largest or smallest
rate) is flagged: a rate beyond it may score better, so the search should be widened there.
"""

import numpy as np

from tinyinvo.study.results import DESIGN_COLUMNS


def rows_of_designs(rows, specs):
    """The rows trained by one of ``specs`` (tinyinvo.study.grid.ModelSpec): the same model name
    and the same value in every DESIGN_COLUMNS column. Tuning rows of an earlier design of a
    model (say, before a fix) never choose the rate of the design that is trained now."""
    designs = {(spec.name, *(getattr(spec, column) for column in DESIGN_COLUMNS)) for spec in specs}
    return [row for row in rows if (row["model"], *(row[column] for column in DESIGN_COLUMNS)) in designs]


def choose_lrs(rows, models):
    """{model: chosen peak lr} for each name in ``models`` from tuning rows (results.csv dicts).

    Raises ValueError when a row was scored on the test set, or a model has no tuning rows.
    """
    scored_on_test = sorted({row["model"] for row in rows if row["eval_split"] != "validation"})
    if scored_on_test:
        raise ValueError(f"tuning rows must be scored on a validation split, but rows of "
                         f"{scored_on_test} were scored on the test set")
    table = tuning_table(rows)
    missing = [name for name in models if name not in table]
    if missing:
        raise ValueError(f"no tuning rows for {missing}; the file has {sorted(table)}")
    return {name: max(sorted(table[name]), key=lambda lr: table[name][lr]) for name in models}


def tuning_table(rows):
    """{model: {lr: mean validation accuracy over its seeds}} in order of first appearance."""
    scores = {}
    for row in rows:
        scores.setdefault(row["model"], {}).setdefault(row["lr"], []).append(row["test_accuracy"])
    return {name: {lr: float(np.mean(values)) for lr, values in by_lr.items()}
            for name, by_lr in scores.items()}


def chosen_at_the_edge(rows):
    """{model: chosen lr} for the models whose chosen rate is the largest or the smallest of the
    two or more rates they were tried at: their searches did not bracket the best rate."""
    table = tuning_table(rows)
    chosen = choose_lrs(rows, list(table))
    return {name: chosen[name] for name, by_lr in table.items()
            if len(by_lr) > 1 and chosen[name] in (min(by_lr), max(by_lr))}


def format_edges(rows):
    """A line naming the models chosen at the edge of their search ("" when there are none)."""
    edges = chosen_at_the_edge(rows)
    if not edges:
        return ""
    return ("chosen at the edge of the search (a rate beyond it may score better): "
            + ", ".join(f"{name} {lr:g}" for name, lr in edges.items()))


def format_tuning(rows):
    """The tuning table as text: a row per model, a column per lr, the chosen rate marked with *."""
    table = tuning_table(rows)
    chosen = choose_lrs(rows, list(table))
    lrs = sorted({lr for by_lr in table.values() for lr in by_lr})
    lines = [f"validation accuracy (mean over seeds), * = chosen:\n{'model':<18}"
             + "".join(f"{'lr ' + format(lr, 'g'):>11}" for lr in lrs)]
    for name, by_lr in table.items():
        cells = [f"{by_lr[lr]:.2%}{'*' if lr == chosen[name] else ' '}" if lr in by_lr else "-"
                 for lr in lrs]
        lines.append(f"{name:<18}" + "".join(f"{cell:>11}" for cell in cells))
    return "\n".join(lines + [format_edges(rows)]).rstrip()
