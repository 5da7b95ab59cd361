"""CityGML element names -> CIM classes, semantic surface types and property roles.

The tables cover CityGML 1.0, 2.0 and 3.0: 1.0/2.0 names map onto the CityGML 3.0 vocabulary of
:class:`cim.classes.CityClass`; 3.0 names map as they are. Lookups go through
:func:`element_kind` and :func:`property_role`, which are cached per tag string.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from cim.classes import SURFACE_TYPE_BY_NAME, CityClass, SurfaceType
from converters.citygml.namespaces import citygml_module, is_gml, qualified_name, split_tag

C = CityClass

#: city object classes (local names, any CityGML module/version) -> CIM class
FEATURE_CLASSES: dict[str, CityClass] = {
    # building (1.0/2.0 and 3.0)
    "Building": C.BUILDING, "BuildingPart": C.BUILDING_PART,
    "Room": C.BUILDING_ROOM, "BuildingRoom": C.BUILDING_ROOM,
    "BuildingInstallation": C.BUILDING_INSTALLATION, "IntBuildingInstallation": C.BUILDING_INSTALLATION,
    "BuildingFurniture": C.BUILDING_FURNITURE, "Door": C.DOOR, "Window": C.WINDOW,
    "Storey": C.STOREY, "BuildingUnit": C.BUILDING_UNIT,
    "BuildingConstructiveElement": C.BUILDING_CONSTRUCTIVE_ELEMENT,
    # transportation
    "Road": C.ROAD, "Railway": C.RAILWAY, "Track": C.TRACK, "Square": C.SQUARE,
    "TransportationComplex": C.ROAD, "Waterway": C.WATER_BODY,
    # relief
    "ReliefFeature": C.RELIEF_FEATURE, "TINRelief": C.TIN_RELIEF, "MassPointRelief": C.RELIEF_FEATURE,
    "BreaklineRelief": C.RELIEF_FEATURE, "RasterRelief": C.RELIEF_FEATURE,
    # generics
    "GenericCityObject": C.GENERIC_CITY_OBJECT, "GenericOccupiedSpace": C.GENERIC_CITY_OBJECT,
    "GenericUnoccupiedSpace": C.GENERIC_CITY_OBJECT, "GenericLogicalSpace": C.GENERIC_CITY_OBJECT,
    # vegetation, water, land use, furniture, groups
    "PlantCover": C.PLANT_COVER, "SolitaryVegetationObject": C.SOLITARY_VEGETATION_OBJECT,
    "WaterBody": C.WATER_BODY, "LandUse": C.LAND_USE, "CityFurniture": C.CITY_FURNITURE,
    "CityObjectGroup": C.CITY_OBJECT_GROUP,
    # bridge and tunnel: their rooms, installations, elements and furniture map onto the
    # building classes of the CIM (the original class stays in the feature's source)
    "Bridge": C.BRIDGE, "BridgePart": C.BRIDGE_PART, "BridgeRoom": C.BUILDING_ROOM,
    "BridgeInstallation": C.BUILDING_INSTALLATION, "IntBridgeInstallation": C.BUILDING_INSTALLATION,
    "BridgeConstructionElement": C.BUILDING_CONSTRUCTIVE_ELEMENT,
    "BridgeConstructiveElement": C.BUILDING_CONSTRUCTIVE_ELEMENT, "BridgeFurniture": C.BUILDING_FURNITURE,
    "Tunnel": C.TUNNEL, "TunnelPart": C.TUNNEL_PART, "HollowSpace": C.BUILDING_ROOM,
    "TunnelInstallation": C.BUILDING_INSTALLATION, "IntTunnelInstallation": C.BUILDING_INSTALLATION,
    "TunnelConstructiveElement": C.BUILDING_CONSTRUCTIVE_ELEMENT, "TunnelFurniture": C.BUILDING_FURNITURE,
}

#: classes whose own geometry is an opening in a wall (typed DOOR/WINDOW, never merged away)
OPENING_CLASSES = frozenset({C.DOOR, C.WINDOW})

#: classes whose footprint is the union of their parts' footprints
COMPOSITE_CLASSES = {C.BUILDING: C.BUILDING_PART, C.BRIDGE: C.BRIDGE_PART, C.TUNNEL: C.TUNNEL_PART,
                     C.BUILDING_PART: C.BUILDING_PART, C.BRIDGE_PART: C.BRIDGE_PART, C.TUNNEL_PART: C.TUNNEL_PART}

#: thematic surfaces: their polygons go into the owning feature's mesh with this type
THEMATIC_SURFACES: dict[str, SurfaceType] = {
    name: st for name, st in SURFACE_TYPE_BY_NAME.items() if name not in ("Door", "Window")
}
THEMATIC_SURFACES.update({
    "DoorSurface": SurfaceType.DOOR, "WindowSurface": SurfaceType.WINDOW,  # 3.0 filling surfaces
    "GenericThematicSurface": SurfaceType.UNDEFINED, "HoleSurface": SurfaceType.UNDEFINED,
    "Marking": SurfaceType.TRAFFIC,
})

#: CityGML 3.0 transportation spaces that are not CIM features: their geometry and surfaces are
#: merged into the owning Road/Railway/Track/Square (like 2.0 TrafficAreas)
MERGED_SPACES: dict[str, SurfaceType] = {
    "Section": SurfaceType.TRAFFIC, "Intersection": SurfaceType.TRAFFIC, "TrafficSpace": SurfaceType.TRAFFIC,
    "AuxiliaryTrafficSpace": SurfaceType.TRAFFIC, "ClearanceSpace": SurfaceType.TRAFFIC,
    "Hole": SurfaceType.UNDEFINED,
}

#: CityGML data types and non-city-object features that are never city objects
NOT_CITY_OBJECTS = frozenset({
    "Address", "Height", "ExternalReference", "Occupancy", "RoomHeight", "ImplicitGeometry", "Appearance",
    "ParameterizedTexture", "GeoreferencedTexture", "X3DMaterial", "Dynamizer", "Version", "VersionTransition",
    "PointCloud", "CityModel", "StringAttribute", "IntAttribute", "DoubleAttribute", "DateAttribute",
    "UriAttribute", "MeasureAttribute", "CodeAttribute", "GenericAttributeSet", "Elevation", "ConstructionEvent",
    "Dimensions", "Transaction",
})

#: default semantic type of a class's own geometry
DEFAULT_SURFACE: dict[CityClass, SurfaceType] = {
    C.TIN_RELIEF: SurfaceType.TERRAIN, C.RELIEF_FEATURE: SurfaceType.TERRAIN, C.LAND_USE: SurfaceType.TERRAIN,
    C.ROAD: SurfaceType.TRAFFIC, C.RAILWAY: SurfaceType.TRAFFIC, C.TRACK: SurfaceType.TRAFFIC,
    C.SQUARE: SurfaceType.TRAFFIC, C.WATER_BODY: SurfaceType.WATER,
    C.PLANT_COVER: SurfaceType.VEGETATION, C.SOLITARY_VEGETATION_OBJECT: SurfaceType.VEGETATION,
    C.DOOR: SurfaceType.DOOR, C.WINDOW: SurfaceType.WINDOW,
}


class Kind(IntEnum):
    """What an element found as the value of a property is."""

    FEATURE = 1       # a known city object class
    UNKNOWN = 2       # a feature-like element of unknown class (ADE, newer version)
    SURFACE = 3       # a thematic surface
    SPACE = 4         # a merged transportation space (3.0)
    DATA = 5          # a data type or non-city-object feature
    GML = 6           # a GML element (geometry etc.)
    OTHER = 7         # anything else (lower-case name, comment)


@dataclass(frozen=True, slots=True)
class ElementKind:
    kind: Kind
    local: str
    qualified: str
    city_class: CityClass | None = None
    surface: SurfaceType = SurfaceType.UNDEFINED


_kind_cache: dict[str, ElementKind] = {}
_kind_cache_prefixed: dict[tuple[str, str | None], ElementKind] = {}  # other namespaces: name uses the prefix


def element_kind(tag: str, prefix: str | None = None) -> ElementKind:
    """Classify an element that is the value of a property (cached per tag)."""
    hit = _kind_cache.get(tag)
    if hit is not None:
        return hit
    hit = _kind_cache_prefixed.get((tag, prefix))
    if hit is not None:
        return hit
    ns, local = split_tag(tag)
    qname = qualified_name(ns, local, prefix)
    in_citygml = citygml_module(ns) is not None
    if not local:
        result = ElementKind(Kind.OTHER, local, qname)
    elif is_gml(ns):
        result = ElementKind(Kind.GML, local, qname)
    elif in_citygml and local in FEATURE_CLASSES:
        result = ElementKind(Kind.FEATURE, local, qname, FEATURE_CLASSES[local])
    elif in_citygml and local in THEMATIC_SURFACES:
        result = ElementKind(Kind.SURFACE, local, qname, surface=THEMATIC_SURFACES[local])
    elif in_citygml and local in MERGED_SPACES:
        result = ElementKind(Kind.SPACE, local, qname, surface=MERGED_SPACES[local])
    elif local in NOT_CITY_OBJECTS or local.endswith(("Attribute", "Texture", "Material")):
        result = ElementKind(Kind.DATA, local, qname)
    elif local[:1].isupper():
        result = ElementKind(Kind.UNKNOWN, local, qname, C.GENERIC_CITY_OBJECT)
    else:
        result = ElementKind(Kind.OTHER, local, qname)
    if in_citygml or is_gml(ns):
        if len(_kind_cache) < 20_000:
            _kind_cache[tag] = result
    elif len(_kind_cache_prefixed) < 20_000:
        _kind_cache_prefixed[(tag, prefix)] = result
    return result


class Role(IntEnum):
    """What a property (child element of a city object) holds."""

    NAME = 1
    DESCRIPTION = 2
    ENVELOPE = 3
    GEOMETRY = 4          # lodN surface geometry
    IMPLICIT = 5          # lodNImplicitRepresentation (not supported)
    IGNORED_GEOMETRY = 6  # curves and points (MultiCurve, TerrainIntersection, lod0Point)
    BOUNDARY = 7          # thematic surfaces: boundedBy (1.0/2.0), boundary (3.0), trafficArea
    OPENING = 8           # openings / filling surfaces of a thematic surface
    GENERIC = 9           # generic attributes (1.0/2.0 gen:*Attribute, 3.0 genericAttribute)
    ADDRESS = 10
    HEIGHT = 11           # CityGML 3.0 con:height
    EXTERNAL_REFERENCE = 12
    APPEARANCE = 13
    RELIEF_LOD = 14       # dem:lod
    TIN = 15              # dem:tin
    GML_OTHER = 16        # other gml:* properties (metaDataProperty, identifier ...)
    OTHER = 17            # simple attribute or child feature, decided by content


@dataclass(frozen=True, slots=True)
class PropertyRole:
    role: Role
    local: str
    lod: int = -1
    surface: SurfaceType | None = None  # a type implied by the property (lod0FootPrint: GROUND)


_LOD_NAME = re.compile(r"^lod([0-4])(.*)$")
_IGNORED_SUFFIXES = ("MultiCurve", "TerrainIntersection", "TerrainIntersectionCurve", "Point", "MultiPoint", "Curve")
_GENERIC_1_2 = frozenset({"stringAttribute", "intAttribute", "doubleAttribute", "dateAttribute", "uriAttribute",
                          "measureAttribute", "genericAttributeSet", "codeAttribute"})
_LOD_SURFACE_HINTS = {"FootPrint": SurfaceType.GROUND, "RoofEdge": SurfaceType.ROOF}
_role_cache: dict[str, PropertyRole] = {}


def property_role(tag: str) -> PropertyRole:
    """Classify a property element by its tag (cached)."""
    hit = _role_cache.get(tag)
    if hit is not None:
        return hit
    ns, local = split_tag(tag)
    result = _role(ns, local)
    if len(_role_cache) < 20_000:
        _role_cache[tag] = result
    return result


def _role(ns: str, local: str) -> PropertyRole:
    if is_gml(ns):
        role = {"name": Role.NAME, "description": Role.DESCRIPTION, "boundedBy": Role.ENVELOPE}.get(local, Role.GML_OTHER)
        return PropertyRole(role, local)
    m = _LOD_NAME.match(local)
    if m:
        lod, rest = int(m.group(1)), m.group(2)
        if "Implicit" in rest:
            return PropertyRole(Role.IMPLICIT, local, lod)
        if rest.endswith(_IGNORED_SUFFIXES):
            return PropertyRole(Role.IGNORED_GEOMETRY, local, lod)
        return PropertyRole(Role.GEOMETRY, local, lod, _LOD_SURFACE_HINTS.get(rest))
    module = citygml_module(ns)
    mod = module[0] if module else ""
    if local in ("boundedBy", "boundary", "trafficArea", "auxiliaryTrafficArea") and module:
        return PropertyRole(Role.BOUNDARY, local)
    if local in ("opening", "fillingSurface"):
        return PropertyRole(Role.OPENING, local)
    if (mod == "generics" and local in _GENERIC_1_2) or (local == "genericAttribute" and module):
        return PropertyRole(Role.GENERIC, local)
    if local == "address":
        return PropertyRole(Role.ADDRESS, local)
    if local == "height" and mod == "construction":
        return PropertyRole(Role.HEIGHT, local)
    if local == "externalReference":
        return PropertyRole(Role.EXTERNAL_REFERENCE, local)
    if local in ("appearance", "appearanceMember"):
        return PropertyRole(Role.APPEARANCE, local)
    if mod == "relief" and local == "lod":
        return PropertyRole(Role.RELIEF_LOD, local)
    if mod == "relief" and local == "tin":
        return PropertyRole(Role.TIN, local)
    return PropertyRole(Role.OTHER, local)
