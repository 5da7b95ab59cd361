"""The point tiler's worker pool: forkserver (never fork), prestarted by ``cim convert`` and
adopted by the next pool of that size."""
from __future__ import annotations

import multiprocessing
import os

from tiling.pointcloud import pool


def _pid() -> int:
    return os.getpid()


def test_prestarted_pool_is_adopted_once() -> None:
    pool.prestart(2)
    try:
        prestarted = pool._prestarted[-1]
        with pool.worker_pool(2) as adopted:
            assert adopted is prestarted
            pids = {adopted.submit(_pid).result() for _ in range(8)}
            assert os.getpid() not in pids and 1 <= len(pids) <= 2
        assert not pool._prestarted
        with pool.worker_pool(2) as fresh:
            assert fresh is not prestarted
    finally:
        pool.discard_prestarted()


def test_a_pool_of_another_size_is_not_adopted_and_discard_stops_it() -> None:
    pool.prestart(2)
    with pool.worker_pool(1) as other:
        assert other is not None and other._max_workers == 1
    assert len(pool._prestarted) == 1
    pool.discard_prestarted()
    assert not pool._prestarted


def test_no_workers_means_this_process() -> None:
    with pool.worker_pool(0) as none:
        assert none is None


def test_workers_are_not_forked() -> None:
    with pool.worker_pool(1) as p:
        assert p is not None
        assert p._mp_context.get_start_method() in ("forkserver", "spawn")
    assert "forkserver" in multiprocessing.get_all_start_methods()
