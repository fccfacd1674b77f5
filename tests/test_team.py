"""The team that runs a convolution's pieces on all threads (tinyinvo/ops/numba_backend/team.py)."""

import threading

import numba
import pytest
from threadpoolctl import threadpool_info

from tinyinvo.backend import blas_on_one_thread, set_num_threads
from tinyinvo.ops.numba_backend import team

needs_two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="Numba was started with one thread (NUMBA_NUM_THREADS=1)")


@pytest.fixture
def two_threads():
    threads = numba.get_num_threads()
    set_num_threads(2)
    yield
    set_num_threads(threads)


def test_batches_cover_every_item_once_in_order():
    assert team.batches(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert team.batches(6, 3) == [(0, 3), (3, 6)]
    assert team.batches(0, 3) == []


@pytest.mark.parametrize("total, largest", [(128, 14), (128, 28), (128, 3), (128, 200), (5, 2), (3, 10),
                                            (7, 1)])
def test_even_batches_cover_every_item_once_evenly_in_a_multiple_of_four(total, largest):
    batches = team.even_batches(total, largest)
    assert [start for start, _ in batches] == [0] + [stop for _, stop in batches[:-1]]
    assert batches[-1][1] == total
    sizes = [stop - start for start, stop in batches]
    assert all(1 <= size <= largest for size in sizes) and max(sizes) - min(sizes) <= 1
    assert len(batches) == total or len(batches) % team.BATCHES_MULTIPLE == 0
    assert len(batches) < -(-total // largest) + team.BATCHES_MULTIPLE      # no more than needed


def test_even_batches_of_nothing_are_none():
    assert team.even_batches(0, 3) == []


def test_even_batches_of_128_images_share_evenly_on_two_or_four_threads():
    # 5 batches of at most 28 images would leave one of two threads with 3 of them: 8 of 16 instead
    assert team.even_batches(128, 28) == [(start, start + 16) for start in range(0, 128, 16)]


@needs_two_threads
def test_pieces_run_on_several_threads_and_come_back_in_piece_order(two_threads):
    barrier = threading.Barrier(2, timeout=10)   # only passes if two threads work at once

    def work(piece):
        if piece < 2:
            barrier.wait()
        return piece * 10, threading.current_thread().name

    results = team.run_pieces(work, list(range(9)))
    assert [value for value, _ in results] == [piece * 10 for piece in range(9)]
    assert len({name for _, name in results}) == 2


@needs_two_threads
def test_blas_runs_on_one_thread_inside_a_piece_and_gets_its_threads_back(two_threads):
    def blas_threads(piece):
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads(None)
    assert all(counts == [1] * len(before) for counts in team.run_pieces(blas_threads, [0, 1, 2]))
    assert blas_threads(None) == before


@needs_two_threads
def test_blas_on_one_thread_limits_blas_inside_the_block_only(two_threads):
    def blas_threads():
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    assert before and max(before) == 2          # set_num_threads(2) gave BLAS two threads
    with blas_on_one_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


@needs_two_threads
def test_an_error_in_a_piece_is_raised_after_every_piece_has_stopped(two_threads):
    finished = []

    def work(piece):
        if piece == 3:
            raise ValueError("piece 3 failed")
        finished.append(piece)

    with pytest.raises(ValueError, match="piece 3 failed"):
        team.run_pieces(work, list(range(8)))
    assert sorted(finished) == [0, 1, 2, 4, 5, 6, 7]
