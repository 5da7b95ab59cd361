"""The CRS an export writes in, as users and OGC API - Features Part 2 name it.

* :func:`output_crs` resolves ``EPSG:5899``, ``5899``, ``http://www.opengis.net/def/crs/EPSG/0/5899``,
  ``urn:ogc:def:crs:EPSG::5899`` and CRS84 (the default).
* Axis order follows the CRS's authority definition when asked (OGC API - Features Part 2: an
  explicit ``EPSG:4326`` is latitude first; CRS84 is longitude first), else x = easting/longitude.
* Reprojection goes through :mod:`cim.crs` (the one module that imports pyproj).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from cim.crs import WGS84_EPSG, CrsRef, crs_axis_directions, crs_name, crs_uri, parse_crs, transform_xy
from cim.errors import CimError, CrsParameterError

Array = npt.NDArray[np.float64]

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326_URI = "http://www.opengis.net/def/crs/EPSG/0/4326"
CRS84_NAMES = frozenset({CRS84_URI, "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
                         "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "OGC:CRS84", "CRS84"})


@dataclass(frozen=True)
class OutputCrs:
    """``epsg``: the EPSG code; ``lat_first``: coordinates are written latitude (northing) first;
    ``uri``: the OGC URI that names the CRS (``Content-Crs``, GeoJSON ``crs`` member)."""

    epsg: int
    lat_first: bool
    uri: str

    @property
    def name(self) -> str:
        return "WGS 84 longitude/latitude (CRS84)" if self.uri == CRS84_URI else crs_name(self.epsg)

    @property
    def is_crs84(self) -> bool:
        return self.uri == CRS84_URI

    @property
    def is_geographic(self) -> bool:
        return CrsRef(self.epsg).is_geographic


CRS84 = OutputCrs(WGS84_EPSG, False, CRS84_URI)


def output_crs(text: str | None, *, authority_axis_order: bool = True, parameter: str = "crs") -> OutputCrs:
    """Resolve a CRS name (None/empty = CRS84). Only 2D projected or geographic CRSs: footprints are
    2D. Raises :class:`CrsParameterError` (an invalid-parameter error) naming ``parameter``."""
    raw = (text or "").strip()
    if not raw or raw in CRS84_NAMES:
        return CRS84
    try:
        ref = parse_crs(raw)
        directions = crs_axis_directions(ref.horizontal)
    except CimError as exc:
        raise CrsParameterError(f"{parameter}: {exc.message}; use an EPSG code such as EPSG:5899 or "
                                "http://www.opengis.net/def/crs/EPSG/0/5899", parameter=parameter, crs=raw) from exc
    if ref.vertical is not None or len(directions) != 2:
        raise CrsParameterError(f"{parameter}: '{raw}' is not a 2D CRS; footprints are 2D: give a projected or "
                                "geographic CRS such as EPSG:5899, EPSG:32649 or EPSG:4326", parameter=parameter, crs=raw)
    lat_first = authority_axis_order and directions[0] in ("north", "south")
    uri = EPSG4326_URI if ref.horizontal == WGS84_EPSG else crs_uri(ref.horizontal)
    return OutputCrs(ref.horizontal, lat_first, uri)


def to_output(geoms: list[BaseGeometry], dst: OutputCrs, decimals: int | None = None) -> list[BaseGeometry]:
    """Lon/lat (EPSG:4326, x = longitude) geometries into ``dst`` in its axis order, in one
    transformation call; rounded to ``decimals`` (default: 8 for degrees, 3 (mm) for metres)."""
    if not geoms:
        return []
    if decimals is None:
        decimals = 8 if dst.is_geographic else 3

    def fn(c: Array) -> Array:
        x, y = transform_xy(c[:, 0], c[:, 1], WGS84_EPSG, dst.epsg)
        xy = np.column_stack([y, x] if dst.lat_first else [x, y])
        return np.round(xy, decimals)
    out = shapely.transform(shapely.GeometryCollection(geoms), fn)
    return list(out.geoms)  # type: ignore[attr-defined]


def bbox_polygon_lonlat(bbox: tuple[float, float, float, float], src: OutputCrs) -> BaseGeometry:
    """A bbox given in ``src`` (in its axis order: lower corner, upper corner) as a lon/lat polygon,
    its edges densified so that a projected bbox keeps its curved outline."""
    a, b, c, d = bbox
    minx, miny, maxx, maxy = (b, a, d, c) if src.lat_first else (a, b, c, d)
    box = shapely.segmentize(shapely.box(minx, miny, maxx, maxy), max(maxx - minx, maxy - miny) / 16 or 1.0)
    if src.epsg == WGS84_EPSG:
        return box

    def fn(cc: Array) -> Array:
        x, y = transform_xy(cc[:, 0], cc[:, 1], src.epsg, WGS84_EPSG)
        return np.column_stack([x, y])
    return shapely.transform(box, fn)
