"""results.csv: one row per finished run, keyed by its run_id (a hash of the run's config).

Only the caller writes the file, after each finished run, by an atomic rewrite
(``tinyinvo.plumbing.atomic_write``): a crash or a full disk leaves the previous complete file,
never half a row. Each write holds a lock (``results.csv.lock``), re-reads the file and adds its
row to what is there, so two ``compare`` commands on one folder (say, with other ``--models``)
both keep their rows. A rerun skips the runs whose run_id is already there. Where the runs
execute (this process, worker processes, a Dask cluster) is the business of an Executor: see
``tinyinvo.study.executors``.
"""

from concurrent.futures import FIRST_COMPLETED, wait
import csv
import os
import sys

from tqdm.auto import tqdm

from tinyinvo.backend import get_backend
from tinyinvo.plumbing import atomic_write, locked
from tinyinvo.study.executors import InProcessExecutor, train_on_worker

RETRIES = 1  # times a failed run is tried again within one study

def _bool(text):
    if text not in ("True", "False"):
        raise ValueError(f"expected True or False, got {text!r}")
    return text == "True"


# column: type of its values (None / empty cells stay None). A row records everything its result
# depends on: the architecture, the seed, every recipe field, the data and which split was scored
# ("test", or "validation" for tuning runs), and the code (versions, commit) that made it.
COLUMNS = {
    "run_id": str, "model": str, "block": str, "op": str, "depth": int, "width": int,
    "expansion": int, "divisor": int, "op_norm": str, "zero_init_residual": _bool,
    "static_start": _bool, "params": int, "macs": int, "seed": int,
    "epochs": int, "batch_size": int, "lr": float, "momentum": float, "nesterov": _bool,
    "weight_decay": float, "warmup_epochs": float, "label_smoothing": float, "augment": _bool,
    "data": str, "eval_split": str, "n_train": int, "n_test": int,
    "test_accuracy": float, "test_loss": float, "train_seconds": float,
    "inference_images_per_s": float, "backend": str,
    "tinyinvo": str, "numpy": str, "numba": str, "commit": str,
}
# the columns that say what network a row trained (with "model", its name)
DESIGN_COLUMNS = ("block", "op", "depth", "width", "expansion", "divisor", "op_norm",
                  "zero_init_residual", "static_start")
# columns added after results files were first written, and the value every row of an older file
# had: such a file reads as if it held the column
ADDED_COLUMNS = {"static_start": "False"}


def read_results(path):
    """The rows of a results.csv as dicts with typed values; [] when the file does not exist.

    A line that cannot be read (cut short, a value of the wrong type) raises ValueError naming the
    file, the line and the column."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = sorted(set(COLUMNS) - set(reader.fieldnames or ()) - set(ADDED_COLUMNS))
        if missing:
            raise ValueError(f"{path} is not a results file of this version: it lacks {missing}")
        return [_typed({**ADDED_COLUMNS, **row}, path, reader.line_num) for row in reader]


def _typed(row, path, line):
    # a line that ends early is cut short, and its last value may be cut too: say so first
    cut = [key for key in COLUMNS if row[key] is None]
    typed = {}
    for key, kind in COLUMNS.items():
        text = row[key]
        try:
            if cut:
                key = cut[0]
                raise ValueError("the line is cut short")
            typed[key] = None if text == "" else kind(text)
        except ValueError as error:
            raise ValueError(f"{path}, line {line}, column {key}: {error}; fix or delete that "
                             f"line (a rerun trains its run again)") from None
    return typed


def write_results(path, rows):
    """Write ``rows`` (dicts with the keys of COLUMNS) to ``path`` atomically."""
    def write(file):
        writer = csv.DictWriter(file, fieldnames=list(COLUMNS), extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)

    atomic_write(path, write, binary=False)


def add_result(path, row):
    """Add ``row`` to ``path`` under the file's lock, keeping every row other writers added since
    we last read it (a row of the same run_id is replaced). Returns all rows now in the file."""
    with locked(path):
        rows = [old for old in read_results(path) if old["run_id"] != row["run_id"]] + [row]
        write_results(path, rows)
    return rows


def run_missing(runs, path, train, *, runs_dir=None, progress=True, executor=None, threads=None):
    """Train the runs that ``path`` does not hold yet, appending each row as soon as it is done.

    Every run is an independent task of ``executor``; only the caller writes ``path`` (under its
    lock, see ``add_result``). A run that fails, or whose local worker process dies, is reported
    and tried once more; one that fails twice is reported and left out
    (a rerun of the study tries it again).

    Inputs:
    - runs: list of Run (tinyinvo.study.runs)
    - path: the results.csv
    - train: the run function, ``train(run, run_dir=..., progress=...) -> row``; on worker
      processes or machines it must be importable there (a module-level function)
    - runs_dir: parent directory of the runs' checkpoint directories (None: no checkpoints); on a
      cluster, a directory that every worker sees under the same path
    - progress: one bar over the whole study (runs done / total); in this process, plus the runs'
      own bars
    - executor: a concurrent.futures.Executor (tinyinvo.study.executors.make_executor); None:
      one run after the other, in this process
    - threads: Numba and BLAS threads of each run on a worker (None: leave the worker's setting)
    Returns the rows of the finished runs of ``runs`` (before or now), in the order of ``runs``.
    """
    with locked(path):
        rows = read_results(path)
    done = {row["run_id"] for row in rows}
    todo = list({run.key(): run for run in runs if run.key() not in done}.values())
    in_process = executor is None
    executor = InProcessExecutor() if in_process else executor
    # in this process a submitted run has finished already: submit one at a time, so that each
    # row is written before the next run starts. A local pool gets one run per worker, so that
    # a worker that dies takes only the runs it was training with it; Dask queues every run.
    most_pending = 1 if in_process else getattr(executor, "max_workers", None) or max(1, len(todo))
    hidden = {} if progress else dict(disable=True)  # so that TQDM_DISABLE=1 still works
    with tqdm(total=len(runs), initial=len(runs) - len(todo), desc="study", unit="run",
              **hidden) as bar:

        def submit(run):
            run_dir = None if runs_dir is None else os.path.join(runs_dir, run.slug())
            return executor.submit(train_on_worker, train, run, run_dir, progress and in_process,
                                   get_backend(), threads)

        queue, pending, tries = list(reversed(todo)), {}, {run.key(): 0 for run in todo}
        while queue or pending:
            while queue and len(pending) < most_pending:
                run = queue.pop()
                tries[run.key()] += 1
                pending[submit(run)] = run
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                run = pending.pop(future)
                error = future.exception()
                if isinstance(error, KeyboardInterrupt):   # a worker stopped by Ctrl-C or kill:
                    raise KeyboardInterrupt                # its checkpoint is saved, stop the study
                if error is None:
                    rows = add_result(path, future.result())
                    bar.set_postfix(model=run.model.name, seed=run.seed)
                    bar.update(1)
                    continue
                again = tries[run.key()] < 1 + RETRIES
                outcome = "trying it again" if again else "left out: rerun the study to retry it"
                bar.write(f"run {run.slug()} failed ({type(error).__name__}: {error}); {outcome}",
                          file=sys.stderr)
                if again:
                    queue.append(run)
    with locked(path):  # with the rows another client may have added meanwhile
        rows = read_results(path)
    by_key = {row["run_id"]: row for row in rows}
    return [by_key[run.key()] for run in runs if run.key() in by_key]
