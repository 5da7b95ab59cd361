"""The point-cloud tiling pipeline: store point blocks -> out-of-core octree -> 3D Tiles.

1. **Plane and cube**: the cloud's extent (from its ``PointCloud`` feature) is mapped into an
   ENU plane at its centre; the octree's root cube encloses it.
2. **Distribute**: workers decode the store's blocks, transform the points (source frame ->
   ECEF -> plane ENU, float64) and append them to the spill file of their node at the *bucket
   level*, chosen so that one bucket holds about half of ``memory_points``.
3. **Build**: each bucket is built in memory by a worker (a bucket over the budget is first
   split into its 8 children on disk): grid subsampling top-down, one tile per node. The points
   a bucket selects for the levels above it are sent back; the main process writes those tiles.
4. **Tileset**: tiles get the transform of their cube centre (a translation in the plane; the
   root's is the plane's ENU->ECEF matrix), a box over their content and children, and a
   geometric error of ``error_factor`` times their point spacing (0 for leaves); refinement ADD.

Peak memory is about ``memory_points`` points per worker whatever the input size. Workers are
started with ``forkserver`` (``spawn`` where it is missing): the converters decode LAZ on threads
and a ``fork`` after threads can deadlock (:mod:`tiling.pointcloud.pool`).
"""
from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from cim.classes import CityClass
from cim.crs import Frame, frame_from_spec
from cim.errors import EmptyInputError, StoreError
from cim.points import PointPiece, PointStats
from cim.store.base import Store
from tiling import bounding_volume as bv
from tiling.frames import ecef_to_local, enu_frame_at
from tiling.pointcloud.content import GENERATOR
from tiling.pointcloud.pool import default_workers, worker_pool
from tiling.pointcloud.octree import POINT, Address, Cube, bucket_level, cube_around, grid_bits, parent, spacing
from tiling.pointcloud.worker import Job, NodeRecord, build_bucket, distribute_block, distribute_piece, write_node
from tiling.tileset import ADD, Tile, tileset_json, write_tileset

Progress = Callable[[int, int], None]
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointCloudParams:
    """Tiling settings. ``memory_points`` bounds the points one worker holds at once (about
    100 bytes each while building), so peak memory does not grow with the input."""

    grid: int = 128
    leaf_points: int = 60_000
    memory_points: int = 1_000_000
    workers: int | None = None  # None: one per CPU; 0: everything in this process
    serial_below: int = 250_000  # smaller clouds are tiled in this process (no start-up cost)
    error_factor: float = 4.0


@dataclass
class PointTilesetResult:
    root: Tile
    points: int
    contents: int
    bytes: int
    depth: int
    geometric_error: float


class PointDistribution:
    """Phase 2 (distribute), fed one store-encoded block at a time (:func:`cim.points.encode_block`).

    Made by :func:`build_point_tiles` over the store's blocks, or beforehand by the one-shot
    convert path with the extent and point count its files' headers declare, and fed while the
    import decodes (so decoding and distributing overlap); :func:`build_point_tiles` then only
    checks that the imported dataset fits it (:meth:`fits`) and builds. Owns the worker pool and
    the spill folder: :meth:`close` (also on errors) stops the one and removes the other.
    """

    def __init__(self, frame_spec: dict[str, Any], extent: tuple[np.ndarray, np.ndarray], total: int,
                 out_dir: Path, *, format: str, params: PointCloudParams | None = None,
                 progress: Progress | None = None) -> None:
        self.params = params = params or PointCloudParams()
        self.total = total
        self.extent = (np.asarray(extent[0], np.float64), np.asarray(extent[1], np.float64))
        self.progress = progress
        self.world, self.cube = _plane(frame_from_spec(frame_spec), self.extent)
        self.out_dir = Path(out_dir)
        self.spill = self.out_dir / ".spill"
        self.spill.mkdir(parents=True, exist_ok=True)
        grid_bits(params.grid)  # a power of two (ValueError otherwise)
        self.level = bucket_level(total, params.memory_points)
        self.job = Job(self.cube, self.world, frame_spec, self.level, params.grid, params.leaf_points,
                       params.memory_points, str(self.spill), str(self.out_dir), format)
        workers = default_workers() if params.workers is None else params.workers
        self.workers = 0 if total < params.serial_below else workers
        self._stack = ExitStack()
        self.pool = self._stack.enter_context(worker_pool(self.workers))
        self._pending: deque[Future[tuple[int, list[str]]]] = deque()
        self.buckets: set[str] = set()
        self.blocks = 0
        self.done = 0
        self.t_start = time.perf_counter()

    def add(self, blob: bytes) -> None:
        """Distribute the next block (blocks must come in store order: their index orders points)."""
        seq, self.blocks = self.blocks, self.blocks + 1
        if self.pool is None:
            self._collect(distribute_block(self.job, seq, blob))
            return
        self._pending.append(self.pool.submit(distribute_block, self.job, seq, blob))
        if len(self._pending) >= 2 * self.workers:  # bounded: at most 2 blocks per worker in flight
            self._collect(self._pending.popleft().result())

    def add_pieces(self, pieces: Sequence[PointPiece],
                   on_piece: Callable[[int, PointStats], None] | None = None) -> None:
        """Distribute the input files' points, decoded piece by piece by the workers
        (:class:`cim.points.PointPiece`: nothing passes through this process). The pieces
        number as store blocks would (in order, after any block already added), so the tiles
        are those of a build from the store. ``on_piece(index, stats)`` is called in order as
        pieces are done."""
        first = self.blocks
        self.blocks += len(pieces)
        if self.pool is None:
            for i, piece in enumerate(pieces):
                n, touched, stats = distribute_piece(self.job, first + i, piece)
                self._collect((n, touched))
                if on_piece is not None:
                    on_piece(i, stats)
            return
        pending: deque[Future[tuple[int, list[str], PointStats]]] = deque()
        done = 0
        try:
            for i, piece in enumerate(pieces):
                pending.append(self.pool.submit(distribute_piece, self.job, first + i, piece))
                if len(pending) >= 2 * self.workers:  # bounded: at most 2 pieces per worker in flight
                    done = self._collect_piece(pending, done, on_piece)
            while pending:
                done = self._collect_piece(pending, done, on_piece)
        except BaseException:
            for future in pending:
                future.cancel()
            raise

    def _collect_piece(self, pending: deque[Future[tuple[int, list[str], PointStats]]], index: int,
                       on_piece: Callable[[int, PointStats], None] | None) -> int:
        n, touched, stats = pending.popleft().result()
        self._collect((n, touched))
        if on_piece is not None:
            on_piece(index, stats)
        return index + 1

    def finish(self) -> None:
        """Wait for every block sent."""
        while self._pending:
            self._collect(self._pending.popleft().result())

    def fits(self, total: int, extent: tuple[np.ndarray, np.ndarray]) -> bool:
        """True when the dataset actually imported (``total`` points within ``extent``, source
        frame) is the one announced: same count, extent inside the announced one give or take a
        millionth of its size (header bounds are rounded; the cube's margin is a thousandth)."""
        lo, hi = self.extent
        tol = 1e-6 * np.maximum(hi - lo, 1.0)
        return (total == self.total and self.blocks > 0 and bool(np.all(extent[0] >= lo - tol))
                and bool(np.all(extent[1] <= hi + tol)))

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._stack.close()
        shutil.rmtree(self.spill, ignore_errors=True)

    def _collect(self, result: tuple[int, list[str]]) -> None:
        n, touched = result
        self.buckets.update(touched)
        self.done += n
        if self.progress is not None:
            self.progress(self.done, 2 * self.total)


def build_point_tiles(store: Store, dataset: str, out_dir: Path, *, format: str,
                      progress: Progress | None = None, params: PointCloudParams | None = None,
                      distribution: PointDistribution | None = None) -> tuple[dict[str, Any], PointTilesetResult]:
    """Tile the point-cloud dataset ``dataset`` into ``out_dir``; returns (tileset JSON, result).

    ``distribution``: the distribution already done while importing (see
    :class:`PointDistribution`); used when the dataset fits it, else redone from the store's
    blocks. It is closed in any case.
    """
    params = params or PointCloudParams()
    info = store.get_dataset(dataset)
    _, stored = store.point_block_count(dataset)
    try:
        total, extent = point_cloud_summary(store, dataset)
        if total == 0:
            raise EmptyInputError(f"dataset '{dataset}' has no point to tile", dataset=dataset)
        if distribution is not None:
            distribution.finish()
            if not distribution.fits(total, extent):
                if stored != total:
                    raise StoreError(f"dataset '{dataset}' does not fit the distribution made while importing it "
                                     "and its points were not stored: import it again")
                log.info("the imported cloud does not fit the extent its headers declared: distributing again")
                distribution.close()
                distribution = None
        if distribution is None:
            if stored != total:
                raise StoreError(f"dataset '{dataset}' holds {stored} of its {total} points: import it again",
                                 dataset=dataset)
            distribution = PointDistribution(info.frame, extent, total, out_dir, format=format, params=params,
                                              progress=progress)
            for blob in store.point_blocks(dataset):
                distribution.add(blob)
            distribution.finish()
        dist = distribution
        return _build(dist, dist.params, info, dataset, total, format, progress)
    finally:
        if distribution is not None:
            distribution.close()


def _build(dist: PointDistribution, params: PointCloudParams, info: Any, dataset: str, total: int, format: str,
           progress: Progress | None) -> tuple[dict[str, Any], PointTilesetResult]:
    """Phases 3 and 4: build the distributed buckets and write the tileset."""
    job, cube, world, pool, workers = dist.job, dist.cube, dist.world, dist.pool, dist.workers
    done = dist.done
    records: list[NodeRecord] = []
    upper: dict[Address, list[bytes]] = {}
    t_distributed = time.perf_counter()
    log.debug("distributed %d points into %d level-%d buckets in %.2f s", total, len(dist.buckets), dist.level,
              t_distributed - dist.t_start)
    addresses = sorted(_address(name) for name in dist.buckets)
    for node_records, node_upper in _bounded(pool, build_bucket, ((job, a) for a in addresses), workers):
        records += node_records
        for addr, data in node_upper:
            upper.setdefault(addr, []).append(data)
        done += sum(r.points for r in node_records)
        if progress is not None:
            progress(done, 2 * total)
    log.debug("built %d buckets in %.2f s", len(addresses), time.perf_counter() - t_distributed)
    for addr in sorted(upper):
        pts = np.concatenate([np.frombuffer(d, POINT) for d in upper[addr]])
        if len(pts):
            records.append(write_node(job, addr, pts, leaf=False))
    out_dir = dist.out_dir
    if progress is not None:
        progress(2 * total, 2 * total)
    root = _assemble(records, cube, world, params)
    written = sum(r.points for r in records)
    if written != total:
        raise AssertionError(f"the octree holds {written} points of {total}")
    error = _error(cube, 0, params) * 2
    root_box = root.bounding_volume["box"]
    assert root.transform is not None
    region = bv.region_from_box(root_box, root.transform)
    root.bounding_volume = {"box": root_box, "region": region}
    root.refine = ADD
    extras = {"dataset": dataset, "features": info.feature_count, "feature_count": info.feature_count,
              "points": total, "frame": info.frame, "classes": dict(info.class_counts)}
    doc = tileset_json(root, version=format, geometric_error=error, generator=GENERATOR, extras=extras)
    size = write_tileset(out_dir / "tileset.json", doc)
    result = PointTilesetResult(root, total, len(records), sum(r.bytes for r in records) + size,
                                max(r.address[0] for r in records), doc["geometricError"])
    return doc, result


def point_cloud_summary(store: Store, dataset: str) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
    """(point count, (min, max) extent in the source frame) of a point-cloud dataset, from the
    ``PointCloud`` feature that describes it."""
    for feature in store.iter_features(dataset):
        if feature.city_class == CityClass.POINT_CLOUD:
            a = feature.attributes
            lo = np.array([a["extent.xmin"], a["extent.ymin"], a["extent.zmin"]], np.float64)
            hi = np.array([a["extent.xmax"], a["extent.ymax"], a["extent.zmax"]], np.float64)
            return int(a["point_count"]), (lo, hi)  # type: ignore[arg-type]
    raise EmptyInputError(f"dataset '{dataset}' has no PointCloud feature describing its points", dataset=dataset)


def _plane(frame: Frame, extent: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, Cube]:
    """The ENU plane at the cloud's centre and the root cube enclosing the cloud in it."""
    lo, hi = extent
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    # the edge midpoints too: a projected or geographic edge is curved in the plane
    mids = np.array([[(lo[0] + hi[0]) / 2, y, z] for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
                    + [[x, (lo[1] + hi[1]) / 2, z] for x in (lo[0], hi[0]) for z in (lo[2], hi[2])])
    world = enu_frame_at(frame.to_ecef(((lo + hi) / 2).reshape(1, 3))[0])
    local = ecef_to_local(world, frame.to_ecef(np.vstack([corners, mids])))
    return world, cube_around(local.min(axis=0), local.max(axis=0))


def _error(cube: Cube, level: int, params: PointCloudParams) -> float:
    return params.error_factor * spacing(cube, level, params.grid)


def _assemble(records: list[NodeRecord], cube: Cube, world: np.ndarray, params: PointCloudParams) -> Tile:
    """The tile tree over the written nodes (ancestors without content are kept as empty tiles)."""
    by_address = {r.address: r for r in records}
    children: dict[Address, set[Address]] = {}
    for address in list(by_address):
        a = address
        while a[0] > 0:
            children.setdefault(parent(a), set()).add(a)
            a = parent(a)

    def make(address: Address) -> tuple[Tile, np.ndarray, np.ndarray]:
        """The tile of ``address`` and its box (content and children) in the plane."""
        centre = cube.node_centre(address)
        rec = by_address.get(address)
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        if rec is not None:
            lo, hi = np.minimum(lo, rec.lo), np.maximum(hi, rec.hi)
        kids = []
        for child in sorted(children.get(address, ())):
            tile, klo, khi = make(child)
            kids.append(tile)
            lo, hi = np.minimum(lo, klo), np.maximum(hi, khi)
        leaf = rec is not None and rec.leaf and not kids
        if address[0] == 0:
            transform = world @ _translation(centre)
        else:
            transform = _translation(centre - cube.node_centre(parent(address)))
        tile = Tile({"box": bv.box_json(lo - centre, hi - centre)}, 0.0 if leaf else _error(cube, address[0], params),
                    transform, rec.uri if rec is not None else None, kids)
        return tile, lo, hi

    return make((0, 0, 0, 0))[0]


def _translation(offset: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = offset
    return m


def _address(name: str) -> Address:
    level, ix, iy, iz = (int(v) for v in name[1:].split("_"))
    return level, ix, iy, iz


def _bounded(pool: Executor | None, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], workers: int) -> Iterator[T]:
    """``fn(*a)`` for each ``a``, in order, with at most ``2 * workers`` tasks in flight (so the
    blocks read from the store wait in bounded numbers)."""
    if pool is None:
        for a in args:
            yield fn(*a)
        return
    pending: deque[Future[T]] = deque()
    for a in args:
        pending.append(pool.submit(fn, *a))
        if len(pending) >= 2 * workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
