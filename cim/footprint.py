"""2D footprints (x, y in the source frame) of city objects, from their meshes or their polygons."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon

from cim.classes import SurfaceType
from cim.mesh import Mesh

_MIN_AREA = 1e-6  # m², triangles smaller than this in plan view are walls seen edge-on


def footprint_from_meshes(meshes: Iterable[Mesh]) -> MultiPolygon | None:
    """The plan-view outline of the meshes as a MultiPolygon, or None without plan area.

    Uses the triangles that cover the ground once: GroundSurface triangles when there are any
    (LOD2+), otherwise the downward-facing triangles (the bottom of a solid), otherwise the
    upward-facing ones (roofs of open surfaces). Those form a coverage, so their union is a fast
    coverage union; anything else falls back to a full union.
    """
    tris = np.concatenate([_ground_cover(m) for m in meshes if not m.is_empty] or [np.zeros((0, 3, 2))])
    if len(tris) == 0:
        return None
    polys = shapely.polygons(tris)
    try:
        merged = shapely.coverage_union_all(polys)
        exact = merged.is_valid and abs(merged.area - float(_plan_area(tris).sum())) <= 1e-6 * max(merged.area, 1.0)
    except shapely.errors.GEOSException:  # not a clean coverage (e.g. overlapping ground surfaces)
        exact = False
    if not exact:
        merged = shapely.make_valid(shapely.union_all(polys))
    parts = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon) and g.area > _MIN_AREA]
    return MultiPolygon(parts) if parts else None


def _plan_area(tris: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


def _ground_cover(mesh: Mesh) -> npt.NDArray[np.float64]:
    """(n, 3, 2) plan-view triangles of ``mesh`` that cover its ground once, counter-clockwise."""
    tris = mesh.vertices[mesh.triangles][:, :, :2]
    signed = _plan_area(tris)
    ground = mesh.surfaces == SurfaceType.GROUND
    if ground.any():
        pick = ground & (np.abs(signed) > _MIN_AREA)
    else:
        pick = signed < -_MIN_AREA  # facing down
        if not pick.any():
            pick = signed > _MIN_AREA
    out = tris[pick]
    flip = signed[pick] < 0
    out[flip] = out[flip][:, ::-1]
    return out


def footprint_from_rings(polygons: Sequence[Sequence[npt.NDArray[np.float64]]]) -> MultiPolygon | None:
    """The plan-view outline of ``polygons`` (each a list of rings, exterior first then holes,
    coordinates (x, y[, z]), closed or not) as a MultiPolygon, or None without plan area.

    The polygons are the ones that cover the ground once (:func:`ground_polygons`); one polygon
    needs no union, several get a coverage union (a full union when they are not a clean
    coverage). Rings with fewer than three vertices or non-finite coordinates are left out (a
    polygon without a usable exterior entirely), as triangulation leaves them out of a mesh.
    """
    if len(polygons) == 1 and len(polygons[0]) == 1:  # the common case: one ground polygon, no holes
        ring = polygons[0][0]
        if not _usable(ring):
            return None
        shape = shapely.polygons(ring[:, :2])
        if not shape.is_valid:
            shape = shapely.make_valid(shape)
        return _multipolygon(shape)
    try:
        shapes, owner = _polygon_shapes([polygons])
    except (ValueError, shapely.errors.GEOSException):  # e.g. a ring of three points, two of them equal
        shapes = _polygons_one_by_one(polygons)
    else:
        if not owner:
            return None
    areas = shapely.area(shapes)
    keep = areas > _MIN_AREA
    shapes, areas = shapes[keep], areas[keep]
    if len(shapes) == 0:
        return None
    if len(shapes) == 1:
        merged = shapes[0]
        if not merged.is_valid:
            merged = shapely.make_valid(merged)
        return _multipolygon(merged)
    try:
        merged = shapely.coverage_union_all(shapes)
        exact = merged.is_valid and abs(merged.area - float(areas.sum())) <= 1e-6 * max(merged.area, 1.0)
    except shapely.errors.GEOSException:  # not a clean coverage (e.g. a building and overlapping parts)
        exact = False
    if not exact:
        merged = shapely.make_valid(shapely.union_all(shapely.make_valid(shapes)))
    return _multipolygon(merged)


def footprints_from_rings(batch: Sequence[Sequence[Sequence[npt.NDArray[np.float64]]]]) -> list[MultiPolygon | None]:
    """:func:`footprint_from_rings` of every item of ``batch``, the same geometries: items of one
    polygon without holes (most buildings: one ground surface) are built and checked with one
    shapely call per step for the whole batch, the others one by one."""
    out: list[MultiPolygon | None] = [None] * len(batch)
    candidates: list[int] = []
    several: list[int] = []
    for i, polygons in enumerate(batch):
        if len(polygons) == 1 and len(polygons[0]) == 1:
            candidates.append(i)
        elif polygons:
            several.append(i)
    if several:
        for i, fp in zip(several, _footprints_of_several([batch[i] for i in several])):
            out[i] = fp
    usable = _usable_rings([batch[i][0][0] for i in candidates]).tolist()
    single = [i for i, ok in zip(candidates, usable) if ok]
    if not single:
        return out
    rings = [batch[i][0][0][:, :2] for i in single]
    counts = np.fromiter((len(r) for r in rings), np.int64, len(rings))
    shapes = shapely.polygons(shapely.linearrings(np.concatenate(rings), indices=np.repeat(np.arange(len(rings)), counts)))
    valid = shapely.is_valid(shapes)
    plain = valid & (shapely.area(shapes) > _MIN_AREA)
    multis = shapely.multipolygons(shapes[plain], indices=np.arange(int(plain.sum())))
    for i, m in zip(np.asarray(single)[plain].tolist(), multis):
        out[i] = m
    for i, shape, v in zip(np.asarray(single)[~plain].tolist(), shapes[~plain], valid[~plain].tolist()):
        out[i] = _multipolygon(shape if v else shapely.make_valid(shape))
    return out


def _footprints_of_several(items: Sequence[Sequence[Sequence[npt.NDArray[np.float64]]]]) -> list[MultiPolygon | None]:
    """:func:`footprint_from_rings` of items with holes or several polygons (buildings with
    parts, roads), the same geometries: rings checked, polygons built, measured and merged
    with one shapely call per step for all items (a coverage union per row of a padded
    array); only what a step sends back (no clean coverage, a polygon shapely refuses) goes
    item by item through the reference."""
    try:
        shapes, item_of = _polygon_shapes(items)
    except (ValueError, shapely.errors.GEOSException):  # some ring shapely refuses: the reference for all
        return [footprint_from_rings(polygons) for polygons in items]
    out: list[MultiPolygon | None] = [None] * len(items)
    if not item_of:
        return out
    areas = shapely.area(shapes)
    big = areas > _MIN_AREA
    owner = np.asarray(item_of)[big]
    shapes, areas = shapes[big], areas[big]
    counts = np.bincount(owner, minlength=len(items))
    starts = (np.cumsum(counts) - counts).tolist()
    merge = np.flatnonzero(counts >= 2).tolist()
    for it in np.flatnonzero(counts == 1).tolist():
        one = shapes[starts[it]]
        out[it] = _multipolygon(one if one.is_valid else shapely.make_valid(one))
    if not merge:
        return out
    table = np.full((len(merge), int(counts.max())), None, dtype=object)
    for row, it in enumerate(merge):
        table[row, :counts[it]] = shapes[starts[it]:starts[it] + counts[it]]
    try:
        merged = shapely.coverage_union_all(table, axis=1)
    except shapely.errors.GEOSException:  # some row is not a clean coverage: row by row
        merged = np.array([_coverage_union_or_none(row) for row in table], dtype=object)
    valid = shapely.is_valid(merged)
    merged_areas = shapely.area(merged)
    for row, it in enumerate(merge):
        total = float(areas[starts[it]:starts[it] + counts[it]].sum())
        m = merged[row]
        exact = m is not None and valid[row] and abs(merged_areas[row] - total) <= 1e-6 * max(merged_areas[row], 1.0)
        if not exact:
            m = shapely.make_valid(shapely.union_all(shapely.make_valid(shapes[starts[it]:starts[it] + counts[it]])))
        out[it] = _multipolygon(m)
    return out


def _polygon_shapes(sets: Sequence[Sequence[Sequence[npt.NDArray[np.float64]]]]) -> tuple[npt.NDArray[np.object_], list[int]]:
    """The plan-view polygons of ``sets`` (each a list of polygons, each a list of rings) from
    their usable rings, built with one shapely call, and the set each polygon comes from; a
    polygon without a usable exterior is left out entirely. Raises what shapely raises for a
    ring it refuses."""
    flat = [ring for polygons in sets for rings in polygons for ring in rings]
    usable = _usable_rings(flat).tolist()
    keep: list[int] = []  # indices into flat of the rings used, polygon by polygon
    poly_ids: list[int] = []
    owner: list[int] = []
    k = 0
    for s, polygons in enumerate(sets):
        for rings in polygons:
            if rings and usable[k]:
                for j in range(k, k + len(rings)):
                    if usable[j]:
                        keep.append(j)
                        poly_ids.append(len(owner))
                owner.append(s)
            k += len(rings)
    if not owner:
        return np.empty(0, dtype=object), owner
    coords = np.concatenate([flat[j][:, :2] for j in keep])
    ring_ids = np.repeat(np.arange(len(keep)), [len(flat[j]) for j in keep])
    return shapely.polygons(shapely.linearrings(coords, indices=ring_ids), indices=poly_ids), owner


def _coverage_union_or_none(row: npt.NDArray[np.object_]) -> shapely.Geometry | None:
    try:
        return shapely.coverage_union_all(row)
    except shapely.errors.GEOSException:
        return None


def _multipolygon(shape: shapely.Geometry) -> MultiPolygon | None:
    """The polygons of ``shape`` with an area as a MultiPolygon (None without)."""
    if isinstance(shape, Polygon):
        return shapely.multipolygons([shape]) if shape.area > _MIN_AREA else None
    parts = [g for g in getattr(shape, "geoms", ()) if isinstance(g, Polygon) and g.area > _MIN_AREA]
    return shapely.multipolygons(parts) if parts else None


def ground_polygons(polygons: Sequence[Sequence[npt.NDArray[np.float64]]], ground: Sequence[bool],
                    flip: Sequence[bool]) -> list[Sequence[npt.NDArray[np.float64]]]:
    """Of the polygons of one mesh-to-be (rings, exterior first), those that cover its ground
    once, as :func:`footprint_from_meshes` picks triangles: the GroundSurface polygons when there
    are any (LOD2+), otherwise the downward-facing ones (Newell normal z < 0, after ``flip``: the
    bottom of a solid), otherwise the upward-facing ones. A GroundSurface polygon counts only with
    a usable exterior ring (three distinct finite vertices)."""
    return ground_polygons_many([(polygons, ground, flip)])[0]


def ground_polygons_many(groups: Sequence[tuple[Sequence[Sequence[npt.NDArray[np.float64]]], Sequence[bool],
                                                 Sequence[bool]]]) -> list[list[Sequence[npt.NDArray[np.float64]]]]:
    """:func:`ground_polygons` of every ``(polygons, ground, flip)`` group, with the rings of all
    groups checked and measured together (a batch of city objects)."""
    out: list[list[Sequence[npt.NDArray[np.float64]]]] = [[] for _ in groups]
    owners: list[int] = []
    grounds: list[Sequence[npt.NDArray[np.float64]]] = []
    for gi, (polygons, ground, _) in enumerate(groups):
        for p, g in zip(polygons, ground):
            if g:
                owners.append(gi)
                grounds.append(p)
    if grounds:
        for gi, p, ok in zip(owners, grounds, _usable_rings([p[0] for p in grounds]).tolist()):
            if ok:
                out[gi].append(p)
    rest = [gi for gi, group in enumerate(groups) if not out[gi] and len(group[0])]
    if not rest:
        return out
    exteriors = [p[0] for gi in rest for p in groups[gi][0]]
    sizes = [len(groups[gi][0]) for gi in rest]
    signed = _ring_plan_areas(exteriors)
    signed[np.fromiter((f for gi, n in zip(rest, sizes) for f in list(groups[gi][2])[:n]), bool, len(exteriors))] *= -1
    start = 0
    for gi, n in zip(rest, sizes):
        s = signed[start:start + n]
        start += n
        down = np.flatnonzero(s < -_MIN_AREA)
        if not len(down):
            down = np.flatnonzero(s > _MIN_AREA)
        polygons = groups[gi][0]
        out[gi] = [polygons[i] for i in down.tolist()]
    return out


def _usable(ring: npt.NDArray[np.float64]) -> bool:
    """Three vertices or more besides the closing one, all finite."""
    n = len(ring)
    if n >= 3 and (ring[0] == ring[-1]).all():
        n -= 1
    return n >= 3 and bool(np.isfinite(ring).all())


def _usable_rings(rings: Sequence[npt.NDArray[np.float64]]) -> npt.NDArray[np.bool_]:
    """:func:`_usable` of every ring, in a few numpy calls for all of them."""
    if not rings:
        return np.zeros(0, bool)
    counts = np.fromiter((len(r) for r in rings), np.int64, len(rings))
    if len({r.shape[1] for r in rings}) != 1 or not counts.all():  # mixed dimensions or empty rings: one by one
        return np.fromiter((_usable(r) for r in rings), bool, len(rings))
    pts = np.concatenate(rings)
    starts = np.cumsum(counts) - counts
    finite = np.logical_and.reduceat(np.isfinite(pts).all(axis=1), starts)
    closed = (pts[starts] == pts[starts + counts - 1]).all(axis=1) & (counts >= 3)
    return finite & (counts - closed >= 3)


def _ring_plan_areas(rings: Sequence[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """Signed plan-view area (shoelace, counter-clockwise > 0) of every ring; NaN rings give 0."""
    counts = np.fromiter((len(r) for r in rings), np.int64, len(rings))
    if len(rings) and not counts.all():  # empty rings (an empty posList) have no area
        out = np.zeros(len(rings))
        filled = np.flatnonzero(counts)
        if len(filled):
            out[filled] = _ring_plan_areas([rings[i] for i in filled.tolist()])
        return out
    xy = np.concatenate([r[:, :2] for r in rings])
    starts = np.cumsum(counts) - counts
    xy = xy - np.repeat(xy[starts], counts, axis=0)  # ring-local coordinates (precision)
    nxt = np.arange(1, len(xy) + 1)
    nxt[starts + counts - 1] = starts
    cross = xy[:, 0] * xy[nxt, 1] - xy[nxt, 0] * xy[:, 1]
    out = 0.5 * np.add.reduceat(cross, starts) if len(cross) else np.zeros(len(rings))
    out[counts == 0] = 0.0
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _polygons_one_by_one(polygons: Sequence[Sequence[npt.NDArray[np.float64]]]) -> npt.NDArray[np.object_]:
    out = []
    for rings in polygons:
        try:
            shell = shapely.linearrings(rings[0][:, :2])
        except (ValueError, shapely.errors.GEOSException):
            continue
        holes = []
        for ring in rings[1:]:
            try:
                holes.append(shapely.linearrings(ring[:, :2]))
            except (ValueError, shapely.errors.GEOSException):
                continue  # a degenerate hole (fewer than 3 points) removes no area
        out.append(shapely.polygons(shell, holes=holes or None))
    return np.array(out, dtype=object)
