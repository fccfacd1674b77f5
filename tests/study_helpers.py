"""Shared by the study tests: a tiny study on `shapes` and how to read what it computed."""

from threadpoolctl import threadpool_limits

from tinyinvo.__main__ import main
from tinyinvo.study import results

TINY_STUDY = ["--data", "shapes", "--subset", "64,32", "--macs", "3M", "--epochs", "1",
              "--batch-size", "32", "--models", "bottleneck-conv3,bottleneck-dw3", "--seeds", "2"]
# in this process, one run after the other (the tests that want workers ask for them)
TINY = [*TINY_STUDY, "--workers", "1"]
# what a run computes; the timings (train_seconds, inference_images_per_s) legitimately differ
COMPUTED = ["run_id", "model", "seed", "width", "params", "macs", "test_accuracy", "test_loss",
            "backend"]


def computed_columns(path):
    rows = sorted(results.read_results(path), key=lambda row: row["run_id"])
    return [{key: row[key] for key in COMPUTED} for row in rows]


def compare(out, *options):
    """Run the tiny study into ``out`` and return its computed columns, sorted by run id.

    Runs in this process use 1 BLAS thread, as the 1-thread workers they are compared with do:
    OpenBLAS may round differently on another thread count."""
    with threadpool_limits(1):
        assert main(["compare", *TINY, "--out", str(out), *options]) == 0
    return computed_columns(out / "results.csv")


def train_but_die_once(run, *, run_dir, progress):
    """The run function, except that the worker training bottleneck-conv3 with seed 0 is killed
    (as the out-of-memory killer would) the first time. Module level: workers import it."""
    import os
    import signal

    from tinyinvo.study import runs

    marker = os.path.join(run_dir, "killed-once")
    if run.model.name == "bottleneck-conv3" and run.seed == 0 and not os.path.exists(marker):
        os.makedirs(run_dir, exist_ok=True)
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return runs.train_run(run, run_dir=run_dir, progress=progress)


def wait_for_kill(run, *, run_dir, progress):
    """A run function that trains nothing: it waits until SIGTERM reaches its worker as Ctrl-C
    (``train_on_worker``) and answers what a Trainer would do then. Module level: workers import it."""
    import os
    import time

    open(os.path.join(run_dir, "waiting"), "w").close()   # for the test: the worker is in the run
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        return "checkpoint saved"
