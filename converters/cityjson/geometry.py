"""CityJSON geometry objects -> triangle meshes with a semantic surface type per triangle.

``boundaries`` nest vertex indices: MultiSurface/CompositeSurface ``[surface][ring][i]``, Solid
``[shell][surface][ring][i]``, MultiSolid/CompositeSolid ``[solid][shell][surface][ring][i]``;
``semantics.values`` mirror them without the two innermost levels (an index into
``semantics.surfaces``, or null). Vertices are already real coordinates (``transform`` applied).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.classes import SurfaceType
from cim.mesh import Mesh
from cim.triangulate import triangulate_polygon
from converters.cityjson.mapping import SEMANTIC_TYPES

SURFACE_DEPTH = {"MultiSurface": 0, "CompositeSurface": 0, "Solid": 1, "MultiSolid": 2, "CompositeSolid": 2}


class GeometryError(ValueError):
    """A malformed geometry object (the message says what; the reader reports and skips it)."""


def lod_of(geometry: dict[str, Any]) -> int:
    """The integer LOD (``"2.2"`` -> 2, 1.0's numbers too); GeometryError when missing or odd."""
    try:
        lod = int(float(str(geometry["lod"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise GeometryError(f"geometry without a readable lod ({geometry.get('lod')!r})") from exc
    if not 0 <= lod <= 4:
        raise GeometryError(f"lod {geometry.get('lod')!r} is outside 0-4")
    return lod


def _surfaces(boundaries: Any, values: Any, depth: int) -> Iterator[tuple[list[list[int]], Any]]:
    """(rings, semantic value) for every surface, walking ``depth`` levels above surfaces."""
    if depth == 0:
        for i, surface in enumerate(boundaries):
            v = values[i] if isinstance(values, list) and i < len(values) else None
            yield surface, v
        return
    for i, part in enumerate(boundaries):
        sub = values[i] if isinstance(values, list) and i < len(values) else None
        yield from _surfaces(part, sub, depth - 1)


def geometry_mesh(geometry: dict[str, Any], vertices: npt.NDArray[np.float64], default: SurfaceType,
                  skipped: dict[str, int]) -> Mesh:
    """One geometry object as a mesh; polygons that cannot be triangulated are counted in
    ``skipped`` (reason -> count). GeometryError for a type or structure that cannot be read."""
    gtype = geometry.get("type")
    if gtype not in SURFACE_DEPTH:
        raise GeometryError(f"geometry type {gtype!r} is not a surface geometry")
    boundaries = geometry.get("boundaries")
    if not isinstance(boundaries, list):
        raise GeometryError(f"{gtype} without boundaries")
    semantics = geometry.get("semantics") or {}
    kinds = [SEMANTIC_TYPES.get(str(s.get("type", "")), SurfaceType.UNDEFINED) if isinstance(s, dict)
             else SurfaceType.UNDEFINED for s in semantics.get("surfaces", [])]
    values = semantics.get("values")
    parts_v: list[npt.NDArray[np.float64]] = []
    parts_t: list[npt.NDArray[np.int64]] = []
    parts_s: list[npt.NDArray[np.uint8]] = []
    offset = 0
    n_vertices = len(vertices)
    try:
        for rings, value in _surfaces(boundaries, values, SURFACE_DEPTH[gtype]):
            idx = [np.asarray(r, dtype=np.int64) for r in rings]
            if not idx or any(r.ndim != 1 for r in idx):
                raise GeometryError(f"{gtype} boundaries are not nested as the type requires")
            if any(len(r) and (r.min() < 0 or r.max() >= n_vertices) for r in idx):
                raise GeometryError(f"{gtype} refers to a vertex index outside the {n_vertices} vertices")
            verts, tris = triangulate_polygon([vertices[r] for r in idx])
            if len(tris) == 0:
                skipped["degenerate polygon (fewer than 3 distinct vertices or no area)"] = \
                    skipped.get("degenerate polygon (fewer than 3 distinct vertices or no area)", 0) + 1
                continue
            stype = kinds[value] if isinstance(value, int) and 0 <= value < len(kinds) else default
            parts_v.append(verts)
            parts_t.append(tris.astype(np.int64) + offset)
            parts_s.append(np.full(len(tris), int(stype), np.uint8))
            offset += len(verts)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, GeometryError):
            raise
        raise GeometryError(f"{gtype} boundaries are malformed: {exc}") from exc
    if not parts_v:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.uint32))
    return Mesh(np.concatenate(parts_v), np.concatenate(parts_t), np.concatenate(parts_s))
