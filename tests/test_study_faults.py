"""The study survives faults on the real engine, without mocks: a Dask worker process killed in
the middle of the study costs nothing but time, and a study interrupted on the client resumes with
only the runs it lacks. Either way results.csv ends with the rows of the serial study without
faults, bit for bit."""

import os
import signal

import pytest

from tinyinvo.study import results, runs
# the tiny shapes study, its serial reference and the numpy backend: shared with the executor tests
from study_helpers import compare

pytestmark = pytest.mark.usefixtures("study_on_numpy")

RUNS = 4  # the tiny study: 2 models x 2 seeds


def after_first_write(monkeypatch, action):
    """Call ``action(path)`` on the client right after the study writes its first row."""
    write_results = results.write_results

    def write_then_act(path, rows):
        write_results(path, rows)
        if len(rows) == 1:
            action(path)

    monkeypatch.setattr(results, "write_results", write_then_act)


def test_a_dask_worker_killed_mid_study_changes_nothing_in_the_results(
        serial, tmp_path, monkeypatch):
    distributed = pytest.importorskip(
        "distributed",
        reason='Dask is optional: pip install "tinyinvo[cluster]" to test --scheduler')
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as observer:
        killed = []

        def kill_a_busy_worker(path):
            # one run is done, three are queued or training: each worker is busy with one
            busy = [address for address, keys in observer.processing().items() if keys]
            assert busy, "no run in flight to lose: the fault would test nothing"
            pid = observer.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker; Dask reschedules
            killed.append(pid)

        after_first_write(monkeypatch, kill_a_busy_worker)
        rows = compare(tmp_path, "--scheduler", cluster.scheduler_address)
        assert len(killed) == 1 and killed[0] not in observer.run(os.getpid).values()
    assert len(rows) == RUNS and len({row["run_id"] for row in rows}) == RUNS
    assert rows == serial


def test_an_interrupted_study_resumes_with_only_the_runs_it_lacks(
        serial, tmp_path, monkeypatch):
    def interrupt(path):
        raise KeyboardInterrupt  # as Ctrl-C on the client, once results.csv holds one row

    with monkeypatch.context() as interrupted:
        after_first_write(interrupted, interrupt)
        with pytest.raises(KeyboardInterrupt):
            compare(tmp_path)
    first = results.read_results(tmp_path / "results.csv")
    assert len(first) == 1

    trained = []  # the rerun's runs, counted in this process (the serial study)
    train_run = runs.train_run

    def counting_train_run(run, **options):
        trained.append(run.key())
        return train_run(run, **options)

    monkeypatch.setattr(runs, "train_run", counting_train_run)
    rows = compare(tmp_path)
    everything = {row["run_id"] for row in serial}
    assert len(trained) == RUNS - 1 and set(trained) == everything - {first[0]["run_id"]}
    assert rows == serial
