"""results.csv: one row per finished run, keyed by its run_id (a hash of the run's config).

Only the caller writes the file, after each finished run, by an atomic rewrite (a temporary file,
then ``os.replace``): a crash leaves the previous complete file, never half a row. A rerun skips
the runs whose run_id is already there.
"""

import csv
import os
import tempfile

from tqdm.auto import tqdm

# column: type of its values (None / empty cells stay None)
COLUMNS = {
    "run_id": str, "model": str, "block": str, "op": str, "depth": int, "width": int,
    "expansion": int, "divisor": int, "params": int, "macs": int, "seed": int, "epochs": int,
    "batch_size": int, "lr": float, "weight_decay": float, "data": str, "n_train": int,
    "n_test": int, "test_accuracy": float, "test_loss": float, "train_seconds": float,
    "inference_images_per_s": float, "backend": str,
}


def read_results(path):
    """The rows of a results.csv as dicts with typed values; [] when the file does not exist."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = sorted(set(COLUMNS) - set(reader.fieldnames or ()))
        if missing:
            raise ValueError(f"{path} is not a results file of this version: it lacks {missing}")
        return [{key: None if row[key] == "" else COLUMNS[key](row[key]) for key in COLUMNS}
                for row in reader]


def write_results(path, rows):
    """Write ``rows`` (dicts with the keys of COLUMNS) to ``path`` atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".results-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(COLUMNS), extrasaction="raise")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def run_missing(runs, path, train, *, runs_dir=None, progress=True):
    """Train the runs that ``path`` does not hold yet, appending each row as soon as it is done.

    Inputs:
    - runs: list of Run (tinyinvo.study.runs)
    - path: the results.csv
    - train: the run function, ``train(run, run_dir=..., progress=...) -> row``
    - runs_dir: parent directory of the runs' checkpoint directories (None: no checkpoints)
    - progress: one bar over the whole study (runs done / total) plus the runs' own bars
    Returns the rows of ``runs`` (finished before or now), in the order of ``runs``.
    """
    rows = read_results(path)
    done = {row["run_id"] for row in rows}
    todo = [run for run in runs if run.key() not in done]
    hidden = {} if progress else dict(disable=True)  # so that TQDM_DISABLE=1 still works
    with tqdm(total=len(runs), initial=len(runs) - len(todo), desc="study", unit="run",
              **hidden) as bar:
        for run in todo:
            bar.set_postfix(model=run.model.name, seed=run.seed)
            run_dir = None if runs_dir is None else os.path.join(runs_dir, run.slug())
            rows.append(train(run, run_dir=run_dir, progress=progress))
            write_results(path, rows)
            bar.update(1)
    by_key = {row["run_id"]: row for row in rows}
    return [by_key[run.key()] for run in runs]
