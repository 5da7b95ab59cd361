"""CityJSON reading: :class:`CityJsonReading` yields the city objects of one CityJSON document.

A CityJSON file is one JSON object whose ``vertices`` may come after ``CityObjects`` (as in the
Delft sample), so it is parsed whole (``json.loads``; memory about 10x the file size) before the
first feature leaves. Nothing is yielded from a file that does not parse, so a truncated or
malformed file imports nothing.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.classes import CityClass, SurfaceType
from cim.conversion import ConversionReport
from cim.crs import CrsFrame, Frame, parse_crs
from cim.errors import CrsMissingError, CrsUnknownError, InputError, ParseError, TruncatedFileError
from cim.feature import AttributeValue, Feature, Source
from cim.footprint import footprint_from_meshes
from cim.mesh import Mesh
from converters.base import ConvertOptions
from converters.cityjson.geometry import GeometryError, geometry_mesh, lod_of
from converters.cityjson.mapping import CITY_OBJECT_TYPES, DEFAULT_SURFACE

VERSIONS = ("1.0", "1.1", "2.0")
COMPOSITE = {CityClass.BUILDING, CityClass.BRIDGE, CityClass.TUNNEL}


class CityJsonReading:
    """See :class:`cim.conversion.Reading`."""

    def __init__(self, path: Path, options: ConvertOptions) -> None:
        self.path = Path(path)
        self.report = ConversionReport(source=self.path.name, format="CityJSON")
        self.options = options
        try:
            self.total_bytes = self.path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}", file=str(self.path)) from exc
        self.bytes_read = 0
        self._frame: Frame | None = None

    @property
    def frame(self) -> Frame:
        if self._frame is None:
            raise CrsMissingError(f"{self.path.name}: the frame is known once reading has started", file=str(self.path))
        return self._frame

    # --- document --------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}", file=str(self.path)) from exc
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            tail = raw[exc.pos:].strip()
            if not tail:
                raise TruncatedFileError(f"{self.path.name} ends in the middle of the JSON document (at byte "
                                         f"{exc.pos} of {len(raw)}): the file is truncated; nothing was imported",
                                         file=str(self.path), position=exc.pos) from exc
            raise ParseError(f"{self.path.name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                             "nothing was imported", file=str(self.path), line=exc.lineno) from exc
        except (RecursionError, UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"{self.path.name} cannot be read as JSON ({type(exc).__name__}: {str(exc)[:100]})",
                             file=str(self.path)) from exc
        if not isinstance(doc, dict) or doc.get("type") != "CityJSON":
            raise ParseError(f"{self.path.name} is JSON but not a CityJSON document (no \"type\": \"CityJSON\")",
                             file=str(self.path))
        version = str(doc.get("version", ""))
        if version[:3] not in VERSIONS:
            raise ParseError(f"{self.path.name}: CityJSON version {version!r} is not supported (1.0, 1.1 and 2.0 are)",
                             file=str(self.path), version=version)
        if not isinstance(doc.get("CityObjects"), dict) or not isinstance(doc.get("vertices"), list):
            raise ParseError(f"{self.path.name}: a CityJSON document needs a \"CityObjects\" object and a "
                             "\"vertices\" array", file=str(self.path))
        self.report.format = f"CityJSON {version}"
        return doc

    def _vertices(self, doc: dict[str, Any]) -> npt.NDArray[np.float64]:
        try:
            v = np.asarray(doc["vertices"], dtype=np.float64).reshape(-1, 3)
        except (TypeError, ValueError) as exc:
            raise ParseError(f"{self.path.name}: \"vertices\" must be an array of [x, y, z] numbers",
                             file=str(self.path)) from exc
        t = doc.get("transform")
        if t is not None:
            try:
                scale = np.asarray(t["scale"], np.float64).reshape(3)
                translate = np.asarray(t["translate"], np.float64).reshape(3)
            except (KeyError, TypeError, ValueError) as exc:
                raise ParseError(f"{self.path.name}: \"transform\" needs \"scale\" and \"translate\" of 3 numbers",
                                 file=str(self.path)) from exc
            v = v * scale + translate
        if not np.all(np.isfinite(v)):
            raise ParseError(f"{self.path.name}: vertices hold non-finite numbers", file=str(self.path))
        return v

    def _resolve_frame(self, doc: dict[str, Any]) -> Frame:
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        text = meta.get("referenceSystem") or meta.get("crs")
        if isinstance(text, dict):  # pre-1.0 {"epsg": N}
            text = f"EPSG:{text.get('epsg')}" if text.get("epsg") else None
        user = self.options.frame
        declared: Frame | None = None
        if text:
            try:
                declared = CrsFrame(parse_crs(str(text)))  # CityJSON is always x, y, z (easting/longitude first)
            except CrsUnknownError:
                if user is None:
                    raise
                self.report.warn(f"metadata.referenceSystem '{text}' cannot be resolved; using {user.describe()}")
        if user is not None:
            if declared is not None and declared.spec() != user.spec():
                self.report.warn(f"the file declares {declared.describe()} but the given placement wins: {user.describe()}")
            self.report.georeferencing = f"placed by the user: {user.describe()}"
            return user
        if declared is None:
            raise CrsMissingError(
                f"{self.path.name} has no metadata.referenceSystem, so its coordinates cannot be placed on the Earth; "
                "give the CRS with --crs EPSG:N, or place local coordinates with --origin LON,LAT[,HEIGHT]",
                file=str(self.path))
        self.report.georeferencing = f"metadata.referenceSystem {text} -> {declared.describe()}"
        return declared

    # --- features --------------------------------------------------------------------------
    def features(self) -> Iterator[Feature]:
        doc = self._load()
        vertices = self._vertices(doc)
        self._frame = self._resolve_frame(doc)
        self.bytes_read = self.total_bytes
        objects: dict[str, Any] = doc["CityObjects"]
        order = self._document_order(objects)
        meshes: dict[str, dict[int, Mesh]] = {oid: self._geometry(oid, objects[oid], vertices) for oid in order}
        for oid in order:
            yield self._feature(oid, objects, meshes)

    def _document_order(self, objects: dict[str, Any]) -> list[str]:
        """Every city object once, parents before children (depth first from the roots)."""
        def parents_of(oid: str) -> list[str]:
            p = objects[oid].get("parents") if isinstance(objects[oid], dict) else None
            return [x for x in p if isinstance(x, str) and x in objects] if isinstance(p, list) else []

        children: dict[str, list[str]] = {oid: [] for oid in objects}
        for oid in objects:
            if not isinstance(objects[oid], dict):
                raise ParseError(f"{self.path.name}: city object '{oid}' is not a JSON object", file=str(self.path))
            for p in parents_of(oid)[:1]:
                children[p].append(oid)
        order: list[str] = []
        seen: set[str] = set()
        for root in (oid for oid in objects if not parents_of(oid)):
            stack = [root]
            while stack:
                oid = stack.pop()
                if oid in seen:
                    continue
                seen.add(oid)
                order.append(oid)
                stack.extend(reversed(children[oid]))
        for oid in objects:  # a cycle of parents: read them as top-level objects
            if oid not in seen:
                self.report.warn(f"city object '{oid}' is part of a cycle of parents; it was read as a top-level object")
                seen.add(oid)
                order.append(oid)
        return order

    def _city_class(self, oid: str, otype: str) -> CityClass:
        cls = CITY_OBJECT_TYPES.get(otype)
        if cls is None:
            self.report.warn(f"unknown city object type '{otype}' (of '{oid}') was read as GenericCityObject; "
                             "its type is kept as the original class")
            cls = CityClass.GENERIC_CITY_OBJECT
        return cls

    def _geometry(self, oid: str, obj: dict[str, Any], vertices: npt.NDArray[np.float64]) -> dict[int, Mesh]:
        cls = self._city_class(oid, str(obj.get("type", "")))
        default = DEFAULT_SURFACE.get(cls, SurfaceType.UNDEFINED)
        best: dict[int, tuple[str, Mesh]] = {}
        for g in obj.get("geometry") or []:
            if not isinstance(g, dict):
                self.report.skip("geometry that is not a JSON object")
                continue
            if g.get("type") == "GeometryInstance":
                self.report.skip("GeometryInstance (geometry templates, not supported)")
                continue
            if g.get("type") in ("MultiPoint", "MultiLineString"):
                self.report.skip(f"{g.get('type')} geometry (points and lines are not meshes)")
                continue
            try:
                lod = lod_of(g)
                mesh = geometry_mesh(g, vertices, default, self.report.skipped)
            except GeometryError as exc:
                self.report.warn(f"city object '{oid}': {exc}; that geometry was skipped")
                self.report.skip("malformed geometry")
                continue
            label = str(g.get("lod"))
            if lod in best and best[lod][0] >= label:
                self.report.skip(f"second geometry of one LOD (the finer LOD {lod}.x was kept)")
                continue
            best[lod] = (label, mesh)
        return {lod: mesh for lod, (_, mesh) in best.items() if not mesh.is_empty}

    def _feature(self, oid: str, objects: dict[str, Any], meshes: dict[str, dict[int, Mesh]]) -> Feature:
        obj = objects[oid]
        otype = str(obj.get("type", ""))
        cls = self._city_class(oid, otype) if otype in CITY_OBJECT_TYPES else CityClass.GENERIC_CITY_OBJECT
        cim_class = (obj.get("attributes") or {}).get("cim_class")  # written by our export for classes
        if cim_class in CityClass._value2member_map_:                 # CityJSON has no type for
            cls = CityClass(cim_class)
        parents = [p for p in obj.get("parents") or [] if isinstance(p, str)]
        parent = parents[0] if parents and parents[0] in objects else None
        if parents and parent is None:
            self.report.warn(f"city object '{oid}' names a parent '{parents[0]}' that is not in the file; "
                             "it was read as a top-level object")
        attributes = flatten_attributes(obj.get("attributes") or {})
        if isinstance(obj.get("address"), (dict, list)):
            addr = obj["address"][0] if isinstance(obj["address"], list) and obj["address"] else obj["address"]
            if isinstance(addr, dict):
                attributes.update(flatten_attributes({k: v for k, v in addr.items() if k != "location"}, "address."))
        name = attributes.get("name")
        self.report.count(otype or "CityObject")
        geometry = meshes[oid]
        footprint = None
        if parent is None and cls in COMPOSITE and not geometry:
            parts = [m for c in obj.get("children") or [] if isinstance(c, str) for m in _best(meshes.get(c, {}))]
            footprint = footprint_from_meshes(parts) if parts else None
        return Feature(id=oid, city_class=cls, source=Source(self.path.name, otype), parent=parent,
                       name=str(name) if isinstance(name, str) else None, attributes=attributes,
                       geometry=geometry, footprint=footprint)


def _best(geometry: dict[int, Mesh]) -> list[Mesh]:
    return [geometry[max(geometry)]] if geometry else []


def flatten_attributes(attrs: Any, prefix: str = "") -> dict[str, AttributeValue]:
    """Nested objects flatten with dots; arrays become JSON text; nulls and non-finite numbers are
    left out; strings, integers, floats and booleans keep their JSON type."""
    out: dict[str, AttributeValue] = {}
    if not isinstance(attrs, dict):
        return out
    for key, value in attrs.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_attributes(value, name + "."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, float) and not math.isfinite(value):
            continue
        elif isinstance(value, (str, int, float, bool)):
            out[name] = value
    return out


__all__ = ["CityJsonReading", "flatten_attributes"]
