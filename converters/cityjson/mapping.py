"""CityJSON city object types and semantic surface types -> the CIM vocabulary (CityGML 3.0).

CityJSON 1.0/1.1/2.0 names; types that CityGML 3.0 names differently map onto its class and keep
their CityJSON name as the feature's original class. Extension types (``+NoiseBuilding``) are read
as GenericCityObject.
"""
from __future__ import annotations

from cim.classes import SURFACE_TYPE_BY_NAME, CityClass, SurfaceType

C = CityClass

CITY_OBJECT_TYPES: dict[str, CityClass] = {
    "Building": C.BUILDING, "BuildingPart": C.BUILDING_PART, "BuildingInstallation": C.BUILDING_INSTALLATION,
    "BuildingConstructiveElement": C.BUILDING_CONSTRUCTIVE_ELEMENT, "BuildingFurniture": C.BUILDING_FURNITURE,
    "BuildingStorey": C.STOREY, "BuildingRoom": C.BUILDING_ROOM, "BuildingUnit": C.BUILDING_UNIT,
    "Bridge": C.BRIDGE, "BridgePart": C.BRIDGE_PART, "BridgeInstallation": C.BUILDING_INSTALLATION,
    "BridgeConstructiveElement": C.BUILDING_CONSTRUCTIVE_ELEMENT, "BridgeConstructionElement": C.BUILDING_CONSTRUCTIVE_ELEMENT,
    "BridgeRoom": C.BUILDING_ROOM, "BridgeFurniture": C.BUILDING_FURNITURE,
    "Tunnel": C.TUNNEL, "TunnelPart": C.TUNNEL_PART, "TunnelInstallation": C.BUILDING_INSTALLATION,
    "TunnelConstructiveElement": C.BUILDING_CONSTRUCTIVE_ELEMENT, "TunnelHollowSpace": C.BUILDING_ROOM,
    "TunnelFurniture": C.BUILDING_FURNITURE,
    "Road": C.ROAD, "Railway": C.RAILWAY, "TransportSquare": C.SQUARE, "Waterway": C.WATER_BODY,
    "WaterBody": C.WATER_BODY, "PlantCover": C.PLANT_COVER, "SolitaryVegetationObject": C.SOLITARY_VEGETATION_OBJECT,
    "LandUse": C.LAND_USE, "CityFurniture": C.CITY_FURNITURE, "CityObjectGroup": C.CITY_OBJECT_GROUP,
    "GenericCityObject": C.GENERIC_CITY_OBJECT, "OtherConstruction": C.GENERIC_CITY_OBJECT,
    "TINRelief": C.TIN_RELIEF,
}

SEMANTIC_TYPES: dict[str, SurfaceType] = {
    **SURFACE_TYPE_BY_NAME,
    "TransportationMarking": SurfaceType.TRAFFIC, "TransportationHole": SurfaceType.UNDEFINED,
}

#: the surface type of triangles without semantics, by class
DEFAULT_SURFACE: dict[CityClass, SurfaceType] = {
    C.ROAD: SurfaceType.TRAFFIC, C.RAILWAY: SurfaceType.TRAFFIC, C.SQUARE: SurfaceType.TRAFFIC,
    C.WATER_BODY: SurfaceType.WATER, C.PLANT_COVER: SurfaceType.VEGETATION,
    C.SOLITARY_VEGETATION_OBJECT: SurfaceType.VEGETATION, C.TIN_RELIEF: SurfaceType.TERRAIN,
    C.DOOR: SurfaceType.DOOR, C.WINDOW: SurfaceType.WINDOW,
}
