"""tinyinvo.plumbing: atomic writes that keep the previous file on a full disk, follow the umask
and clean up after killed writers; a lock that keeps every row of two writers; and a training
run that meets a full disk at any of its files stops cleanly and resumes."""

import errno
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tinyinvo.__main__ import main
from tinyinvo import plumbing
from tinyinvo.study import results
from tinyinvo.train import load_checkpoint


def test_atomic_write_follows_the_umask(tmp_path):
    for umask, mode in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        previous = os.umask(umask)
        try:
            plumbing.atomic_write(tmp_path / "file.csv", lambda file: file.write(b"x"))
        finally:
            os.umask(previous)
        assert os.stat(tmp_path / "file.csv").st_mode & 0o777 == mode


def test_leftovers_of_dead_writers_are_removed_and_no_others(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    names = {f".tmp-{host}-{dead}-abc.npz": False,          # killed mid-write: removed
             f".tmp-{host}-{os.getpid()}-abc.npz": True,    # a live writer's: kept
             f".tmp-otherhost-{dead}-abc.npz": True,        # another machine's, on a shared disk
             "checkpoint.npz": True}
    for name in names:
        (tmp_path / name).write_bytes(b"x" * 100)
    plumbing.atomic_write(tmp_path / "metrics.csv", lambda file: file.write(b"epoch\n"))
    assert sorted(os.listdir(tmp_path)) == sorted([name for name, kept in names.items() if kept]
                                                  + ["metrics.csv"])


def a_row(run_id):
    """A results row with a value of the right type in every column."""
    row = {key: True if kind is results._bool else kind("1") for key, kind in results.COLUMNS.items()}
    return dict(row, run_id=run_id)


def test_two_processes_adding_rows_under_the_lock_lose_none(tmp_path):
    path = tmp_path / "results.csv"
    writer = ("import sys\nfrom tinyinvo.study import results\nfrom test_plumbing import a_row\n"
              "for i in range(15):\n"
              "    results.add_result(sys.argv[2], a_row(f'{sys.argv[1]}-{i}'))\n")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    clients = [subprocess.Popen([sys.executable, "-c", writer, name, str(path)], env=environment)
               for name in ("a", "b")]
    assert [client.wait(timeout=120) for client in clients] == [0, 0]
    run_ids = sorted(row["run_id"] for row in results.read_results(path))
    assert run_ids == sorted(f"{name}-{i}" for name in "ab" for i in range(15))


def test_a_stale_reader_keeps_the_rows_another_client_wrote(tmp_path):
    path = tmp_path / "results.csv"
    row_a, row_b = a_row("a"), a_row("b")
    results.add_result(path, row_a)         # client A started when the file held nothing
    results.add_result(path, row_b)         # ... client B adds its row
    assert [row["run_id"] for row in results.read_results(path)] == ["a", "b"]


def test_a_bad_results_line_names_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "results.csv"
    results.write_results(path, [a_row("a"), a_row("b")])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[2][:20]]) + "\n")  # the last line cut short
    with pytest.raises(ValueError, match=r"results.csv, line 3, column \w+: the line is cut short"):
        results.read_results(path)
    assert main(["compare", "--macs", "3M", "--models", "bottleneck-dw3", "--subset", "64,32",
                 "--out", str(tmp_path)]) == 2
    assert "error: --out: " in capsys.readouterr().err


@pytest.mark.parametrize("target", ["checkpoint.npz", "metrics.csv", "metrics.jsonl",
                                    "curves.png"])
def test_a_full_disk_at_any_write_keeps_the_previous_file_and_the_run_resumes(
        tmp_path, capsys, monkeypatch, target):
    out = str(tmp_path / "run")
    argv = ["train", "--model", "resnet20", "--width", "4", "--subset", "64,40", "--batch-size",
            "32", "--backend", "numpy", "--epochs", "2", "--out", out]
    suffix = os.path.splitext(target)[1]
    fsync, writes, kept = os.fsync, [], {}

    def fsync_with_a_full_disk(descriptor):
        name = os.readlink(f"/proc/self/fd/{descriptor}")
        if os.path.basename(name).startswith(".tmp-") and name.endswith(suffix):
            writes.append(name)
            if len(writes) == 2:  # the second write of the target: after epoch 1, or at epoch 2
                with open(os.path.join(out, target), "rb") as file:
                    kept["bytes"] = file.read()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fsync(descriptor)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to tell which file is being written")
    monkeypatch.setattr(plumbing.os, "fsync", fsync_with_a_full_disk)
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert f"error: could not write {os.path.join(out, target)} (No space left on device)" in printed
    with open(os.path.join(out, target), "rb") as file:
        assert file.read() == kept["bytes"]  # the previous version, whole
    assert not [name for name in os.listdir(out) if name.startswith(".tmp-")]
    monkeypatch.undo()

    assert main(["train", "--resume", "--out", out]) == 0
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["progress"]["epoch"] == 2
    with open(os.path.join(out, "metrics.csv")) as file:
        assert len(file.read().splitlines()) == 3  # header + 2 epochs: caught up after the resume


def test_load_data_by_source_takes_json_lists():
    data = plumbing.load_data(dict(name="shapes", subset=[16, 8], seed=1))
    assert (len(data.y_train), len(data.y_test)) == (16, 8)
    np.testing.assert_array_equal(data.x_train, plumbing.load_data(
        dict(name="shapes", subset=(16, 8), seed=1)).x_train)
