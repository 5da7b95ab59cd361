"""The point tiler's worker processes: a process pool started with ``forkserver`` (``spawn``
where it is missing), never ``fork`` (the LAZ decoder runs threads, and a fork after threads can
deadlock), and started early when the caller knows it will tile points.

Light on purpose (standard library only): ``cim convert`` calls :func:`prestart` before its own
heavy imports, so that the workers start (and import numpy, pyproj and the tiler) while the main
process is still starting; :func:`worker_pool` then adopts the prestarted pool.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from cim.cpus import usable_cpus

_prestarted: list[ProcessPoolExecutor] = []


def default_workers() -> int:
    return usable_cpus()


def _new_pool(workers: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["cim.worker_env"])  # one BLAS thread per worker (decision 39)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _warm_up() -> None:
    """Runs once in each prestarted worker: import what the tasks will need."""
    import tiling.pointcloud.worker  # noqa: F401


def prestart(workers: int | None = None) -> None:
    """Start ``workers`` (default: one per CPU) worker processes now, for the next
    :func:`worker_pool` of that size in this process."""
    if _prestarted:
        return
    workers = workers or default_workers()
    pool = _new_pool(workers)
    for _ in range(workers):
        pool.submit(_warm_up)
    _prestarted.append(pool)


def discard_prestarted() -> None:
    """Stop a prestarted pool nobody adopted (e.g. the input was not a point cloud)."""
    while _prestarted:
        _prestarted.pop().shutdown(wait=False, cancel_futures=True)


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of ``workers`` processes (None for 0: work in this process), shut down on exit.
    Adopts the prestarted pool when it has that size."""
    if workers <= 0:
        yield None
        return
    pool = _prestarted.pop() if _prestarted and _prestarted[-1]._max_workers == workers else _new_pool(workers)
    with pool:
        yield pool
