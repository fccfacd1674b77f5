"""The study's runs as independent tasks of a concurrent.futures.Executor: a local process pool and
a Dask cluster give the serial study's results bit for bit, and a failing run is retried once,
reported and left out, never written."""

import dataclasses
import os
import subprocess
import sys

import pytest

from tinyinvo.__main__ import main
from tinyinvo.study import results, runs
from tinyinvo.study.executors import default_threads, default_workers, make_executor
from tinyinvo.study.grid import solve_grid

from study_helpers import TINY_STUDY, compare, computed_columns

pytestmark = pytest.mark.usefixtures("study_on_numpy")


def test_a_local_process_pool_gives_the_serial_results_bit_for_bit(serial, tmp_path):
    assert compare(tmp_path, "--workers", "2", "--threads-per-worker", "1") == serial


def test_a_dask_cluster_gives_the_serial_results_bit_for_bit(serial, tmp_path):
    distributed = pytest.importorskip(
        "distributed",
        reason='Dask is optional: pip install "tinyinvo[cluster]" to test --scheduler')
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster:
        assert compare(tmp_path, "--scheduler", cluster.scheduler_address) == serial


def test_a_failing_run_is_retried_once_reported_and_never_written(tmp_path, capsys):
    spec = solve_grid(["bottleneck-dw3"], 3_000_000)[0]
    recipe, data = dict(epochs=1, batch_size=32), dict(name="shapes", subset=(32, 16))
    good = runs.Run(spec, 0, recipe, data)
    impossible = runs.Run(dataclasses.replace(spec, width=0), 0, recipe, data)
    path = tmp_path / "results.csv"

    with make_executor(workers=2, threads_per_worker=1) as executor:
        rows = results.run_missing([impossible, good], path, runs.train_run, executor=executor,
                                   threads=1, progress=False)
    assert [row["run_id"] for row in rows] == [good.key()]
    assert [row["run_id"] for row in results.read_results(path)] == [good.key()]
    report = [line for line in capsys.readouterr().err.splitlines() if impossible.slug() in line]
    assert len(report) == 2 and all("ValueError: width must be a positive int" in line
                                    for line in report)
    assert report[0].endswith("trying it again") and "left out" in report[1]

    # a rerun (here in this process) tries the failed run again, and only that one
    rows = results.run_missing([impossible, good], path, runs.train_run, progress=False)
    assert [row["run_id"] for row in rows] == [good.key()]
    assert len(results.read_results(path)) == 1
    report = capsys.readouterr().err
    assert report.count(impossible.slug()) == 2 and good.slug() not in report


def test_a_worker_makes_numba_read_its_thread_count_before_the_pool_starts():
    # Numba reads NUMBA_NUM_THREADS when it is imported, and a worker imports it before
    # start_worker sets the count. Without a reload the pool started with every core, and the
    # first kernel that had to compile (one not yet in the disk cache) stopped every run with
    # "Cannot set NUMBA_NUM_THREADS to a different value once the threads have been launched".
    code = ("import os, numba\n"
            "from tinyinvo.study.executors import start_worker\n"
            "start_worker(7, os.getppid())\n"
            "print(numba.config.NUMBA_NUM_THREADS)")
    env = {name: value for name, value in os.environ.items() if name != "NUMBA_NUM_THREADS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["7"]


def test_by_default_every_core_runs_its_own_run_on_one_thread(monkeypatch):
    """One worker per core (the fastest layout measured), never more workers than runs."""
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert [default_workers(runs) for runs in (1, 3, 14)] == [1, 3, 8]
    assert default_threads(8) == 1 and default_threads(3) == 2
    monkeypatch.setattr("os.cpu_count", lambda: None)   # unknown: one run after the other
    assert default_workers(14) == 1


def test_compare_without_workers_uses_a_local_pool(tmp_path, monkeypatch, serial):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    opened = []

    def recording_make_executor(workers, threads_per_worker, scheduler):
        opened.append((workers, threads_per_worker, scheduler))
        return make_executor(workers, threads_per_worker, scheduler)

    monkeypatch.setattr("tinyinvo.study.command.make_executor", recording_make_executor)
    assert main(["compare", *TINY_STUDY, "--out", str(tmp_path)]) == 0
    assert opened == [(2, 1, None)]   # 2 cores: 2 workers of 1 thread
    assert computed_columns(tmp_path / "results.csv") == serial
