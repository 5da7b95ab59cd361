"""2D footprints (x, y in the source frame) of city objects, from their meshes."""
from __future__ import annotations

from collections.abc import Iterable

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
