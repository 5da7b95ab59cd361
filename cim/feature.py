"""The CIM feature: one city object with id, class, parent, source, attributes and geometry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from cim.classes import CityClass
from cim.mesh import Mesh

if TYPE_CHECKING:  # shapely loads with the first footprint, not with every Feature import
    from shapely.geometry.base import BaseGeometry

AttributeValue = Union[str, int, float, bool]


@dataclass(frozen=True)
class Source:
    """Where a feature came from: the file and the class it had there (e.g. ``bldg:Building``,
    ``IfcWallStandardCase``). The dataset name is added by the store."""

    file: str
    original_class: str


@dataclass(eq=False)
class Feature:
    """One city object.

    ``geometry`` maps a level of detail (0-4) to a triangle mesh in the dataset's source frame.
    ``footprint`` is the 2D outline in the same frame (x, y), set for top-level features that
    have one; :func:`cim.footprint.footprint_from_meshes` derives it from meshes.
    ``attributes`` are flat: nested structures are flattened with dots
    (``Pset_WallCommon.IsExternal``, ``address.street``).
    """

    id: str
    city_class: CityClass
    source: Source
    parent: str | None = None
    name: str | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    geometry: dict[int, Mesh] = field(default_factory=dict)
    footprint: BaseGeometry | None = None

    def best_lod(self) -> int | None:
        """The highest level of detail that has a non-empty mesh, or None."""
        lods = [lod for lod, mesh in self.geometry.items() if not mesh.is_empty]
        return max(lods) if lods else None

    def height_range(self) -> tuple[float, float] | None:
        """(min z, max z) over all LODs, in source units (metres), or None without geometry."""
        lows, highs = [], []
        for mesh in self.geometry.values():
            if not mesh.is_empty:
                lo, hi = mesh.bounds()
                lows.append(lo[2])
                highs.append(hi[2])
        return (float(min(lows)), float(max(highs))) if lows else None
