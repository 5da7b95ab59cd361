"""Planar polygons with holes (3D rings) -> triangles, via mapbox_earcut.

Each polygon is projected onto the coordinate plane its normal (Newell's method) is closest
to, triangulated in 2D, and the triangles are turned to face the way the polygon's exterior ring
does (counter-clockwise seen from outside, the CityGML/GML convention).
"""
from __future__ import annotations

from collections.abc import Sequence

import mapbox_earcut
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def newell_normal(ring: Array) -> Array:
    """Unnormalised normal of a (closed or open) 3D ring, Newell's method."""
    nxt = np.roll(ring, -1, axis=0)
    return np.array([
        np.sum((ring[:, 1] - nxt[:, 1]) * (ring[:, 2] + nxt[:, 2])),
        np.sum((ring[:, 2] - nxt[:, 2]) * (ring[:, 0] + nxt[:, 0])),
        np.sum((ring[:, 0] - nxt[:, 0]) * (ring[:, 1] + nxt[:, 1])),
    ])


def open_ring(ring: Array) -> Array:
    """Drop the closing vertex of a GML ring (first == last) and consecutive duplicates."""
    ring = np.asarray(ring, dtype=np.float64).reshape(-1, 3)
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    if len(ring) > 1:
        keep = np.any(ring != np.roll(ring, 1, axis=0), axis=1)
        keep[0] = True
        ring = ring[keep]
    return ring


def triangulate_polygon(rings: Sequence[Array]) -> tuple[Array, npt.NDArray[np.uint32]]:
    """Triangulate one polygon: ``rings[0]`` exterior, the rest holes; rings may be closed.

    Returns (vertices (n, 3), triangles (m, 3)); m == 0 for degenerate polygons (fewer than
    3 distinct vertices or zero area).
    """
    opened = [open_ring(r) for r in rings]
    exterior = opened[0]
    if len(exterior) < 3:
        return np.zeros((0, 3)), np.zeros((0, 3), np.uint32)
    if len(opened) == 1 and len(exterior) == 3:
        n = newell_normal(exterior)
        if not np.any(n):
            return exterior, np.zeros((0, 3), np.uint32)
        return exterior, np.array([[0, 1, 2]], np.uint32)
    holes = [h for h in opened[1:] if len(h) >= 3]
    verts = np.concatenate([exterior, *holes]) if holes else exterior
    normal = newell_normal(exterior)
    if not np.any(normal):
        return verts, np.zeros((0, 3), np.uint32)
    axis = int(np.argmax(np.abs(normal)))
    keep = [i for i in range(3) if i != axis]
    flat = np.ascontiguousarray(verts[:, keep])
    ends = np.cumsum([len(exterior)] + [len(h) for h in holes]).astype(np.uint32)
    idx = mapbox_earcut.triangulate_float64(flat, ends)
    if len(idx) == 0:
        return verts, np.zeros((0, 3), np.uint32)
    tris = idx.reshape(-1, 3).astype(np.uint32)
    # orient every triangle like the exterior ring
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    tri_normals = np.cross(b - a, c - a)
    flip = tri_normals @ normal < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    return verts, tris
