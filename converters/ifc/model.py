"""Reading an open ifcopenshell model: schema check, completeness, georeferencing facts, spatial
structure (parent links) and the non-geometric part of each feature.

Runs in the conversion child process (:mod:`converters.ifc.worker`); ``model`` is an
``ifcopenshell.file``.
"""
from __future__ import annotations

import mmap
import re
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.util.element as element_util
import ifcopenshell.util.placement as placement_util
import ifcopenshell.util.unit as unit_util

from cim.classes import CityClass
from cim.conversion import ConversionReport
from cim.errors import ParseError, TruncatedFileError, UnsupportedFormatError
from cim.feature import Feature, Source
from converters.ifc.georef import Georeferencing, MapConversion, SiteReference, dms_to_degrees
from converters.ifc.mapping import city_class
from converters.ifc.properties import entity_attributes, property_attributes

_FILE_SCHEMA = re.compile(rb"FILE_SCHEMA\s*\(\s*\(\s*'([^']*)'", re.IGNORECASE)
_INSTANCE = re.compile(rb"(?m)(?:^|;|\*/)[ \t\r\n]*#(\d+)[ \t]*=")  # a definition starts a statement
_REFERENCE = re.compile(rb"[(,][ \t\r\n]*#(\d+)")
_SI_PREFIX = {"EXA": 1e18, "PETA": 1e15, "TERA": 1e12, "GIGA": 1e9, "MEGA": 1e6, "KILO": 1e3, "HECTO": 1e2,
              "DECA": 1e1, "DECI": 1e-1, "CENTI": 1e-2, "MILLI": 1e-3, "MICRO": 1e-6, "NANO": 1e-9}


def file_schema(path: Path) -> str:
    """The schema name in the file's header (``IFC4``, ``IFC4X3_ADD2``...)."""
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    m = _FILE_SCHEMA.search(head)
    if not m:
        raise ParseError(f"{path.name}: the header has no FILE_SCHEMA; not a valid IFC file", file=str(path))
    return m.group(1).decode("ascii", "replace").strip()


def open_model(path: Path, display_name: str) -> Any:
    """Open the file with ifcopenshell after checking that its schema is one ifcopenshell reads,
    and check that every entity instance in the text was parsed (truncation, garbage lines)."""
    schema = file_schema(path)
    supported = sorted({s.upper() for s in ifcopenshell.ifcopenshell_wrapper.schema_names()})
    if schema.upper() not in supported:
        raise UnsupportedFormatError(
            f"{display_name}: IFC schema '{schema}' is not supported; this server reads "
            f"{', '.join(s for s in supported if s.startswith('IFC'))}", file=display_name, schema=schema)
    try:
        model = ifcopenshell.open(str(path))
    except Exception as exc:  # ifcopenshell raises plain RuntimeError/IOError subclasses
        raise ParseError(f"{display_name}: ifcopenshell cannot read this {schema} file: {exc}",
                         file=display_name, schema=schema) from exc
    parsed = len(model.entity_names())  # the parsed instance ids, without a Python object per instance
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        # sets of the digit strings (ints only for what is missing): half the cost of int() per match
        defined_text: set[bytes] = set(_INSTANCE.findall(data))  # type: ignore[call-overload]
        referenced_text: set[bytes] = set(_REFERENCE.findall(data))  # type: ignore[call-overload]
    written = len(defined_text)
    dangling = {int(m) for m in referenced_text - defined_text}
    if dangling:  # rare: compare as numbers ("#007" is #7)
        defined = {int(m) for m in defined_text}
        written = len(defined)
        dangling -= defined
    if dangling:
        raise TruncatedFileError(
            f"{display_name}: {len(dangling)} entity instance(s) are referenced but not in the file (e.g. "
            f"#{min(dangling)}); the file is truncated or corrupt (nothing was imported)",
            file=display_name, missing=len(dangling), example=min(dangling))
    if parsed < written:
        raise TruncatedFileError(
            f"{display_name}: only {parsed} of the {written} entity instances in the file could be parsed; the file "
            "is truncated or corrupt (nothing was imported)", file=display_name, parsed=parsed, written=written)
    return model


# --- georeferencing facts -----------------------------------------------------------------------

def read_georeferencing(model: Any) -> Georeferencing:
    unit = float(unit_util.calculate_unit_scale(model))
    notes: list[str] = []
    return Georeferencing(unit, _map_conversion(model, notes), _site_reference(model, unit, notes), tuple(notes))


def _map_conversion(model: Any, notes: list[str]) -> MapConversion | None:
    if model.schema != "IFC2X3":
        conversions = list(model.by_type("IfcMapConversion"))
        if conversions:
            # prefer the one of the 3D model context
            conversions.sort(key=lambda mc: 0 if getattr(mc.SourceCRS, "ContextType", "") == "Model" else 1)
            mc = conversions[0]
            crs = mc.TargetCRS
            return MapConversion(
                float(mc.Eastings), float(mc.Northings), float(mc.OrthogonalHeight or 0.0),
                float(mc.XAxisAbscissa if mc.XAxisAbscissa is not None else 1.0),
                float(mc.XAxisOrdinate if mc.XAxisOrdinate is not None else 0.0),
                None if mc.Scale is None else float(mc.Scale), str(getattr(crs, "Name", "") or ""),
                _unit_metres(getattr(crs, "MapUnit", None)), mc.is_a(),
                _axis_factors(mc))
    for site in model.by_type("IfcSite"):
        psets = element_util.get_psets(site)
        conv, crs = psets.get("ePSet_MapConversion"), psets.get("ePSet_ProjectedCRS", {})
        if not conv:
            continue
        try:
            return MapConversion(
                float(conv["Eastings"]), float(conv["Northings"]), float(conv.get("OrthogonalHeight") or 0.0),
                float(conv.get("XAxisAbscissa", 1.0) if conv.get("XAxisAbscissa") is not None else 1.0),
                float(conv.get("XAxisOrdinate", 0.0) if conv.get("XAxisOrdinate") is not None else 0.0),
                None if conv.get("Scale") is None else float(conv["Scale"]), str(crs.get("Name") or ""),
                None, "ePSet_MapConversion")
        except (KeyError, TypeError, ValueError) as exc:
            notes.append(f"ePSet_MapConversion on IfcSite {site.GlobalId} is incomplete ({exc!s}); ignored")
    return None


def _axis_factors(mc: Any) -> tuple[float, float, float]:
    if not mc.is_a("IfcMapConversionScaled"):
        return 1.0, 1.0, 1.0
    return float(mc.FactorX), float(mc.FactorY), float(mc.FactorZ)


def _unit_metres(unit: Any) -> float | None:
    if unit is None:
        return None
    if unit.is_a("IfcSIUnit"):
        return _SI_PREFIX.get(str(unit.Prefix or ""), 1.0) if unit.Name == "METRE" else None
    if unit.is_a("IfcConversionBasedUnit"):
        base = _unit_metres(unit.ConversionFactor.UnitComponent)
        value = unit.ConversionFactor.ValueComponent.wrappedValue
        return None if base is None else float(value) * base
    return None


def _site_reference(model: Any, unit: float, notes: list[str]) -> SiteReference | None:
    for site in model.by_type("IfcSite"):
        lat, lon = dms_to_degrees(site.RefLatitude), dms_to_degrees(site.RefLongitude)
        if lat is None or lon is None:
            continue
        if lat == 0 and lon == 0:
            notes.append(f"IfcSite {site.GlobalId} RefLatitude/RefLongitude is 0, 0 (an exporter default); ignored")
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            notes.append(f"IfcSite {site.GlobalId} RefLatitude {lat} / RefLongitude {lon} is out of range; ignored")
            continue
        origin = (0.0, 0.0, 0.0)
        if site.ObjectPlacement is not None:
            m = placement_util.get_local_placement(site.ObjectPlacement)
            origin = (float(m[0, 3]) * unit, float(m[1, 3]) * unit, float(m[2, 3]) * unit)
        return SiteReference(lat, lon, float(site.RefElevation or 0.0) * unit, origin, _true_north(model))
    return None


def _true_north(model: Any) -> tuple[float, float]:
    contexts = [c for c in model.by_type("IfcGeometricRepresentationContext")
                if not c.is_a("IfcGeometricRepresentationSubContext")]
    contexts.sort(key=lambda c: (c.ContextType != "Model", c.CoordinateSpaceDimension != 3))
    for c in contexts:
        tn = getattr(c, "TrueNorth", None)
        if tn is not None:
            x, y = float(tn.DirectionRatios[0]), float(tn.DirectionRatios[1])
            if x or y:
                return x, y
    return 0.0, 1.0


# --- features without geometry -------------------------------------------------------------------

def parent_entity(entity: Any) -> Any | None:
    """The spatial or aggregating parent of ``entity`` (None for the top: a site under the project)."""
    parent = element_util.get_aggregate(entity)
    if parent is None:
        parent = element_util.get_container(entity)
    if parent is None or parent.is_a("IfcProject") or parent.is_a("IfcContext"):
        return None
    return parent


def select_products(model: Any, report: ConversionReport) -> dict[int, tuple[Any, CityClass]]:
    """The IFC products the CIM imports, with their CIM class, keyed by STEP id (the others are
    counted as skipped in ``report``)."""
    entities: dict[int, tuple[Any, CityClass]] = {}
    for product in model.by_type("IfcProduct"):
        cls = city_class(product)
        if cls is None:
            report.skip(f"{product.is_a()} (not a city feature)")
            continue
        entities[product.id()] = (product, cls)
    return entities


def read_features(model: Any, file_name: str, report: ConversionReport,
                  entities: dict[int, tuple[Any, CityClass]] | None = None) -> dict[int, Feature]:
    """One feature (no geometry yet) per IFC product the CIM imports (``entities`` from
    :func:`select_products`, selected here if not given), keyed by STEP id; parents resolved to
    feature ids, ``storey`` and ``material`` attributes filled in. Only reads ``model``."""
    if entities is None:
        entities = select_products(model, report)
    features: dict[int, Feature] = {}
    seen_ids: set[str] = set()
    for step_id, (entity, cls) in entities.items():
        fid = str(entity.GlobalId or f"step-{step_id}")
        if fid in seen_ids:
            report.warn(f"GlobalId {fid} is used twice; the second one (#{step_id}) was renamed {fid}-{step_id}")
            fid = f"{fid}-{step_id}"
        seen_ids.add(fid)
        attrs = entity_attributes(entity)
        attrs.update(property_attributes(element_util.get_psets(entity)))
        materials = [str(m.Name) for m in element_util.get_materials(entity) if getattr(m, "Name", None)]
        if materials:
            attrs["material"] = "; ".join(dict.fromkeys(materials))
        features[step_id] = Feature(id=fid, city_class=cls, source=Source(file_name, entity.is_a()),
                                    name=str(entity.Name) if entity.Name else None, attributes=attrs)
        report.count(cls.value)
    for step_id, (entity, _) in entities.items():
        parent = parent_entity(entity)
        hops = 0
        while parent is not None and parent.id() not in features and hops < 64:  # skip non-feature parents
            parent, hops = parent_entity(parent), hops + 1
        if parent is not None and parent.id() not in features:
            parent = None
        if parent is not None:
            features[step_id].parent = features[parent.id()].id
    by_id = {f.id: f for f in features.values()}
    for f in features.values():
        storey = _storey_of(f, by_id)
        if storey is not None and f.city_class is not CityClass.STOREY:
            f.attributes["storey"] = storey.name or storey.id
    return features


def _storey_of(feature: Feature, by_id: dict[str, Feature]) -> Feature | None:
    seen = 0
    node: Feature | None = feature
    while node is not None and seen < 64:
        if node.city_class is CityClass.STOREY:
            return node
        node = by_id.get(node.parent) if node.parent else None
        seen += 1
    return None
