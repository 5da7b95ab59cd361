"""The point-cloud octree as pure functions: cubes, node addresses, grid subsampling.

The tree lives in the dataset's ENU plane (metres, z up). The root is a cube; a node at ``level``
with integer address ``(ix, iy, iz)`` is the cube of side ``root_size / 2**level`` whose min
corner is ``root_lo + (ix, iy, iz) * side``. Each node keeps at most one point per cell of a
``grid``-per-side grid over its cube (its subsample); the points it does not keep go to its
children (refinement ADD: a point is in exactly one tile). A node with at most ``leaf_points``
points keeps them all and has no children.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Address = tuple[int, int, int, int]  # level, ix, iy, iz

#: the spill/working record of one point: plane-ENU position (metres) and attributes
POINT = np.dtype([("p", "<f8", (3,)), ("rgb", "u1", (3,)), ("cls", "u1"), ("ret", "u1"), ("inten", "<u2"),
                  ("seq", "<u2")])  # seq: the store block the point came from (mod 65536), for a stable order
DENSE_CELLS = 1 << 24  # above this many cells the grid uses a sort instead of a dense table


@dataclass(frozen=True)
class Cube:
    """The root cube in the dataset plane (min corner and side, metres)."""

    lo: tuple[float, float, float]
    size: float

    def side(self, level: int) -> float:
        return self.size / (1 << level)

    def node_lo(self, address: Address) -> Array:
        level, ix, iy, iz = address
        return np.asarray(self.lo) + np.array([ix, iy, iz], np.float64) * self.side(level)

    def node_centre(self, address: Address) -> Array:
        return self.node_lo(address) + self.side(address[0]) / 2

    def node_key(self, p: Array, level: int) -> npt.NDArray[np.int64]:
        """``(ix * n + iy) * n + iz`` of the node at ``level`` holding each of the (3, n)
        positions ``p`` (clipped to the cube; ``n = 2**level``)."""
        n = 1 << level
        key = np.zeros(p.shape[1], np.int64)
        for a in range(3):
            ci = np.floor((p[a] - self.lo[a]) * (1.0 / self.side(level))).astype(np.int64)
            np.clip(ci, 0, n - 1, out=ci)
            key *= n
            key += ci
        return key


def cube_around(lo: Array, hi: Array) -> Cube:
    """The cube enclosing the box [lo, hi] with a small margin (points on curved CRS edges)."""
    size = float(np.max(hi - lo))
    margin = max(size * 1e-3, 0.05)
    size += 2 * margin
    centre = (np.asarray(lo) + np.asarray(hi)) / 2
    return Cube(tuple((centre - size / 2).tolist()), size)  # type: ignore[arg-type]


def bucket_level(points: int, memory_points: int, max_level: int = 5) -> int:
    """The octree level whose nodes are processed one at a time in memory: for a 2.5D scan
    (which fills ~4**level of the 8**level cubes) a node then holds about half the budget."""
    level = 0
    while points > (4 ** level) * memory_points / 2 and level < max_level:
        level += 1
    return level


def parent(address: Address) -> Address:
    level, ix, iy, iz = address
    return level - 1, ix >> 1, iy >> 1, iz >> 1


def ancestor(address: Address, level: int) -> Address:
    shift = address[0] - level
    return level, address[1] >> shift, address[2] >> shift, address[3] >> shift


def spacing(cube: Cube, level: int, grid: int) -> float:
    """Distance between the points a node at ``level`` keeps (its grid cell size), metres."""
    return cube.side(level) / grid


def shuffle_order(p: Array, seq: npt.NDArray[np.uint16]) -> npt.NDArray[np.intp]:
    """A pseudo-random order of the points (``p`` is (3, n)) that depends only on their
    positions (a hash of the float64 bits) and, for equal hashes, on the store order (``seq``,
    then position in the spill), so subsampling picks the same points whatever worker wrote
    which spill file. Two radix sorts (16-bit keys): O(n)."""
    by_block = np.argsort(seq, kind="stable")
    q = np.take(p, by_block, axis=1).view(np.uint64)
    h = q[0] * np.uint64(0x9E3779B97F4A7C15)
    h ^= q[1] * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= q[2] * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h16 = (h >> np.uint64(48)).astype(np.uint16)
    result: npt.NDArray[np.intp] = by_block[np.argsort(h16, kind="stable")]
    return result


def grid_select(p: Array, origin: Array, cell: float) -> npt.NDArray[np.bool_]:
    """A mask keeping exactly one point per occupied cell of the grid (``cell`` metres, aligned
    on ``origin``): the last point of each cell in the given order. ``p`` is (3, n)."""
    n = p.shape[1]
    if n == 0:
        return np.zeros(0, bool)
    axes = []
    for a in range(3):
        t = (p[a] - origin[a]) * (1.0 / cell)
        low = float(t.min())
        ci = t.astype(np.int64) if low >= 0 else np.floor(t).astype(np.int64)  # truncation = floor from 0 up
        ci -= int(np.floor(low))
        axes.append(ci)
    dims = [int(ci.max()) + 1 for ci in axes]
    key = (axes[0] * dims[1] + axes[1]) * dims[2] + axes[2]
    cells = dims[0] * dims[1] * dims[2]
    idx = np.arange(n, dtype=np.int64)
    if cells <= DENSE_CELLS:
        owner = np.empty(cells, np.int64)
        owner[key] = idx
        result: npt.NDArray[np.bool_] = owner[key] == idx
        return result
    _, last = np.unique(key[::-1], return_index=True)
    mask = np.zeros(n, bool)
    mask[n - 1 - last] = True
    return mask


def take_records(points: npt.NDArray[Any], index: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``points[index]`` for a structured array, gathered as raw fixed-size rows: numpy's gather
    of a structured dtype copies field by field and is about ten times slower."""
    raw = points.view(np.dtype((np.void, points.dtype.itemsize)))
    out: npt.NDArray[Any] = np.take(raw, index).view(points.dtype)
    return out


def octant(p: Array, centre: Array) -> npt.NDArray[np.uint8]:
    """0-7 for (3, n) positions: bit 0 east of the centre, bit 1 north, bit 2 above."""
    o = (p[0] >= centre[0]).astype(np.uint8)
    o |= (p[1] >= centre[1]).astype(np.uint8) << 1
    o |= (p[2] >= centre[2]).astype(np.uint8) << 2
    return o


def child_address(address: Address, octant_index: int) -> Address:
    level, ix, iy, iz = address
    return (level + 1, 2 * ix + (octant_index & 1), 2 * iy + ((octant_index >> 1) & 1),
            2 * iz + ((octant_index >> 2) & 1))
