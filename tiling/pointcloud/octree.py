"""The point-cloud octree as pure functions: cubes, node addresses, grid subsampling.

The tree lives in the dataset's ENU plane (metres, z up). The root is a cube; a node at ``level``
with integer address ``(ix, iy, iz)`` is the cube of side ``root_size / 2**level`` whose min
corner is ``root_lo + (ix, iy, iz) * side``. Each node keeps at most one point per cell of a
``grid``-per-side grid over its cube (its subsample); the points it does not keep go to its
children (refinement ADD: a point is in exactly one tile). A node with at most ``leaf_points``
points keeps them all and has no children.

Positions are quantized once, when they are distributed: ``q = floor((p - root_lo) / unit)`` as
uint32 with ``unit = root_size / 2**32`` (0.23 µm for a 1 km cube, 0.23 mm for 1000 km), so a
spill record is 21 bytes instead of 33, and node keys, octants and grid cells are exact bit
operations: at ``level`` a node is 2**(32 - level) units wide and the grid cell of a point is
``q >> (32 - level - log2(grid))``. Grids are powers of two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Quantized = npt.NDArray[np.uint32]  # (3, n) positions in cube units
Address = tuple[int, int, int, int]  # level, ix, iy, iz

BITS = 32  # quantization bits per axis
#: the spill/working record of one point: quantized plane-ENU position and attributes
POINT = np.dtype([("q", "<u4", (3,)), ("rgb", "u1", (3,)), ("cls", "u1"), ("ret", "u1"), ("inten", "<u2"),
                  ("seq", "<u2")])  # seq: the store block the point came from (mod 65536), for a stable order


@dataclass(frozen=True)
class Cube:
    """The root cube in the dataset plane (min corner and side, metres)."""

    lo: tuple[float, float, float]
    size: float

    @property
    def unit(self) -> float:
        """Metres per quantization step."""
        return self.size / 2.0 ** BITS

    def side(self, level: int) -> float:
        return self.size / (1 << level)

    def node_lo(self, address: Address) -> Array:
        level, ix, iy, iz = address
        return np.asarray(self.lo) + np.array([ix, iy, iz], np.float64) * self.side(level)

    def node_centre(self, address: Address) -> Array:
        return self.node_lo(address) + self.side(address[0]) / 2

    def node_centre_q(self, address: Address) -> npt.NDArray[np.int64]:
        """The node's centre in quantization units (exact)."""
        level, ix, iy, iz = address
        side = 1 << (BITS - level)
        return np.array([ix, iy, iz], np.int64) * side + side // 2

    def quantize(self, p: Array) -> Quantized:
        """(3, n) plane positions -> (3, n) uint32 cube units (clipped to the cube)."""
        q = np.empty(p.shape, np.uint32)
        scale = 1.0 / self.unit
        top = float(2 ** BITS - 1)
        for a in range(3):
            t = (p[a] - self.lo[a]) * scale
            np.clip(t, 0.0, top, out=t)
            q[a] = t  # truncation = floor (t >= 0)
        return q

    def to_plane(self, q: Quantized, k: int) -> Array:
        """Axis ``k`` of quantized positions in plane metres."""
        return q[k] * self.unit + self.lo[k]

    def node_key(self, q: Quantized, level: int) -> npt.NDArray[np.int64]:
        """``(ix * n + iy) * n + iz`` of the node at ``level`` holding each of the (3, n)
        quantized positions ``q`` (``n = 2**level``)."""
        shift = BITS - level
        key = (q[0] >> shift).astype(np.int64)
        for a in (1, 2):
            key <<= level
            key |= q[a] >> shift
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


def grid_bits(grid: int) -> int:
    """log2 of a power-of-two grid size."""
    if grid < 1 or grid & (grid - 1):
        raise ValueError(f"the subsampling grid must be a power of two, not {grid}")
    return grid.bit_length() - 1


def shuffle_order(q: Quantized, seq: npt.NDArray[np.uint16]) -> npt.NDArray[np.intp]:
    """A pseudo-random order of the points (``q`` is (3, n)) that depends only on their
    positions (a hash of the quantized coordinates) and, for equal hashes, on the store order
    (``seq``, then position in the spill), so subsampling picks the same points whatever worker
    wrote which spill file. Two radix sorts (16-bit keys): O(n)."""
    by_block = np.argsort(seq, kind="stable")
    k = np.take(q, by_block, axis=1)
    h = k[0].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= k[1].astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= k[2].astype(np.uint64) * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h16 = (h >> np.uint64(48)).astype(np.uint16)
    result: npt.NDArray[np.intp] = by_block[np.argsort(h16, kind="stable")]
    return result


def grid_select(q: Quantized, level: int, grid: int, within: int | None = None) -> npt.NDArray[np.bool_]:
    """A mask keeping exactly one point per occupied cell of the ``grid``-per-side grid of the
    nodes at ``level``: the last point of each cell in the given order. All the (3, n)
    quantized positions ``q`` must lie in one node at level ``within`` (default ``level``;
    deeper when known: only the cell bits that vary inside that node make the key, so the
    table of cells stays small and in cache)."""
    n = q.shape[1]
    if n == 0:
        return np.zeros(0, bool)
    g = grid_bits(grid)
    shift = BITS - level - g
    if shift < 0:
        raise ValueError(f"level {level} with a {grid}-cell grid is finer than the quantization")
    bits = max(0, g - ((level if within is None else within) - level))  # cell bits varying inside
    mask = (1 << bits) - 1
    key = ((q[0] >> shift) & mask).astype(np.int32)
    for a in (1, 2):
        key <<= bits
        key |= (q[a] >> shift) & mask
    idx = np.arange(n, dtype=np.int32)
    owner = np.empty(1 << (3 * bits), np.int32)
    owner[key] = idx
    result: npt.NDArray[np.bool_] = owner[key] == idx
    return result


def take_records(points: npt.NDArray[Any], index: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``points[index]`` for a structured array, gathered as raw fixed-size rows: numpy's gather
    of a structured dtype copies field by field and is about ten times slower."""
    raw = points.view(np.dtype((np.void, points.dtype.itemsize)))
    out: npt.NDArray[Any] = np.take(raw, index).view(points.dtype)
    return out


def octant(q: Quantized, level: int) -> npt.NDArray[np.uint8]:
    """0-7 for (3, n) quantized positions inside one node at ``level``: which child holds them
    (bit 0 east half, bit 1 north half, bit 2 upper half)."""
    bit = BITS - 1 - level
    o = ((q[0] >> bit) & 1).astype(np.uint8)
    o |= ((q[1] >> bit) & 1).astype(np.uint8) << 1
    o |= ((q[2] >> bit) & 1).astype(np.uint8) << 2
    return o


def child_address(address: Address, octant_index: int) -> Address:
    level, ix, iy, iz = address
    return (level + 1, 2 * ix + (octant_index & 1), 2 * iy + ((octant_index >> 1) & 1),
            2 * iz + ((octant_index >> 2) & 1))
