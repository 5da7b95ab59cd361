"""Footprint selection and GeoJSON: the store's lon/lat footprints by bbox, dataset and class, in
the CRS a GIS team works in.

* :func:`select_footprints` filters (a footprint matches when its polygon intersects the bbox),
  counts and pages, then reprojects the page in one call.
* :func:`geojson_feature` / :func:`write_geojson` serialise; properties are the same flat
  columns as the GeoPackage export (:data:`COLUMNS`) plus every attribute under ``attributes``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from cim.errors import InvalidParameterError
from cim.export.output_file import write_text_atomically
from cim.export.output_crs import CRS84, OutputCrs, bbox_polygon_lonlat, to_output
from cim.store.base import FootprintRow, Store

#: flat properties/columns of an exported footprint: name -> (SQL type, source)
COLUMNS: dict[str, str] = {
    "feature_id": "TEXT", "dataset": "TEXT", "class": "TEXT", "name": "TEXT",
    "height_min": "REAL", "height_max": "REAL", "height": "REAL",
    "function": "TEXT", "usage": "TEXT", "measured_height": "REAL", "storeys_above_ground": "INTEGER",
    "year_of_construction": "TEXT", "roof_type": "TEXT",
}
#: feature attribute (as converters name them) -> column
KEY_ATTRIBUTES = {"function": "function", "usage": "usage", "measuredHeight": "measured_height",
                  "storeysAboveGround": "storeys_above_ground", "yearOfConstruction": "year_of_construction",
                  "dateOfConstruction": "year_of_construction", "roofType": "roof_type"}


@dataclass(frozen=True)
class FootprintQuery:
    """``bbox`` is (lower corner, upper corner) in ``bbox_crs`` and its axis order; ``crs`` is the
    output CRS. ``classes`` keeps only those CIM classes (None: every class)."""

    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OutputCrs = CRS84
    crs: OutputCrs = CRS84
    dataset: str | None = None
    classes: frozenset[str] | None = None
    limit: int | None = None
    offset: int = 0


@dataclass
class ExportedFootprint:
    row: FootprintRow
    geometry: BaseGeometry  # in the query's output CRS and axis order

    @property
    def id(self) -> str:
        return feature_key(self.row.dataset, self.row.feature_id)


@dataclass
class FootprintPage:
    features: list[ExportedFootprint]
    number_matched: int
    query: FootprintQuery
    extra: dict[str, Any] = field(default_factory=dict)


def feature_key(dataset: str, feature_id: str) -> str:
    """The export id of a footprint: ``<dataset>:<feature id>`` (feature ids are unique per dataset;
    dataset names have no ``:``)."""
    return f"{dataset}:{feature_id}"


def parse_bbox(text: str | None, parameter: str = "bbox") -> tuple[float, float, float, float] | None:
    """``W,S,E,N`` (or the 6-number 3D form, whose heights are ignored) -> floats, else
    :class:`InvalidParameterError`."""
    if text is None or not text.strip():
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidParameterError(f"{parameter} must be four numbers 'minx,miny,maxx,maxy' (lon/lat unless "
                                    f"bbox-crs says otherwise), got '{text[:80]}'", parameter=parameter, value=text[:80])
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidParameterError(f"{parameter} '{text[:80]}' has its lower corner above or right of its upper "
                                    "corner: the order is minx,miny,maxx,maxy", parameter=parameter, value=text[:80])
    return values[0], values[1], values[2], values[3]


def parse_int(text: str | None, parameter: str, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within [minimum, maximum], else :class:`InvalidParameterError`."""
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        raise InvalidParameterError(f"{parameter} must be an integer from {minimum} to {maximum}, got '{text[:40]}'",
                                    parameter=parameter, value=text[:40], minimum=minimum, maximum=maximum)
    return value


def select_footprints(store: Store, query: FootprintQuery) -> FootprintPage:
    """The footprints matching ``query``: ``number_matched`` counts them all, ``features`` holds the
    page (``offset``/``limit``) reprojected into ``query.crs``. Unknown dataset ->
    :class:`cim.errors.DatasetNotFoundError`."""
    if query.dataset is not None:
        store.get_dataset(query.dataset)
    area = bbox_polygon_lonlat(query.bbox, query.bbox_crs) if query.bbox is not None else None
    envelope = area.bounds if area is not None else None
    matched: list[FootprintRow] = []
    for row in store.footprints(envelope, dataset=query.dataset):
        if query.classes is not None and row.city_class not in query.classes:
            continue
        if area is not None and not area.intersects(row.geometry):
            continue
        matched.append(row)
    end = None if query.limit is None else query.offset + query.limit
    page = matched[query.offset:end]
    geoms = to_output([r.geometry for r in page], query.crs)
    return FootprintPage([ExportedFootprint(r, g) for r, g in zip(page, geoms)], len(matched), query)


def properties(row: FootprintRow) -> dict[str, Any]:
    """The flat :data:`COLUMNS` of a footprint (heights in metres), plus ``attributes``."""
    props: dict[str, Any] = {name: None for name in COLUMNS}
    props.update(feature_id=row.feature_id, dataset=row.dataset, name=row.name, height_min=_mm(row.height_min),
                 height_max=_mm(row.height_max))
    props["class"] = row.city_class
    if row.height_min is not None and row.height_max is not None:
        props["height"] = _mm(row.height_max - row.height_min)
    for attr, column in KEY_ATTRIBUTES.items():
        value = row.attributes.get(attr)
        if value is None or props[column] is not None:
            continue
        if COLUMNS[column] == "REAL":
            value = _number(value, float)
        elif COLUMNS[column] == "INTEGER":
            value = _number(value, int)
        else:
            value = str(value)
        props[column] = value
    props["attributes"] = dict(row.attributes)
    return props


def _mm(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)


def _number(value: Any, kind: type) -> Any:
    try:
        return None if isinstance(value, bool) else kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None


def geojson_feature(item: ExportedFootprint) -> dict[str, Any]:
    return {"type": "Feature", "id": item.id, "geometry": mapping(item.geometry), "properties": properties(item.row)}


def crs_member(crs: OutputCrs) -> dict[str, Any] | None:
    """The (pre-RFC 7946) GeoJSON ``crs`` member that GDAL/QGIS read, for non-CRS84 output written
    x = easting first; None for CRS84 (RFC 7946) and for latitude-first output."""
    if crs.is_crs84 or crs.lat_first:
        return None
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{crs.epsg}"}}


def write_geojson(items: Iterable[ExportedFootprint], crs: OutputCrs, out: Path | IO[str]) -> int:
    """A GeoJSON FeatureCollection, one feature per line (streamed); returns the feature count.
    A path is written atomically (temporary file, then rename)."""
    if isinstance(out, Path):
        return write_text_atomically(out, lambda fh: write_geojson(items, crs, fh))
    head: dict[str, Any] = {"type": "FeatureCollection"}
    member = crs_member(crs)
    if member is not None:
        head["crs"] = member
    out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n')
    n = 0
    for item in items:
        out.write((",\n" if n else "") + json.dumps(geojson_feature(item), ensure_ascii=False))
        n += 1
    out.write("\n]}\n")
    return n
