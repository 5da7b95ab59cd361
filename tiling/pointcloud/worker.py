"""Work done in the tiler's worker processes (started with ``forkserver``/``spawn``, never
``fork``): distributing store blocks into per-node spill files, and building the subtree of one
spilled node in memory.

Everything here takes and returns plain picklable values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.crs import frame_from_spec
from cim.points import PointChunk, PointPiece, PointStats, class_palette, decode_block
from tiling.pointcloud.content import points_glb_parts, write_pnts
from tiling.pointcloud.placement import to_plane
from tiling.pointcloud.octree import (
    POINT,
    Address,
    Quantized,
    Cube,
    ancestor,
    child_address,
    grid_select,
    octant,
    shuffle_order,
    take_records,
)

_PALETTE = class_palette()
#: below this cube side (metres) or past this level a node keeps all its points (duplicates)
MIN_SIDE_M = 0.002
MAX_LEVEL = 24


@dataclass(frozen=True)
class Job:
    """What every task needs to know about the build."""

    cube: Cube
    world: npt.NDArray[np.float64]  # plane ENU -> ECEF
    frame_spec: dict[str, Any]
    bucket_level: int
    grid: int
    leaf_points: int
    memory_points: int
    spill_dir: str
    out_dir: str
    format: str


@dataclass
class NodeRecord:
    """A written node: its address, point count, content box (plane ENU) and content URI."""

    address: Address
    points: int
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    uri: str
    leaf: bool
    bytes: int


def spill_name(address: Address) -> str:
    level, ix, iy, iz = address
    return f"n{level}_{ix}_{iy}_{iz}"


# --- distribution ---------------------------------------------------------------------------

def distribute_block(job: Job, seq: int, blob: bytes) -> tuple[int, list[str]]:
    """Decode store block ``seq``, place its points in the plane, and append them to the spill
    file of their bucket node. Returns (points, spill names touched)."""
    return _distribute(job, seq, decode_block(blob))


def distribute_piece(job: Job, seq: int, piece: PointPiece) -> tuple[int, list[str], PointStats]:
    """Decode piece ``seq`` of the input files here (:class:`cim.points.PointPiece`) and
    distribute its points like a store block. Returns (points, spill names touched, the
    piece's statistics)."""
    chunk, stats = piece.read()
    n, touched = _distribute(job, seq, chunk)
    return n, touched, stats


def _distribute(job: Job, seq: int, chunk: PointChunk) -> tuple[int, list[str]]:
    frame = frame_from_spec(job.frame_spec)
    local, _ = to_plane(frame, job.world, chunk.columns())
    q = job.cube.quantize(local)
    del local
    level = job.bucket_level
    key = job.cube.node_key(q, level)
    n = 1 << level
    order = np.argsort(key.astype(np.uint16) if n ** 3 <= 65536 else key, kind="stable")
    unsorted = np.empty(len(chunk), POINT)  # filled column by column, then gathered as rows
    unsorted["q"] = q.T
    unsorted["rgb"] = chunk.rgb if chunk.rgb is not None else _PALETTE[chunk.classification]
    unsorted["cls"] = chunk.classification
    unsorted["ret"] = chunk.return_number
    unsorted["inten"] = chunk.intensity
    unsorted["seq"] = seq % 65536
    records = take_records(unsorted, order)
    del unsorted
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    touched = []
    for s, e in zip(starts, ends):
        k = int(key[s])
        address = (level, k // (n * n), (k // n) % n, k % n)
        name = spill_name(address)
        _append(Path(job.spill_dir) / f"{name}.{os.getpid()}.bin", records[s:e])
        touched.append(name)
    return len(records), touched


def _append(path: Path, records: npt.NDArray[Any]) -> None:
    with open(path, "ab") as fh:
        fh.write(records.tobytes())


# --- one spilled node ----------------------------------------------------------------------

def build_bucket(job: Job, address: Address) -> tuple[list[NodeRecord], list[tuple[Address, bytes]]]:
    """Build the subtree of the spilled node ``address``: write its tiles and return their
    records, plus the points it selected for the levels above it (as (ancestor address,
    POINT records bytes)). Spill files are removed once read."""
    files = sorted(Path(job.spill_dir).glob(spill_name(address) + ".*.bin"))
    total = sum(f.stat().st_size for f in files) // POINT.itemsize
    if total > job.memory_points and not _too_small(job, address):
        return _split(job, address, files)
    points = np.empty(total, POINT)
    raw = memoryview(points.view(np.uint8))
    pos = 0
    for f in files:  # straight into one array (no concatenation copy)
        with open(f, "rb") as fh:
            pos += fh.readinto(raw[pos:])
        f.unlink()
    if pos != total * POINT.itemsize:
        raise OSError(f"spill files of {spill_name(address)} changed while they were read")
    return _in_memory(job, address, points)


def _split(job: Job, address: Address, files: list[Path]) -> tuple[list[NodeRecord], list[tuple[Address, bytes]]]:
    """A node over the memory budget: stream its points into its 8 children's spill files, build
    them one by one, and write this node from the points they pass up for its level."""
    level = address[0]
    step = max(1, job.memory_points // 2)
    for f in files:
        count = f.stat().st_size // POINT.itemsize
        for start in range(0, count, step):
            part = np.fromfile(f, POINT, count=step, offset=start * POINT.itemsize)
            oct_ = octant(part["q"].T, level)
            for o in np.unique(oct_):
                child = child_address(address, int(o))
                _append(Path(job.spill_dir) / f"{spill_name(child)}.{os.getpid()}.bin", part[oct_ == o])
        f.unlink()
    records: list[NodeRecord] = []
    mine: list[npt.NDArray[Any]] = []
    upper: list[tuple[Address, bytes]] = []
    for o in range(8):
        child = child_address(address, o)
        if not any(Path(job.spill_dir).glob(spill_name(child) + ".*.bin")):
            continue
        child_records, child_upper = build_bucket(job, child)
        records += child_records
        for addr, data in child_upper:
            if addr[0] == level:
                mine.append(np.frombuffer(data, POINT))
            else:
                upper.append((addr, data))
    if mine:
        records.append(write_node(job, address, np.concatenate(mine), leaf=False))
    return records, upper


def _in_memory(job: Job, address: Address, points: npt.NDArray[Any]) -> tuple[list[NodeRecord], list[tuple[Address, bytes]]]:
    """Build a bucket held in memory. Selection works on (3, n) positions and an index into
    ``points``; records are gathered only for the points written."""
    if len(points) == 0:
        return [], []
    q = np.ascontiguousarray(points["q"].T)
    idx = shuffle_order(q, points["seq"])
    q = np.take(q, idx, axis=1)
    upper: list[tuple[Address, bytes]] = []
    for level in range(address[0]):  # the levels above: aligned global grids, top down
        keep = grid_select(q, level, job.grid, within=address[0])
        upper.append((ancestor(address, level), take_records(points, idx[keep]).tobytes()))
        drop = ~keep
        q, idx = np.compress(drop, q, axis=1), idx[drop]
    records: list[NodeRecord] = []
    _subtree(job, address, points, q, idx, records)
    return records, upper


def _subtree(job: Job, address: Address, points: npt.NDArray[Any], q: Quantized,
             idx: npt.NDArray[np.intp], records: list[NodeRecord]) -> None:
    if len(idx) == 0:
        return
    if len(idx) <= job.leaf_points or _too_small(job, address):
        records.append(write_node(job, address, take_records(points, idx), leaf=True, positions=q))
        return
    keep = grid_select(q, address[0], job.grid)
    records.append(write_node(job, address, take_records(points, idx[keep]), leaf=False,
                              positions=np.compress(keep, q, axis=1)))
    group = octant(q, address[0])
    group[keep] = 8  # the kept points sort last and are dropped: one gather per level
    order = np.argsort(group, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(group, minlength=9))]
    order = order[:bounds[8]]
    q, idx = np.take(q, order, axis=1), idx[order]
    for o in range(8):
        if bounds[o + 1] > bounds[o]:
            sl = slice(bounds[o], bounds[o + 1])
            _subtree(job, child_address(address, o), points, q[:, sl], idx[sl], records)


def _too_small(job: Job, address: Address) -> bool:
    """True for a node that must not be split further: many points at (nearly) one position
    would otherwise recurse without end."""
    return address[0] >= MAX_LEVEL or job.cube.side(address[0]) < MIN_SIDE_M


def write_node(job: Job, address: Address, points: npt.NDArray[Any], *, leaf: bool,
               positions: Quantized | None = None) -> NodeRecord:
    """Write one node's content file (glb or pnts) and return its record. ``positions``: the
    points' quantized positions as a contiguous (3, n) array when the caller has them."""
    q = np.ascontiguousarray(points["q"].T) if positions is None else positions
    unit = job.cube.unit
    centre = job.cube.node_centre_q(address) * unit  # metres from the cube's corner (exact)
    qlo = [int(q[k].min()) for k in range(3)]
    qhi = [int(q[k].max()) for k in range(3)]
    attributes = {"classification": points["cls"], "intensity": points["inten"], "return_number": points["ret"]}
    level, ix, iy, iz = address
    # positions relative to the node's centre: q * unit - centre, rounded to float32 once; the
    # expression is monotonic in q, so the bounds are those of the extreme q
    lo = [qlo[k] * unit - centre[k] for k in range(3)]
    hi = [qhi[k] * unit - centre[k] for k in range(3)]
    if job.format == "1.1":
        yup = np.empty((q.shape[1], 3), np.float32)  # glTF is y-up: (E, U, -N)
        yup[:, 0] = q[0] * unit - centre[0]
        yup[:, 1] = q[2] * unit - centre[2]
        yup[:, 2] = centre[1] - q[1] * unit
        bounds = (np.array([lo[0], lo[2], -hi[1]], np.float32), np.array([hi[0], hi[2], -lo[1]], np.float32))
        parts, ext = points_glb_parts(yup, points["rgb"], attributes, bounds), "glb"
    else:
        local = np.empty((q.shape[1], 3), np.float32)
        for k in range(3):
            local[:, k] = q[k] * unit - centre[k]
        parts, ext = [write_pnts(local, points["rgb"], attributes)], "pnts"
    uri = f"content/{level}/{ix}_{iy}_{iz}.{ext}"
    path = Path(job.out_dir) / uri
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.writelines(parts)
    size = sum(len(part) for part in parts)
    plane_centre = job.cube.node_centre(address)
    box_lo = tuple(float(plane_centre[k] + lo[k]) for k in range(3))
    box_hi = tuple(float(plane_centre[k] + hi[k]) for k in range(3))
    return NodeRecord(address, q.shape[1], box_lo, box_hi, uri, leaf, size)  # type: ignore[arg-type]
