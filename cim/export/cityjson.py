"""A dataset (or the groups of it whose footprint meets a lon/lat bbox) as a CityJSON 2.0 document.

* Vertices are quantised with ``transform`` (millimetres for metric CRSs, 1e-8 degrees for
  geographic ones), shared between features, in the dataset's source CRS or a target CRS.
* Each LOD of a feature is a ``MultiSurface`` of its triangles; per-triangle surface types become
  ``semantics`` (the types CityJSON allows for the object's type, else null).
* Attributes are written as stored (flat, dotted names); parents/children link the groups.
* A feature whose CIM class has no CityJSON type is written as GenericCityObject (its CityGML 3.0
  class in the ``cim_class`` attribute). The mesh is the CIM's triangulation: the source's polygons
  are not rebuilt.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.classes import CityClass, SurfaceType
from cim.crs import LocalFrame, crs_frame, frame_from_spec, transform_xy
from cim.errors import CimError
from cim.export.footprints import FootprintQuery, select_footprints
from cim.export.output_file import write_text_atomically
from cim.export.output_crs import output_crs
from cim.feature import Feature
from cim.store.base import Store

C = CityClass
S = SurfaceType
VERSION = "2.0"

#: CIM class -> CityJSON 2.0 type
CITYJSON_TYPES: dict[CityClass, str] = {
    C.BUILDING: "Building", C.BUILDING_PART: "BuildingPart", C.BUILDING_INSTALLATION: "BuildingInstallation",
    C.BUILDING_CONSTRUCTIVE_ELEMENT: "BuildingConstructiveElement", C.BUILDING_FURNITURE: "BuildingFurniture",
    C.STOREY: "BuildingStorey", C.BUILDING_ROOM: "BuildingRoom", C.BUILDING_UNIT: "BuildingUnit",
    C.BRIDGE: "Bridge", C.BRIDGE_PART: "BridgePart", C.TUNNEL: "Tunnel", C.TUNNEL_PART: "TunnelPart",
    C.ROAD: "Road", C.RAILWAY: "Railway", C.SQUARE: "TransportSquare", C.WATER_BODY: "WaterBody",
    C.PLANT_COVER: "PlantCover", C.SOLITARY_VEGETATION_OBJECT: "SolitaryVegetationObject", C.LAND_USE: "LandUse",
    C.CITY_FURNITURE: "CityFurniture", C.CITY_OBJECT_GROUP: "CityObjectGroup",
    C.GENERIC_CITY_OBJECT: "GenericCityObject", C.TIN_RELIEF: "TINRelief",
}
_BUILDING_LIKE = {"Building", "BuildingPart", "BuildingInstallation", "BuildingConstructiveElement", "BuildingStorey",
                  "BuildingRoom", "BuildingUnit", "BuildingFurniture", "Bridge", "BridgePart", "Tunnel", "TunnelPart"}
_SEMANTICS_BUILDING = {S.WALL: "WallSurface", S.ROOF: "RoofSurface", S.GROUND: "GroundSurface",
                       S.CLOSURE: "ClosureSurface", S.FLOOR: "FloorSurface", S.OUTER_FLOOR: "OuterFloorSurface",
                       S.CEILING: "CeilingSurface", S.OUTER_CEILING: "OuterCeilingSurface",
                       S.INTERIOR_WALL: "InteriorWallSurface", S.DOOR: "Door", S.WINDOW: "Window"}
_SEMANTICS_TRANSPORT = {S.TRAFFIC: "TrafficArea"}
_SEMANTICS_WATER = {S.WATER: "WaterSurface"}


def semantic_names(cityjson_type: str) -> dict[SurfaceType, str]:
    """The semantic surface names CityJSON 2.0 allows for a city object type."""
    if cityjson_type in _BUILDING_LIKE:
        return _SEMANTICS_BUILDING
    if cityjson_type in ("Road", "Railway", "TransportSquare", "Waterway"):
        return _SEMANTICS_TRANSPORT
    if cityjson_type == "WaterBody":
        return _SEMANTICS_WATER
    return {}


@dataclass
class CityJsonSummary:
    city_objects: int
    vertices: int
    reference_system: str | None


def dataset_to_cityjson(store: Store, dataset: str, *, bbox: tuple[float, float, float, float] | None = None,
                        crs: str | None = None) -> dict[str, Any]:
    """The CityJSON 2.0 document of ``dataset``; ``bbox`` (lon/lat) keeps the top-level features whose
    footprint meets it, with their descendants; ``crs`` reprojects x, y (heights are kept)."""
    info = store.get_dataset(dataset)
    frame = frame_from_spec(info.frame)
    keep: set[str] | None = None
    if bbox is not None:
        page = select_footprints(store, FootprintQuery(bbox=bbox, dataset=dataset))
        keep = {f.row.feature_id for f in page.features}
    features: list[Feature] = []
    root_of: dict[str, str] = {}
    for f in store.iter_features(dataset, with_geometry=True):
        root = root_of.get(f.parent, f.parent) if f.parent is not None else f.id
        root_of[f.id] = root if root is not None else f.id
        if keep is None or root_of[f.id] in keep:
            features.append(f)
    target = output_crs(crs, authority_axis_order=False, parameter="crs") if crs else None
    reference_system, to_output = _reference(frame, info.frame, target)
    geographic = target.is_geographic if target is not None else bool(
        getattr(getattr(frame, "crs", None), "is_geographic", False))
    scale = 1e-8 if geographic else 0.001
    return _document(features, to_output, scale, reference_system, dataset)


def _reference(frame: Any, spec: dict[str, Any], target: Any) -> tuple[str | None, Any]:
    """(referenceSystem URL, function mapping source (n, 3) to output (n, 3) coordinates)."""
    def identity(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return v
    if target is not None:
        def project(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            ll = frame.to_lonlat(v)
            x, y = transform_xy(ll[:, 0], ll[:, 1], 4326, target.epsg)
            return np.column_stack([x, y, ll[:, 2]])
        return f"https://www.opengis.net/def/crs/EPSG/0/{target.epsg}", project
    if isinstance(frame, LocalFrame):
        return None, identity
    text = str(spec.get("text") or "")
    if frame.lat_first:  # stored latitude first (GML): CityJSON is x = longitude
        def swap(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return v[:, [1, 0, 2]]
        identity = swap
    if "opengis.net/def/crs/EPSG/" in text:
        try:
            if crs_frame(text).crs == frame.crs:
                return text.replace("http://", "https://"), identity
        except CimError:  # a URI we cannot read back: name the horizontal code instead
            pass
    return f"https://www.opengis.net/def/crs/EPSG/0/{frame.crs.horizontal}", identity


def _document(features: list[Feature], to_output: Any, scale: float, reference_system: str | None,
              title: str) -> dict[str, Any]:
    blocks = [to_output(m.vertices) for f in features for m in f.geometry.values() if not m.is_empty]
    allv = np.concatenate(blocks) if blocks else np.zeros((0, 3))
    translate = allv.min(axis=0) if len(allv) else np.zeros(3)
    q = np.round((allv - translate) / scale).astype(np.int64)
    uniq, inverse = np.unique(q, axis=0, return_inverse=True) if len(q) else (q, np.zeros(0, np.int64))
    inverse = inverse.reshape(-1)
    included = {f.id for f in features}
    children: dict[str, list[str]] = {}
    for f in features:
        if f.parent in included:
            children.setdefault(f.parent, []).append(f.id)  # type: ignore[arg-type]
    objects: dict[str, Any] = {}
    pos = 0
    for f in features:
        ctype = CITYJSON_TYPES.get(f.city_class, "GenericCityObject")
        attrs: dict[str, Any] = dict(f.attributes)
        if f.name and "name" not in attrs:
            attrs["name"] = f.name
        if CITYJSON_TYPES.get(f.city_class) is None:
            attrs["cim_class"] = f.city_class.value
        obj: dict[str, Any] = {"type": ctype, "attributes": attrs, "geometry": []}
        names = semantic_names(ctype)
        for lod in sorted(f.geometry):
            mesh = f.geometry[lod]
            if mesh.is_empty:
                continue
            idx = inverse[pos:pos + len(mesh.vertices)]
            pos += len(mesh.vertices)
            obj["geometry"].append(_multisurface(idx[mesh.triangles.astype(np.int64)], mesh.surfaces, lod, names))
        if f.parent in included:
            obj["parents"] = [f.parent]
        if f.id in children:
            obj["children"] = children[f.id]
        objects[f.id] = obj
    metadata: dict[str, Any] = {"title": title}
    if reference_system:
        metadata["referenceSystem"] = reference_system
    if len(uniq):
        lo, hi = uniq.min(axis=0) * scale + translate, uniq.max(axis=0) * scale + translate
        metadata["geographicalExtent"] = [float(v) for v in (*lo, *hi)]
    return {"type": "CityJSON", "version": VERSION,
            "transform": {"scale": [scale] * 3, "translate": [float(t) for t in translate]},
            "metadata": metadata, "CityObjects": objects, "vertices": uniq.tolist()}


def _multisurface(tris: npt.NDArray[np.int64], surfaces: npt.NDArray[np.uint8], lod: int,
                  names: dict[SurfaceType, str]) -> dict[str, Any]:
    ok = (tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])
    tris, surfaces = tris[ok], surfaces[ok]  # triangles that collapse when quantised are left out
    geometry: dict[str, Any] = {"type": "MultiSurface", "lod": str(lod), "boundaries": [[t] for t in tris.tolist()]}
    kinds = [SurfaceType(int(s)) for s in np.unique(surfaces) if SurfaceType(int(s)) in names]
    if kinds:
        slot = {k: i for i, k in enumerate(kinds)}
        geometry["semantics"] = {"surfaces": [{"type": names[k]} for k in kinds],
                                 "values": [slot.get(SurfaceType(int(s))) for s in surfaces.tolist()]}
    return geometry


def write_cityjson(store: Store, dataset: str, out: Path, *, bbox: tuple[float, float, float, float] | None = None,
                   crs: str | None = None) -> CityJsonSummary:
    """Write :func:`dataset_to_cityjson` to ``out`` atomically."""
    doc = dataset_to_cityjson(store, dataset, bbox=bbox, crs=crs)

    def write(fh: Any) -> int:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
        return len(doc["CityObjects"])
    n = write_text_atomically(Path(out), write)
    return CityJsonSummary(n, len(doc["vertices"]), doc["metadata"].get("referenceSystem"))
