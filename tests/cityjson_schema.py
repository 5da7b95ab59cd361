"""A JSON Schema (draft 2020-12) of the CityJSON 2.0 core that our export must meet, written from
the CityJSON 2.0 specification (https://www.cityjson.org/specs/2.0.1/): required members, version,
transform, integer vertices, the 2.0 city object types, geometry types with the nesting depth of
their boundaries, LOD strings, semantics and parent/child links. The official schemas and their
validator (cjval/cjvalpy) cannot be installed offline here (cjvalpy has no wheel for this Python),
so the tests use this schema plus cjio (a third-party CityJSON library) reading the file, and
:func:`consistency_errors` for the rules a schema cannot state (cjval's extra checks)."""
from __future__ import annotations

from typing import Any

TYPES_1ST = ["Bridge", "Building", "CityFurniture", "CityObjectGroup", "GenericCityObject", "LandUse",
             "OtherConstruction", "PlantCover", "SolitaryVegetationObject", "TINRelief", "TransportSquare",
             "Railway", "Road", "Tunnel", "WaterBody", "Waterway"]
TYPES_2ND = ["BridgePart", "BridgeInstallation", "BridgeConstructiveElement", "BridgeRoom", "BridgeFurniture",
             "BuildingPart", "BuildingInstallation", "BuildingConstructiveElement", "BuildingFurniture",
             "BuildingStorey", "BuildingRoom", "BuildingUnit", "TunnelPart", "TunnelInstallation",
             "TunnelConstructiveElement", "TunnelHollowSpace", "TunnelFurniture"]
SEMANTIC_TYPES = ["RoofSurface", "GroundSurface", "WallSurface", "ClosureSurface", "OuterCeilingSurface",
                  "OuterFloorSurface", "Window", "Door", "InteriorWallSurface", "CeilingSurface", "FloorSurface",
                  "WaterSurface", "WaterGroundSurface", "WaterClosureSurface", "TrafficArea", "AuxiliaryTrafficArea",
                  "TransportationMarking", "TransportationHole"]


def _nested(depth: int) -> dict[str, Any]:
    """Arrays nested ``depth`` times around non-negative integers (vertex indices)."""
    schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def _values(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["integer", "null"], "minimum": 0}
    for _ in range(depth):
        schema = {"type": ["array", "null"], "items": schema}
    return schema


_SEMANTICS = {"type": "object", "required": ["surfaces", "values"], "properties": {
    "surfaces": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
        "type": {"anyOf": [{"enum": SEMANTIC_TYPES}, {"type": "string", "pattern": "^\\+"}]},
        "parent": {"type": "integer"}, "children": {"type": "array", "items": {"type": "integer"}}}}},
    "values": {"type": ["array", "null"]}}}


def _geometry(gtype: str, depth: int) -> dict[str, Any]:
    return {"type": "object", "required": ["type", "lod", "boundaries"], "properties": {
        "type": {"const": gtype}, "lod": {"type": "string", "pattern": "^[0-4](\\.[0-3])?$"},
        "boundaries": _nested(depth), "semantics": {**_SEMANTICS, "properties": {
            **_SEMANTICS["properties"], "values": _values(depth - 2)}}}}


GEOMETRY = {"oneOf": [_geometry("MultiSurface", 3), _geometry("CompositeSurface", 3), _geometry("Solid", 4),
                      _geometry("MultiSolid", 5), _geometry("CompositeSolid", 5)]}

CITYJSON_2_0: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["type", "version", "transform", "CityObjects", "vertices"],
    "properties": {
        "type": {"const": "CityJSON"},
        "version": {"const": "2.0"},
        "transform": {"type": "object", "required": ["scale", "translate"], "additionalProperties": False,
                      "properties": {"scale": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                                     "translate": {"type": "array", "items": {"type": "number"}, "minItems": 3,
                                                   "maxItems": 3}}},
        "metadata": {"type": "object", "properties": {
            "referenceSystem": {"type": "string", "pattern": "^https?://www\\.opengis\\.net/def/crs/[^/]+/[^/]+/[^/]+$"},
            "geographicalExtent": {"type": "array", "items": {"type": "number"}, "minItems": 6, "maxItems": 6},
            "title": {"type": "string"}}},
        "vertices": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 3,
                                                 "maxItems": 3}},
        "CityObjects": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["type"],
            "properties": {
                "type": {"anyOf": [{"enum": TYPES_1ST + TYPES_2ND}, {"type": "string", "pattern": "^\\+"}]},
                "attributes": {"type": "object"},
                "geometry": {"type": "array", "items": GEOMETRY},
                "parents": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "children": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "geographicalExtent": {"type": "array", "items": {"type": "number"}, "minItems": 6, "maxItems": 6}},
            "if": {"properties": {"type": {"enum": TYPES_2ND}}},
            "then": {"required": ["parents"]}}},
    },
}


def consistency_errors(doc: dict[str, Any]) -> list[str]:
    """cjval's checks beyond the schema: vertex indices exist, parents/children agree, semantics
    values have the shape of the boundaries and point at existing surfaces."""
    errors: list[str] = []
    n = len(doc["vertices"])
    objects = doc["CityObjects"]
    for oid, obj in objects.items():
        for child in obj.get("children", []):
            if child not in objects or oid not in objects[child].get("parents", []):
                errors.append(f"{oid}: child {child} missing or without this parent")
        for parent in obj.get("parents", []):
            if parent not in objects or oid not in objects[parent].get("children", []):
                errors.append(f"{oid}: parent {parent} missing or not listing it")
        for g in obj.get("geometry", []):
            surfaces = g["boundaries"]
            if any(i >= n for s in surfaces for ring in s for i in ring):
                errors.append(f"{oid}: vertex index out of range")
            sem = g.get("semantics")
            if sem is not None:
                values = sem["values"]
                if len(values) != len(surfaces):
                    errors.append(f"{oid}: semantics values do not match the surfaces")
                if any(v is not None and not 0 <= v < len(sem["surfaces"]) for v in values):
                    errors.append(f"{oid}: semantics value without a surface")
    return errors
