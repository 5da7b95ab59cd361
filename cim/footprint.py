"""2D footprints (x, y in the source frame) of city objects, from their meshes."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from cim.classes import SurfaceType
from cim.mesh import Mesh

_MIN_AREA = 1e-6  # m², triangles smaller than this in plan view are walls seen edge-on


def footprint_from_meshes(meshes: Iterable[Mesh]) -> BaseGeometry | None:
    """The union of the plan-view projections of the meshes' triangles, as a (Multi)Polygon.

    Ground surfaces alone are used when the meshes have any (fast and exact for LOD2 and up);
    otherwise every triangle that is not vertical. Returns None when nothing has plan area.
    """
    meshes = [m for m in meshes if not m.is_empty]
    if not meshes:
        return None
    mesh = Mesh.concat(meshes)
    tris = mesh.vertices[mesh.triangles][:, :, :2]
    ground = mesh.surfaces == SurfaceType.GROUND
    if ground.any():
        tris = tris[ground]
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
    tris = tris[area > _MIN_AREA]
    if len(tris) == 0:
        return None
    polys = shapely.polygons(tris)
    merged = shapely.union_all(polys, grid_size=None)
    merged = shapely.make_valid(merged)
    parts = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon) and g.area > _MIN_AREA]
    if not parts:
        return None
    # close slivers left by float noise between adjacent triangles
    result = shapely.union_all([p.buffer(0) for p in parts])
    if isinstance(result, Polygon):
        return MultiPolygon([result])
    return MultiPolygon([g for g in getattr(result, "geoms", []) if isinstance(g, Polygon)]) or None
