"""Polygon records: what the GML reader hands to xlink resolution and triangulation.

A *bucket* is one feature at one LOD within the current batch: ``feature index * 8 + lod``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
IdPath = tuple[tuple[str, bool], ...]  # (gml:id, orientation flip above that element), outermost first

SEMANTIC, DIRECT, OPENING = 0, 1, 2  # where a polygon comes from (see xlinks.resolve_member)


@dataclass(slots=True)
class PolygonRecord:
    bucket: int                       # feature index * 8 + lod, within the city object
    rings: list[Array] | None          # exterior first; None for pre-triangulated records
    stype: int                        # cim.classes.SurfaceType code
    flip: bool                        # reverse the orientation
    path: IdPath
    origin: int
    pid: str | None                   # the polygon's own gml:id
    mesh: tuple[Array, npt.NDArray[np.uint32]] | None = None


@dataclass(slots=True)
class RefRecord:
    bucket: int
    href: str                         # target gml:id (without '#')
    stype: int
    flip: bool
    path: IdPath
    origin: int
    line: int
