"""IFC classes -> the CIM's CityGML 3.0 vocabulary, and the semantic surface type of their triangles.

The original IFC class is kept as the feature's ``Source.original_class`` and ``ifc_class``
attribute; the mapping is by IFC inheritance (``is_a``), so subtypes such as
``IfcWallStandardCase`` or IFC4X3's ``IfcWallElementedCase`` follow their supertype.
"""
from __future__ import annotations

from typing import Any

from cim.classes import CityClass, SurfaceType

#: (IFC supertype, CIM class), first match wins
CLASS_MAP: tuple[tuple[str, CityClass], ...] = (
    ("IfcSite", CityClass.SITE),
    ("IfcBuilding", CityClass.BUILDING),
    ("IfcBuildingStorey", CityClass.STOREY),
    ("IfcSpace", CityClass.BUILDING_ROOM),
    ("IfcBridge", CityClass.BRIDGE),
    ("IfcRoad", CityClass.ROAD),
    ("IfcRailway", CityClass.RAILWAY),
    ("IfcDoor", CityClass.DOOR),
    ("IfcWindow", CityClass.WINDOW),
    ("IfcFurnishingElement", CityClass.BUILDING_FURNITURE),
    ("IfcFurniture", CityClass.BUILDING_FURNITURE),
    ("IfcSystemFurnitureElement", CityClass.BUILDING_FURNITURE),
    ("IfcBuildingElementProxy", CityClass.GENERIC_CITY_OBJECT),
    ("IfcGeographicElement", CityClass.GENERIC_CITY_OBJECT),
    ("IfcCivilElement", CityClass.GENERIC_CITY_OBJECT),
    ("IfcDistributionElement", CityClass.BUILDING_INSTALLATION),
    ("IfcTransportElement", CityClass.BUILDING_INSTALLATION),
    ("IfcElementAssembly", CityClass.BUILDING_CONSTRUCTIVE_ELEMENT),
    ("IfcBuiltElement", CityClass.BUILDING_CONSTRUCTIVE_ELEMENT),  # IFC4X3 name of IfcBuildingElement
    ("IfcBuildingElement", CityClass.BUILDING_CONSTRUCTIVE_ELEMENT),
    ("IfcElementComponent", CityClass.BUILDING_CONSTRUCTIVE_ELEMENT),  # plates, fasteners, parts
    ("IfcFacility", CityClass.GENERIC_CITY_OBJECT),
    ("IfcSpatialZone", CityClass.GENERIC_CITY_OBJECT),
    ("IfcElement", CityClass.GENERIC_CITY_OBJECT),
    ("IfcExternalSpatialElement", CityClass.GENERIC_CITY_OBJECT),
    ("IfcSpatialStructureElement", CityClass.GENERIC_CITY_OBJECT),
)

#: products that are not features: voids and projections are applied to their hosts by the
#: geometry kernel; annotations, grids and virtual elements are drawing aids
NOT_FEATURES: tuple[str, ...] = ("IfcFeatureElement", "IfcAnnotation", "IfcGrid", "IfcVirtualElement",
                                 "IfcStructuralItem", "IfcPort", "IfcProxy", "IfcPositioningElement")

#: classes whose footprint is not part of a building's footprint (volumes and loose items)
NOT_IN_FOOTPRINT = frozenset({CityClass.BUILDING_ROOM, CityClass.BUILDING_FURNITURE, CityClass.SITE})


def city_class(entity: Any) -> CityClass | None:
    """The CIM class of an IFC product, or None when it is not imported as a feature."""
    for ifc_class in NOT_FEATURES:
        if _is_a(entity, ifc_class):
            return None
    for ifc_class, cim_class in CLASS_MAP:
        if _is_a(entity, ifc_class):
            return cim_class
    return None


def _is_a(entity: Any, ifc_class: str) -> bool:
    try:
        return bool(entity.is_a(ifc_class))
    except RuntimeError:  # a class name unknown to this schema (e.g. IfcBuiltElement in IFC2X3)
        return False


def surface_type(entity: Any) -> SurfaceType:
    """The semantic type given to all triangles of an element (used for shading in tiles)."""
    if _is_a(entity, "IfcWindow"):
        return SurfaceType.WINDOW
    if _is_a(entity, "IfcDoor"):
        return SurfaceType.DOOR
    if _is_a(entity, "IfcRoof"):
        return SurfaceType.ROOF
    if _is_a(entity, "IfcSlab"):
        kind = str(getattr(entity, "PredefinedType", "") or "")
        return SurfaceType.ROOF if kind == "ROOF" else SurfaceType.FLOOR
    if _is_a(entity, "IfcCovering"):
        kind = str(getattr(entity, "PredefinedType", "") or "")
        return {"ROOFING": SurfaceType.ROOF, "CEILING": SurfaceType.CEILING, "FLOORING": SurfaceType.FLOOR}.get(
            kind, SurfaceType.UNDEFINED)
    if _is_a(entity, "IfcWall") or _is_a(entity, "IfcCurtainWall"):
        return SurfaceType.WALL
    if _is_a(entity, "IfcSite") or _is_a(entity, "IfcGeographicElement"):
        return SurfaceType.TERRAIN
    return SurfaceType.UNDEFINED
