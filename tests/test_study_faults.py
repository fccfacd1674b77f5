"""The study survives faults on the real engine, without mocks: a Dask worker process or a local
pool's worker killed in the middle of the study costs nothing but time, and a study interrupted on
the client resumes with only the runs it lacks. Either way results.csv ends with the rows of the
serial study without faults, bit for bit. A client killed with kill -9 takes its workers with it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tinyinvo.study import results, runs
# the tiny shapes study, its serial reference and the numpy backend: shared with the executor tests
import study_helpers
from study_helpers import TINY, TINY_STUDY, compare
from tinyinvo.__main__ import main

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
        assert main(["compare", *TINY, "--out", str(tmp_path)]) == 130   # as after Ctrl-C
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


def test_kill_checkpoints_the_run_in_flight_and_the_rerun_continues_it(serial, tmp_path, monkeypatch,
                                                                      capsys):
    # `kill PID` (SIGTERM) during the second run's evaluation: the run saves its checkpoint (its
    # epoch is done), compare says how to go on and exits 130; the rerun trains no step again
    from tinyinvo.train import trainer as trainer_module

    evaluate, calls = trainer_module.evaluate, []
    sigterm_handler = signal.getsignal(signal.SIGTERM)

    def killed_in_the_second_evaluation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)   # compare turns it into Ctrl-C
        return evaluate(*args, **kwargs)

    with monkeypatch.context() as killed:
        killed.setattr(trainer_module, "evaluate", killed_in_the_second_evaluation)
        assert main(["compare", *TINY, "--out", str(tmp_path)]) == 130
    assert "the same command continues from there" in capsys.readouterr().out
    assert len(results.read_results(tmp_path / "results.csv")) == 1
    checkpoints = [name for name in os.listdir(tmp_path / "runs")
                   if os.path.exists(tmp_path / "runs" / name / "checkpoint.npz")]
    assert len(checkpoints) == 2                   # the finished run's and the one in flight
    assert signal.getsignal(signal.SIGTERM) is sigterm_handler  # put back after the study
    assert compare(tmp_path) == serial


def test_an_interrupted_local_pool_sends_its_workers_kill_so_their_runs_checkpoint(tmp_path):
    from tinyinvo.study.executors import LocalPool, train_on_worker

    pool = LocalPool(1, 1)
    try:
        future = pool.submit(train_on_worker, study_helpers.wait_for_kill, None, str(tmp_path), False,
                             "numpy", 1)
        deadline = time.monotonic() + 120
        while not (tmp_path / "waiting").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "waiting").exists(), "the worker did not start the run"
        pool.interrupt()
        assert future.result(timeout=60) == "checkpoint saved"
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_a_local_worker_killed_mid_study_is_replaced_and_its_run_retried(
        serial, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "train_run", study_helpers.train_but_die_once)
    assert compare(tmp_path, "--workers", "2", "--threads-per-worker", "1") == serial
    report = capsys.readouterr().err
    assert "BrokenProcessPool" in report and "trying it again" in report and "left out" not in report


def workers_of(pid):
    """The pids of the multiprocessing workers whose parent is ``pid`` (zombies left out)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                command = file.read()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z" and b"spawn_main" in command:
            found.append(int(entry))
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the workers through /proc")
def test_killing_the_client_ends_its_workers(tmp_path):
    long_study = [*TINY_STUDY, "--epochs", "200", "--workers", "2", "--threads-per-worker", "1",
                  "--backend", "numpy", "--out", str(tmp_path)]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    client = subprocess.Popen([sys.executable, "-m", "tinyinvo", "compare", *long_study],
                              env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(workers := workers_of(client.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) == 2, "the study's workers did not start"
        time.sleep(2)  # they are training now (200 epochs: hours, if nothing stopped them)
    finally:
        client.kill()  # kill -9: the client cannot clean up
        client.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers outlived their client"
