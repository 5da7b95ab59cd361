"""Coordinate reference systems: the one module that imports pyproj.

* :func:`parse_crs` reads every spelling of a CRS found in city data (``EPSG:25832``,
  ``urn:ogc:def:crs:EPSG::25832``, ``urn:ogc:def:crs:EPSG:6.12:25833``, the compound
  ``urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783``, ``http://www.opengis.net/def/crs/EPSG/0/3946``,
  the OGC ``crs-compound?1=…&2=…`` URL and the German AdV ``urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH``).
* A :class:`Frame` says how a dataset's source coordinates map onto the Earth: a CRS
  (:class:`CrsFrame`) or a local metric frame placed by the user (:class:`LocalFrame`). Frames
  turn source coordinates into ECEF (EPSG:4978) and longitude/latitude (EPSG:4326).

Axis order is explicit: pyproj transformers are built with ``always_xy=True`` and a
:class:`CrsFrame` swaps input columns itself when the source data is in latitude/longitude order.
Heights are passed through as ellipsoidal heights (no geoid model is applied: see docs/crs.md).
"""
from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_crs_info
from pyproj.enums import PJType
from pyproj.exceptions import CRSError as _PyprojCRSError
from shapely.geometry.base import BaseGeometry

from cim.errors import CrsUnknownError, PlacementError

ECEF_EPSG = 4978
WGS84_EPSG = 4326
WGS84_3D_EPSG = 4979

Array = npt.NDArray[np.float64]

# German AdV CRS names used by many CityGML files
_ADV_NAMES = {
    "ETRS89_UTM31": 25831, "ETRS89_UTM32": 25832, "ETRS89_UTM33": 25833,
    "DE_DHDN_3GK2": 31466, "DE_DHDN_3GK3": 31467, "DE_DHDN_3GK4": 31468, "DE_DHDN_3GK5": 31469,
    "DE_DHHN92_NH": 5783, "DE_DHHN2016_NH": 7837, "DE_DHHN12_NOH": 5784,
}
_EPSG_CODE = re.compile(r"EPSG(?:/[^/]*/|:[^:,]*:|:)(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class CrsRef:
    """A resolved CRS: EPSG code of the horizontal (or 3D) CRS and of an optional vertical CRS."""

    horizontal: int
    vertical: int | None = None
    text: str = ""

    def __str__(self) -> str:
        return f"EPSG:{self.horizontal}" + (f"+{self.vertical}" if self.vertical else "")

    @property
    def name(self) -> str:
        names = [_crs(self.horizontal).name]
        if self.vertical:
            names.append(_crs(self.vertical).name)
        return " + ".join(names)

    @property
    def is_geographic(self) -> bool:
        return bool(_crs(self.horizontal).is_geographic)

    @property
    def is_geocentric(self) -> bool:
        return bool(_crs(self.horizontal).is_geocentric)


def is_local_reference(text: str) -> bool:
    """True for a reference to a CRS defined inside the file (``#local-CRS-1``), i.e. not an
    authority code: such data are in local coordinates and need a user placement."""
    return text.strip().startswith("#")


def parse_crs(text: str) -> CrsRef:
    """Resolve a CRS name as written in city data, WKT, PROJ JSON or ``EPSG:N[+M]``.

    Raises :class:`CrsUnknownError` naming the text when it cannot be resolved.
    """
    raw = text.strip()
    if not raw:
        raise CrsUnknownError("empty CRS name")
    if is_local_reference(raw):
        raise CrsUnknownError(
            f"'{raw}' refers to a local engineering CRS defined in the file, not to an EPSG code; "
            "place the data with --crs EPSG:N or --origin LON,LAT,HEIGHT", crs=raw)
    codes: list[int] = []
    if raw.lower().startswith("urn:adv:crs:"):
        for part in raw[len("urn:adv:crs:"):].split("*"):
            if part.upper() not in _ADV_NAMES:
                raise CrsUnknownError(f"unknown AdV CRS name '{part}' in '{raw}'", crs=raw)
            codes.append(_ADV_NAMES[part.upper()])
    elif re.fullmatch(r"EPSG:\d+(\+\d+)?", raw, re.IGNORECASE):
        codes = [int(c) for c in re.findall(r"\d+", raw)]
    elif re.fullmatch(r"\d+", raw):
        codes = [int(raw)]
    elif "EPSG" in raw.upper() and not raw.lstrip().startswith(("{", "PROJCS", "GEOGCS", "PROJCRS", "GEOGCRS", "COMPOUNDCRS", "COMPD_CS", "VERTCRS")):
        codes = [int(c) for c in _EPSG_CODE.findall(raw)]
    if codes:
        if len(codes) > 2:
            raise CrsUnknownError(f"CRS '{raw}' has more than two components", crs=raw)
        for code in codes:
            _crs_checked(code, raw)
        horizontal, vertical = codes[0], (codes[1] if len(codes) == 2 else None)
        hcrs = _crs(horizontal)
        if hcrs.is_compound:  # e.g. EPSG:7415 (RD New + NAP): split it
            subs = hcrs.sub_crs_list
            horizontal = _epsg_of(subs[0], raw)
            vertical = vertical or _epsg_of(subs[1], raw)
        return CrsRef(horizontal, vertical, raw)
    try:
        crs = pyproj.CRS.from_user_input(raw)
    except _PyprojCRSError as exc:
        raise CrsUnknownError(f"cannot resolve CRS '{raw[:120]}': {exc}", crs=raw[:200]) from exc
    if crs.is_compound:
        return CrsRef(_epsg_of(crs.sub_crs_list[0], raw), _epsg_of(crs.sub_crs_list[1], raw), raw)
    return CrsRef(_epsg_of(crs, raw), None, raw)


def identify_crs(text: str, near_xy: tuple[float, float]) -> CrsRef:
    """Resolve a CRS definition that carries no EPSG code (e.g. an ESRI-style WKT of a LAS file)
    to the EPSG CRS with an equal definition (same datum, projection, parameters and units) among
    those used at ``near_xy`` (a point of the data, in that CRS). Raises :class:`CrsUnknownError`
    when there is none."""
    try:
        crs = pyproj.CRS.from_user_input(text)
    except _PyprojCRSError as exc:
        raise CrsUnknownError(f"cannot resolve CRS '{text[:120]}': {exc}", crs=text[:200]) from exc
    horizontal = crs.sub_crs_list[0] if crs.is_compound else crs
    vertical = None
    if crs.is_compound:
        vertical = crs.sub_crs_list[1].to_epsg(min_confidence=70)
    try:
        lon, lat = pyproj.Transformer.from_crs(horizontal, _crs(WGS84_EPSG), always_xy=True).transform(*near_xy)
    except _PyprojCRSError as exc:
        raise CrsUnknownError(f"cannot use CRS '{horizontal.name}': {exc}", crs=text[:200]) from exc
    if math.isfinite(lon) and math.isfinite(lat):
        kinds = [PJType.PROJECTED_CRS] if horizontal.is_projected else [PJType.GEOGRAPHIC_2D_CRS]
        aoi = AreaOfInterest(lon, lat, lon, lat)
        for info in query_crs_info(auth_name="EPSG", pj_types=kinds, area_of_interest=aoi, contains=False):
            if info.deprecated:
                continue
            candidate = _crs(int(info.code))
            if candidate.equals(horizontal, ignore_axis_order=True):
                return CrsRef(int(info.code), int(vertical) if vertical else None, text)
    raise CrsUnknownError(f"CRS '{horizontal.name}' has no EPSG code and matches no EPSG CRS used there; "
                          "give one with --crs EPSG:N", crs=text[:200])


def _epsg_of(crs: pyproj.CRS, raw: str) -> int:
    code = crs.to_epsg(min_confidence=70)
    if code is None:
        raise CrsUnknownError(f"CRS '{crs.name}' (from '{raw[:120]}') has no EPSG code; give one with --crs EPSG:N", crs=raw[:200])
    return int(code)


@lru_cache(maxsize=256)
def _crs(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


def _crs_checked(code: int, raw: str) -> pyproj.CRS:
    try:
        return _crs(code)
    except _PyprojCRSError as exc:
        raise CrsUnknownError(f"EPSG:{code} (from '{raw}') is not a known CRS", crs=raw) from exc


@lru_cache(maxsize=256)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(src), pyproj.CRS.from_user_input(dst), always_xy=True)


# --- geodesy helpers used by the tiler ---------------------------------------------------------

def lonlat_to_ecef(lon: Array, lat: Array, h: Array) -> Array:
    """Geodetic WGS 84 (degrees, ellipsoidal metres) -> ECEF (n, 3)."""
    x, y, z = _transformer("EPSG:4979", "EPSG:4978").transform(lon, lat, h)
    return np.column_stack([x, y, z]).astype(np.float64)


def ecef_to_lonlat(xyz: Array) -> Array:
    """ECEF (n, 3) -> (n, 3) longitude, latitude (degrees), ellipsoidal height (m)."""
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    lon, lat, h = _transformer("EPSG:4978", "EPSG:4979").transform(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    return np.column_stack([lon, lat, h])


def enu_to_ecef_matrix(lon: float, lat: float, h: float = 0.0) -> Array:
    """4x4 column-major-ready matrix mapping east-north-up metres at (lon, lat, h) to ECEF."""
    lam, phi = math.radians(lon), math.radians(lat)
    sl, cl, sp, cp = math.sin(lam), math.cos(lam), math.sin(phi), math.cos(phi)
    origin = lonlat_to_ecef(np.array([lon]), np.array([lat]), np.array([h]))[0]
    m = np.eye(4)
    m[:3, 0] = [-sl, cl, 0.0]
    m[:3, 1] = [-sp * cl, -sp * sl, cp]
    m[:3, 2] = [cp * cl, cp * sl, sp]
    m[:3, 3] = origin
    return m


def transform_geometry(geom: BaseGeometry, src_epsg: int, dst_epsg: int) -> BaseGeometry:
    """Reproject a 2D shapely geometry between EPSG codes (x = easting/longitude first)."""
    if src_epsg == dst_epsg:
        return geom
    t = _transformer(f"EPSG:{src_epsg}", f"EPSG:{dst_epsg}")
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def transform_bbox(bbox: tuple[float, float, float, float], src_epsg: int, dst_epsg: int) -> tuple[float, float, float, float]:
    """The bbox (minx, miny, maxx, maxy) reprojected, densified along its edges."""
    if src_epsg == dst_epsg:
        return bbox
    t = _transformer(f"EPSG:{src_epsg}", f"EPSG:{dst_epsg}")
    return tuple(t.transform_bounds(*bbox, densify_pts=21))  # type: ignore[return-value]


def epsg_from_user(text: str) -> int:
    """An EPSG code from user input (``EPSG:5899``, ``5899``, an OGC CRS URI); horizontal part."""
    return parse_crs(text).horizontal


def horizontal_unit_metres(epsg: int) -> float:
    """Metres per unit of the first axis of EPSG:``epsg`` (1.0 for metres, 0.3048 for feet).
    Geographic CRSs (degrees) return 1.0: callers must not scale angles."""
    crs = _crs(epsg)
    axes = crs.axis_info
    if crs.is_geographic or not axes:
        return 1.0
    return float(axes[0].unit_conversion_factor)


def crs_uri(epsg: int) -> str:
    if epsg == WGS84_EPSG:
        return "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    return f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"


def unit_factor(epsg: int) -> tuple[str, float]:
    """(name, metres per unit) of the first axis of EPSG:``epsg`` (e.g. ``("US survey foot",
    0.3048006096)``); degrees for geographic CRSs give their radian factor."""
    axes = _crs(epsg).axis_info
    if not axes:
        return "metre", 1.0
    return str(axes[0].unit_name), float(axes[0].unit_conversion_factor)


def crs_wkt(epsg: int) -> str:
    return str(_crs(epsg).to_wkt())


def crs_wkt1(epsg: int) -> str:
    """WKT 1 (GDAL flavour), what GeoPackage's ``gpkg_spatial_ref_sys.definition`` holds."""
    return str(_crs(epsg).to_wkt("WKT1_GDAL"))


def crs_name(epsg: int) -> str:
    return str(_crs(epsg).name)


def crs_axis_directions(epsg: int) -> list[str]:
    """The directions of the CRS's axes in its authority order (``["north", "east"]`` for EPSG:4326)."""
    return [str(a.direction).lower() for a in _crs(epsg).axis_info]


def transform_xy(x: Array, y: Array, src_epsg: int, dst_epsg: int) -> tuple[Array, Array]:
    """Coordinates between EPSG codes, x = easting/longitude first on both sides."""
    if src_epsg == dst_epsg:
        return np.asarray(x, np.float64), np.asarray(y, np.float64)
    tx, ty = _transformer(f"EPSG:{src_epsg}", f"EPSG:{dst_epsg}").transform(x, y)
    return np.asarray(tx, np.float64), np.asarray(ty, np.float64)


# --- frames ---------------------------------------------------------------------------------

class Frame(ABC):
    """How a dataset's source coordinates (x, y, z) sit on the Earth."""

    @abstractmethod
    def to_ecef(self, xyz: Array) -> Array:
        """(n, 3) source coordinates -> (n, 3) ECEF (EPSG:4978) metres."""

    def to_lonlat(self, xyz: Array) -> Array:
        """(n, 3) source -> (n, 3) lon, lat (degrees), height (m)."""
        return ecef_to_lonlat(self.to_ecef(xyz))

    def geometry_to_lonlat(self, geom: BaseGeometry, z: float = 0.0) -> BaseGeometry:
        """A 2D source-frame geometry as lon/lat (EPSG:4326, x = longitude)."""
        def fn(c: Array) -> Array:
            pts = np.column_stack([c[:, 0], c[:, 1], np.full(len(c), z)])
            return self.to_lonlat(pts)[:, :2]
        return shapely.transform(geom, fn)

    @property
    def z_to_metres(self) -> float:
        return 1.0

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """A JSON-able description that :func:`frame_from_spec` turns back into this frame."""

    @abstractmethod
    def describe(self) -> str:
        """A short text for users: the CRS or the placement."""


@dataclass(frozen=True)
class CrsFrame(Frame):
    """Source coordinates are in ``crs``. ``lat_first`` marks geographic data written
    latitude first (the GML rule for EPSG geographic CRSs)."""

    crs: CrsRef
    lat_first: bool = False
    z_factor: float | None = None  # metres per z unit when the data declare it (LAS vertical units); None: the CRS's

    def _xy_first(self, xyz: Array) -> Array:
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        return xyz[:, [1, 0, 2]] if self.lat_first else xyz

    def to_ecef(self, xyz: Array) -> Array:
        p = self._xy_first(xyz)
        if self.crs.is_geocentric:
            return p.copy()
        t = _geodetic_transformer(self.crs.horizontal)
        lon, lat = t.transform(p[:, 0], p[:, 1])
        return lonlat_to_ecef(np.asarray(lon), np.asarray(lat), p[:, 2] * self.z_to_metres)

    def to_lonlat(self, xyz: Array) -> Array:
        p = self._xy_first(xyz)
        if self.crs.is_geocentric:
            return ecef_to_lonlat(p)
        lon, lat = _geodetic_transformer(self.crs.horizontal).transform(p[:, 0], p[:, 1])
        return np.column_stack([lon, lat, p[:, 2] * self.z_to_metres])

    def geometry_to_lonlat(self, geom: BaseGeometry, z: float = 0.0) -> BaseGeometry:
        t = _geodetic_transformer(self.crs.horizontal)
        if self.lat_first:
            return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 1], c[:, 0])))
        return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))

    @property
    def z_to_metres(self) -> float:
        if self.z_factor is not None:
            return self.z_factor
        return _z_factor(self.crs.horizontal, self.crs.vertical)

    @property
    def horizontal_unit(self) -> str:
        axis = _crs(self.crs.horizontal).axis_info
        return str(axis[0].unit_name) if axis else "metre"

    def spec(self) -> dict[str, Any]:
        spec = {"type": "crs", "horizontal": self.crs.horizontal, "vertical": self.crs.vertical,
                "text": self.crs.text, "lat_first": self.lat_first}
        if self.z_factor is not None:
            spec["z_to_metres"] = self.z_factor
        return spec

    def describe(self) -> str:
        z = f", z unit {self.z_factor:.10g} m" if self.z_factor is not None else ""
        return f"{self.crs} ({self.crs.name}{z})"

    def area_of_use(self) -> tuple[float, float, float, float] | None:
        aou = _crs(self.crs.horizontal).area_of_use
        return (aou.west, aou.south, aou.east, aou.north) if aou else None


@lru_cache(maxsize=64)
def _geodetic_transformer(code: int) -> pyproj.Transformer:
    # to WGS 84 lon/lat; datum shifts beyond the grids available offline are PROJ's ballpark
    return pyproj.Transformer.from_crs(_crs(code), _crs(WGS84_EPSG), always_xy=True)


@lru_cache(maxsize=64)
def _z_factor(horizontal: int, vertical: int | None) -> float:
    if vertical is not None:
        axes = _crs(vertical).axis_info
        return float(axes[0].unit_conversion_factor) if axes else 1.0
    axes = _crs(horizontal).axis_info
    if len(axes) == 3:
        return float(axes[2].unit_conversion_factor)
    return 1.0


@dataclass(frozen=True)
class LocalFrame(Frame):
    """A local metric frame (x, y, z metres) placed by the user: its origin at ``lon, lat,
    height`` (WGS 84, ellipsoidal) and its +y axis at ``rotation`` degrees clockwise from true
    north (compass bearing; 0 = +y points north, 90 = +y points east)."""

    lon: float
    lat: float
    height: float = 0.0
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if not (-180 <= self.lon <= 180 and -90 <= self.lat <= 90) or not all(
                math.isfinite(v) for v in (self.lon, self.lat, self.height, self.rotation)):
            raise PlacementError(f"origin {self.lon},{self.lat},{self.height} is not a valid longitude,latitude,height",
                                 origin=[self.lon, self.lat, self.height])

    def _enu(self, xyz: Array) -> Array:
        p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        t = math.radians(self.rotation)
        c, s = math.cos(t), math.sin(t)
        return np.column_stack([p[:, 0] * c + p[:, 1] * s, -p[:, 0] * s + p[:, 1] * c, p[:, 2]])

    def to_ecef(self, xyz: Array) -> Array:
        m = enu_to_ecef_matrix(self.lon, self.lat, self.height)
        return self._enu(xyz) @ m[:3, :3].T + m[:3, 3]

    def spec(self) -> dict[str, Any]:
        return {"type": "local", "origin": [self.lon, self.lat, self.height], "rotation": self.rotation}

    def describe(self) -> str:
        return f"local metric frame at lon {self.lon}, lat {self.lat}, height {self.height} m, rotated {self.rotation} deg"


def frame_from_spec(spec: dict[str, Any]) -> Frame:
    """Rebuild a frame from :meth:`Frame.spec` (as stored with a dataset)."""
    kind = spec.get("type")
    if kind == "crs":
        z = spec.get("z_to_metres")
        return CrsFrame(CrsRef(int(spec["horizontal"]), spec.get("vertical"), spec.get("text", "")),
                        bool(spec.get("lat_first", False)), None if z is None else float(z))
    if kind == "local":
        lon, lat, h = spec["origin"]
        return LocalFrame(float(lon), float(lat), float(h), float(spec.get("rotation", 0.0)))
    raise PlacementError(f"unknown frame type {kind!r}", spec=spec)


def crs_frame(text: str) -> CrsFrame:
    """A frame for data written in the CRS named ``text``; geographic EPSG CRSs are read in their
    authority axis order (latitude first), as GML requires."""
    ref = parse_crs(text)
    lat_first = ref.is_geographic and _first_axis_is_latitude(ref.horizontal)
    return CrsFrame(ref, lat_first)


def _first_axis_is_latitude(code: int) -> bool:
    axes = _crs(code).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")
