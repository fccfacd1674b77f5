"""Metric logs: one row per epoch, written as ``metrics.csv`` (for a spreadsheet) and
``metrics.jsonl`` (one JSON object per line, for code).

A row is a flat dict such as ``{"epoch": 3, "lr": 0.08, "train_loss": 0.9, "test_accuracy": 0.71,
...}``. Both files are rewritten from the whole history after every epoch, so after a resume they
hold exactly the rows of the checkpoint (nothing duplicated, nothing lost). Each file is written
atomically, so a full disk keeps the previous one.
"""

import csv
import json
import os

from tinyinvo.plumbing import atomic_write


def write_metrics(history, directory):
    """Write ``history`` (a list of row dicts with the same keys) to directory/metrics.{csv,jsonl}.

    Returns (csv_path, jsonl_path).
    """
    csv_path = os.path.join(directory, "metrics.csv")
    jsonl_path = os.path.join(directory, "metrics.jsonl")
    columns = list(history[0]) if history else []

    def write_csv(file):
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)

    atomic_write(csv_path, write_csv, binary=False)
    atomic_write(jsonl_path, lambda file: file.writelines(json.dumps(row) + "\n" for row in history),
                 binary=False)
    return csv_path, jsonl_path


def read_metrics(path):
    """The rows of a ``metrics.jsonl`` file, as a list of dicts (e.g. to plot a finished run)."""
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]
