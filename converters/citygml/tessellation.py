"""Polygons of many features -> one triangle mesh per feature and LOD, in batches.

City models are mostly small convex polygons (wall rectangles, gable pentagons, roof quads,
triangles): those are fan-triangulated for a whole batch at once with numpy. Every ring is cleaned
the way :func:`cim.triangulate.open_ring` does (closing and consecutive duplicate vertices
dropped) and gets a Newell normal, all with ``np.add.reduceat``. Non-convex polygons and polygons
with holes are triangulated with earcut (the library behind :func:`cim.triangulate.triangulate_polygon`)
on the coordinate plane their normal is closest to, one call per polygon, and their triangles are
then turned, in one vectorised step, to face the way the exterior ring does, like
``triangulate_polygon``. ``flip`` reverses a polygon (``OrientableSurface orientation="-"``).

When it was built, the compiled kernel :mod:`converters.citygml.tess_kernel` does those steps
instead, with the same result bit for bit; :func:`_triangulate` (numpy) is its reference and
takes the batches it declines.
"""
from __future__ import annotations

from collections import defaultdict

import mapbox_earcut
import numpy as np
import numpy.typing as npt

from cim.mesh import Mesh
from converters.citygml.polygons import Array, PolygonRecord

try:  # the compiled kernel of _triangulate (tess_kernel.pyx), when it was built
    from converters.citygml.tess_kernel import triangulate as kernel
except ImportError:  # pragma: no cover - an install without a C compiler
    kernel = None

_CONVEX_TOLERANCE = -1e-6  # sine of the sharpest allowed reflex turn (collinear points are fine)
_MIN_AREA2 = 1e-12         # twice the area (m²) below which a polygon or fan triangle is degenerate
_EMPTY = np.zeros((0, 3), np.int64)


def build_meshes(items: list[PolygonRecord]) -> dict[int, Mesh]:
    """Triangulate ``items`` and gather them by bucket. Polygons without area and polygons with
    non-finite coordinates give no triangles."""
    parts: dict[int, list[Mesh]] = defaultdict(list)
    polygons: list[PolygonRecord] = []
    for it in items:
        if it.mesh is not None:
            tris = it.mesh[1][:, [0, 2, 1]] if it.flip else it.mesh[1]
            parts[it.bucket].append(Mesh(it.mesh[0], tris, np.full(len(tris), it.stype, np.uint8)))
        elif it.rings:
            polygons.append(it)
    meshes = _triangulate_batch(polygons) if polygons else {}
    for bucket, extra in parts.items():
        base = meshes.get(bucket)
        meshes[bucket] = Mesh.concat(([base] if base is not None else []) + extra)
    return meshes


def _triangulate_batch(polygons: list[PolygonRecord]) -> dict[int, Mesh]:
    polygons.sort(key=lambda p: p.bucket)
    n_poly = len(polygons)
    done = kernel(polygons) if kernel is not None else None
    verts, starts, counts, first_ring, ring_counts, tris, tri_poly = done if done is not None else _triangulate(polygons)
    stypes = np.fromiter((p.stype for p in polygons), np.uint8, n_poly)[tri_poly]

    # split by bucket: polygons (so rings, vertices and triangles) are sorted by bucket
    poly_bucket = np.fromiter((p.bucket for p in polygons), np.int64, n_poly)
    buckets, first_poly = np.unique(poly_bucket, return_index=True)
    end_poly = np.append(first_poly[1:], n_poly)
    tri_bucket = poly_bucket[tri_poly]
    tri_start = np.searchsorted(tri_bucket, buckets, "left")
    tri_end = np.searchsorted(tri_bucket, buckets, "right")
    last_ring = first_ring + ring_counts - 1
    meshes: dict[int, Mesh] = {}
    for i, bucket in enumerate(buckets.tolist()):
        ts, te = tri_start[i], tri_end[i]
        if te > ts:
            vs = int(starts[first_ring[first_poly[i]]])
            lr = last_ring[end_poly[i] - 1]
            ve = int(starts[lr] + counts[lr])
            meshes[bucket] = Mesh(verts[vs:ve], tris[ts:te] - vs, stypes[ts:te])
    return meshes


def _triangulate(polygons: list[PolygonRecord]) -> tuple[Array, ...]:
    """The numpy path (and the reference of :mod:`tess_kernel`): cleaned vertices, ring starts
    and counts, first ring and ring count of every polygon, triangles (vertex indices) and the
    polygon of every triangle, in polygon order."""
    n_poly = len(polygons)
    ring_counts = np.fromiter((len(p.rings) for p in polygons), np.int64, n_poly)  # type: ignore[arg-type]
    rings = [r for p in polygons for r in p.rings] if ring_counts.max() > 1 else [p.rings[0] for p in polygons]  # type: ignore[index, union-attr]
    n_rings = len(rings)
    ring_poly = np.repeat(np.arange(n_poly), ring_counts)
    first_ring = np.cumsum(ring_counts) - ring_counts
    counts = np.fromiter((len(r) for r in rings), np.int64, n_rings)
    verts = np.concatenate(rings)
    ring_of = np.repeat(np.arange(n_rings), counts)

    finite = np.isfinite(verts).all(axis=1)
    bad_poly = np.zeros(n_poly, bool)
    if not finite.all():
        bad_poly[ring_poly[ring_of[~finite]]] = True
        verts = np.where(finite[:, None], verts, 0.0)

    # drop consecutive duplicates, then the closing vertex (last == first), ring by ring
    starts = np.cumsum(counts) - counts
    dup = np.zeros(len(verts), bool)
    dup[1:] = (verts[1:] == verts[:-1]).all(axis=1)
    dup[starts] = False
    if dup.any():
        verts, ring_of = verts[~dup], ring_of[~dup]
        counts = np.bincount(ring_of, minlength=n_rings)
        starts = np.cumsum(counts) - counts
    last = starts + counts - 1
    closing = (counts > 1) & (verts[last] == verts[starts]).all(axis=1)
    if closing.any():
        keep = np.ones(len(verts), bool)
        keep[last[closing]] = False
        verts, ring_of = verts[keep], ring_of[keep]
        counts = counts - closing
        starts = np.cumsum(counts) - counts
        last = starts + counts - 1

    # Newell normal of every ring, in ring-local coordinates (precision with projected CRSs)
    local = verts - verts[np.repeat(starts, counts)]
    idx = np.arange(len(verts))
    nxt = idx + 1
    nxt[last] = starts
    a, b = local, local[nxt]
    contrib = np.column_stack(((a[:, 1] - b[:, 1]) * (a[:, 2] + b[:, 2]),
                               (a[:, 2] - b[:, 2]) * (a[:, 0] + b[:, 0]),
                               (a[:, 0] - b[:, 0]) * (a[:, 1] + b[:, 1])))
    normals = np.add.reduceat(contrib, starts, axis=0)
    length = np.linalg.norm(normals, axis=1)
    unit = normals / np.where(length > 0, length, 1.0)[:, None]

    # a polygon is its exterior ring's plane; it is valid with 3+ vertices and some area
    ext = first_ring
    poly_unit = unit[ext]
    valid = (counts[ext] >= 3) & (length[ext] > _MIN_AREA2) & ~bad_poly
    single = ring_counts == 1

    # convexity of single-ring polygons: every turn has the sense of the ring's normal
    edge = b - a
    prv = idx - 1
    prv[starts] = last
    edge_in = edge[prv]
    turn = np.einsum("ij,ij->i", np.cross(edge_in, edge), unit[ring_of])
    scale = np.linalg.norm(edge_in, axis=1) * np.linalg.norm(edge, axis=1)
    sine = turn / np.where(scale > 0, scale, 1.0)
    convex_ring = np.minimum.reduceat(sine, starts) >= _CONVEX_TOLERANCE
    convex = valid & single & convex_ring[ext]

    # fan triangles (0, j, j+1) of every convex polygon
    fan = np.flatnonzero(convex)
    n_tris = counts[ext[fan]] - 2
    tri_poly = np.repeat(fan, n_tris)
    j = np.arange(len(tri_poly)) - np.repeat(np.cumsum(n_tris) - n_tris, n_tris) + 1
    ta = starts[ext[tri_poly]]
    fan_tris = np.column_stack((ta, ta + j, ta + j + 1))

    # earcut for the others, then turn their triangles like the exterior ring
    ear_tris, ear_poly = _earcut(np.flatnonzero(valid & ~convex), verts, counts, starts, first_ring,
                                 ring_counts, poly_unit)
    tris = np.concatenate((fan_tris, ear_tris)) if len(ear_tris) else fan_tris
    tri_poly = np.concatenate((tri_poly, ear_poly)) if len(ear_tris) else tri_poly

    # drop degenerate triangles, orient, flip
    p0, p1, p2 = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    area2 = np.einsum("ij,ij->i", np.cross(p1 - p0, p2 - p0), poly_unit[tri_poly])
    ok = np.abs(area2) > _MIN_AREA2
    flips = np.fromiter((p.flip for p in polygons), bool, n_poly)[tri_poly] ^ (area2 < 0)
    tris[flips] = tris[flips][:, [0, 2, 1]]
    if not ok.all():
        tris, tri_poly = tris[ok], tri_poly[ok]
    if len(ear_tris):
        order = np.argsort(tri_poly, kind="stable")
        tris, tri_poly = tris[order], tri_poly[order]
    return verts, starts, counts, first_ring, ring_counts, tris, tri_poly


def _earcut(which: npt.NDArray[np.int64], verts: Array, counts: npt.NDArray[np.int64],
            starts: npt.NDArray[np.int64], first_ring: npt.NDArray[np.int64],
            ring_counts: npt.NDArray[np.int64], poly_unit: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Earcut triangles (global vertex indices) of polygons ``which``, and their polygon index."""
    out: list[npt.NDArray[np.int64]] = []
    owners: list[npt.NDArray[np.int64]] = []
    axes = np.argmax(np.abs(poly_unit[which]), axis=1) if len(which) else np.zeros(0, np.int64)
    keep_axes = ((1, 2), (0, 2), (0, 1))
    for p, axis in zip(which.tolist(), axes.tolist()):
        r0, nr = int(first_ring[p]), int(ring_counts[p])
        ring_sizes = counts[r0:r0 + nr]
        if nr > 1 and (ring_sizes[1:] < 3).any():  # drop degenerate holes
            parts = [np.arange(starts[r], starts[r] + counts[r]) for r in range(r0, r0 + nr)
                     if r == r0 or counts[r] >= 3]
            index = np.concatenate(parts)
            ends = np.cumsum([len(x) for x in parts])
        else:
            s = int(starts[r0])
            index = np.arange(s, s + int(ring_sizes.sum()))
            ends = np.cumsum(ring_sizes)
        flat = np.ascontiguousarray(verts[index][:, keep_axes[axis]])
        tri = mapbox_earcut.triangulate_float64(flat, ends.astype(np.uint32))
        if len(tri):
            out.append(index[tri.reshape(-1, 3)])
            owners.append(np.full(len(tri) // 3, p, np.int64))
    if not out:
        return _EMPTY, np.zeros(0, np.int64)
    return np.concatenate(out), np.concatenate(owners)
