"""The CIM class vocabulary: CityGML 3.0's conceptual model, and semantic surface types.

Every feature has one :class:`CityClass`. Formats map onto it (CityGML 1.0/2.0 names map
trivially, IFC classes map by :mod:`converters`); the original class name is kept in the
feature's :class:`cim.feature.Source`.
"""
from __future__ import annotations

from enum import Enum, IntEnum


class CityClass(str, Enum):
    """CityGML 3.0 feature classes used by the CIM (value = CityGML 3.0 class name)."""

    CITY_OBJECT_GROUP = "CityObjectGroup"
    BUILDING = "Building"
    BUILDING_PART = "BuildingPart"
    STOREY = "Storey"
    BUILDING_UNIT = "BuildingUnit"
    BUILDING_ROOM = "BuildingRoom"
    BUILDING_CONSTRUCTIVE_ELEMENT = "BuildingConstructiveElement"
    BUILDING_INSTALLATION = "BuildingInstallation"
    BUILDING_FURNITURE = "BuildingFurniture"
    DOOR = "Door"
    WINDOW = "Window"
    WALL_SURFACE = "WallSurface"
    ROOF_SURFACE = "RoofSurface"
    GROUND_SURFACE = "GroundSurface"
    SITE = "Site"
    ROAD = "Road"
    RAILWAY = "Railway"
    TRACK = "Track"
    SQUARE = "Square"
    TRAFFIC_AREA = "TrafficArea"
    AUXILIARY_TRAFFIC_AREA = "AuxiliaryTrafficArea"
    BRIDGE = "Bridge"
    BRIDGE_PART = "BridgePart"
    TUNNEL = "Tunnel"
    TUNNEL_PART = "TunnelPart"
    WATER_BODY = "WaterBody"
    PLANT_COVER = "PlantCover"
    SOLITARY_VEGETATION_OBJECT = "SolitaryVegetationObject"
    LAND_USE = "LandUse"
    RELIEF_FEATURE = "ReliefFeature"
    TIN_RELIEF = "TINRelief"
    CITY_FURNITURE = "CityFurniture"
    POINT_CLOUD = "PointCloud"
    GENERIC_CITY_OBJECT = "GenericCityObject"

    @classmethod
    def parse(cls, name: str) -> "CityClass":
        """The class whose CityGML 3.0 name is ``name`` (case-sensitive)."""
        return cls(name)


class SurfaceType(IntEnum):
    """Semantic type of a mesh triangle (stored as one byte per triangle)."""

    UNDEFINED = 0
    WALL = 1
    ROOF = 2
    GROUND = 3
    CLOSURE = 4
    FLOOR = 5
    OUTER_FLOOR = 6
    CEILING = 7
    OUTER_CEILING = 8
    INTERIOR_WALL = 9
    DOOR = 10
    WINDOW = 11
    TERRAIN = 12
    TRAFFIC = 13
    WATER = 14
    VEGETATION = 15


#: CityGML thematic surface element names (1.0-3.0, all modules) -> SurfaceType
SURFACE_TYPE_BY_NAME: dict[str, SurfaceType] = {
    "WallSurface": SurfaceType.WALL,
    "RoofSurface": SurfaceType.ROOF,
    "GroundSurface": SurfaceType.GROUND,
    "ClosureSurface": SurfaceType.CLOSURE,
    "FloorSurface": SurfaceType.FLOOR,
    "OuterFloorSurface": SurfaceType.OUTER_FLOOR,
    "CeilingSurface": SurfaceType.CEILING,
    "OuterCeilingSurface": SurfaceType.OUTER_CEILING,
    "InteriorWallSurface": SurfaceType.INTERIOR_WALL,
    "Door": SurfaceType.DOOR,
    "Window": SurfaceType.WINDOW,
    "TrafficArea": SurfaceType.TRAFFIC,
    "AuxiliaryTrafficArea": SurfaceType.TRAFFIC,
    "WaterSurface": SurfaceType.WATER,
    "WaterGroundSurface": SurfaceType.WATER,
    "WaterClosureSurface": SurfaceType.WATER,
}
