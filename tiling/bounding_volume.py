"""3D Tiles bounding volumes: ``box`` (in a tile's frame) and ``region`` (WGS 84 radians, metres).

Matrices are 4x4 numpy arrays in the usual row-major sense (``p' = M @ p``); the tileset JSON
stores them column-major (see :func:`tiling.tileset.matrix_json`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.crs import ecef_to_lonlat

Array = npt.NDArray[np.float64]

#: slack added around tight boxes: float32 rounding of positions and the harness's tolerance
BOX_MARGIN = 0.01  # metres


def transform_points(matrix: Array, points: Array) -> Array:
    """Apply a 4x4 affine matrix to (n, 3) points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.asarray(pts @ matrix[:3, :3].T + matrix[:3, 3], dtype=np.float64)


def box_corners(lo: Array, hi: Array) -> Array:
    """The 8 corners of the axis-aligned box [lo, hi]."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])],
                    dtype=np.float64)


def aabb(points: Array) -> tuple[Array, Array]:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return pts.min(axis=0), pts.max(axis=0)


def merge(a: tuple[Array, Array] | None, b: tuple[Array, Array] | None) -> tuple[Array, Array] | None:
    """Union of two optional (lo, hi) boxes."""
    if a is None:
        return b
    if b is None:
        return a
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def box_json(lo: Array, hi: Array, margin: float = BOX_MARGIN) -> list[float]:
    """A 3D Tiles ``box`` (centre + three half-axes) for the axis-aligned box [lo, hi]."""
    c = (np.asarray(lo) + np.asarray(hi)) / 2
    h = (np.asarray(hi) - np.asarray(lo)) / 2 + margin
    return [float(c[0]), float(c[1]), float(c[2]),
            float(h[0]), 0.0, 0.0, 0.0, float(h[1]), 0.0, 0.0, 0.0, float(h[2])]


def box_from_json(box: Sequence[float]) -> tuple[Array, Array]:
    """(centre, 3x3 half-axes as rows) of a 3D Tiles box."""
    b = np.asarray(box, dtype=np.float64)
    return b[:3], b[3:12].reshape(3, 3)


def oriented_box_corners(box: Sequence[float]) -> Array:
    centre, axes = box_from_json(box)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    return centre + signs @ axes


def _box_samples(box: Sequence[float], n: int = 9) -> Array:
    """Points on the surface of a box: a grid of n x n on each face (edges and centres included)."""
    centre, axes = box_from_json(box)
    t = np.linspace(-1.0, 1.0, n)
    grid_u, grid_v = np.meshgrid(t, t)
    u, v = grid_u.ravel(), grid_v.ravel()
    out = []
    for k in range(3):
        i, j = [a for a in range(3) if a != k]
        for side in (-1.0, 1.0):
            coef = np.zeros((len(u), 3))
            coef[:, k] = side
            coef[:, i] = u
            coef[:, j] = v
            out.append(centre + coef @ axes)
    return np.concatenate(out)


def region_from_box(box: Sequence[float], world: Array, margin_m: float = 0.5) -> list[float]:
    """A ``region`` [west, south, east, north, min h, max h] (radians, metres) enclosing a box
    given in the frame ``world`` maps to ECEF. Sampled on the box faces, which is exact to a few
    millimetres for boxes of a few kilometres, then widened by ``margin_m``."""
    ll = ecef_to_lonlat(transform_points(world, _box_samples(box)))
    return region_from_lonlat(ll, margin_m)


def region_from_sphere(sphere: Sequence[float], world: Array, margin_m: float = 0.5) -> list[float]:
    """A region enclosing a sphere (through the box that encloses it, in the sphere's frame)."""
    cx, cy, cz, r = (float(v) for v in sphere)
    return region_from_box([cx, cy, cz, r, 0, 0, 0, r, 0, 0, 0, r], world, margin_m)


def region_from_lonlat(lonlat: Array, margin_m: float = 0.0) -> list[float]:
    """The region enclosing (n, 3) lon, lat (degrees), height points, widened by ``margin_m``."""
    ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 3)
    lat_mid = math.radians(float(ll[:, 1].mean()))
    dlat = margin_m / 6_356_752.0
    dlon = margin_m / (6_378_137.0 * max(math.cos(lat_mid), 1e-6))
    west = max(math.radians(float(ll[:, 0].min())) - dlon, -math.pi)
    east = min(math.radians(float(ll[:, 0].max())) + dlon, math.pi)
    south = max(math.radians(float(ll[:, 1].min())) - dlat, -math.pi / 2)
    north = min(math.radians(float(ll[:, 1].max())) + dlat, math.pi / 2)
    return [west, south, east, north, float(ll[:, 2].min()) - margin_m, float(ll[:, 2].max()) + margin_m]


def region_union(regions: Sequence[Sequence[float]]) -> list[float]:
    """The smallest region enclosing every region (no antimeridian crossing)."""
    r = np.asarray(regions, dtype=np.float64).reshape(-1, 6)
    return [float(r[:, 0].min()), float(r[:, 1].min()), float(r[:, 2].max()), float(r[:, 3].max()),
            float(r[:, 4].min()), float(r[:, 5].max())]


def region_degrees(region: Sequence[float]) -> list[float]:
    return [math.degrees(region[0]), math.degrees(region[1]), math.degrees(region[2]), math.degrees(region[3]),
            float(region[4]), float(region[5])]


def region_diagonal(region: Sequence[float]) -> float:
    """Approximate 3D diagonal of a region, metres."""
    west, south, east, north, hmin, hmax = (float(v) for v in region)
    lat = (south + north) / 2
    dx = (east - west) * 6_378_137.0 * math.cos(lat)
    dy = (north - south) * 6_356_752.0
    return float(math.sqrt(dx * dx + dy * dy + (hmax - hmin) ** 2))


def region_of_volume(volume: dict[str, Any], world: Array) -> list[float]:
    """A region enclosing a 3D Tiles bounding volume; ``world`` is the tile's full transform
    (boxes and spheres are in the tile's frame; regions are not transformed)."""
    if "region" in volume:
        return [float(v) for v in volume["region"]]
    if "box" in volume:
        return region_from_box(volume["box"], world)
    if "sphere" in volume:
        return region_from_sphere(volume["sphere"], world)
    raise ValueError(f"unsupported bounding volume: {sorted(volume)}")
