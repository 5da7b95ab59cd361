"""Where an IFC model sits on the Earth, and the affine map from geometry-kernel coordinates to it.

The geometry kernel gives vertices in metres in the project's engineering coordinate system
(the world coordinate system of the model context; x, y, z). This module chooses, in order
(docs/ifc.md):

1. a user placement (``--crs`` or ``--origin``/``--rotation``): the user is the authority;
2. ``IfcMapConversion`` + ``IfcProjectedCRS`` (IFC4, IFC4X3);
3. the IFC2X3 convention: property sets ``ePSet_MapConversion`` + ``ePSet_ProjectedCRS``;
4. ``IfcSite`` RefLatitude/RefLongitude/RefElevation with the context's true north;

and refuses (:class:`cim.errors.CrsMissingError`) when nothing places the model.

A map conversion maps project coordinates p (project length units) to map coordinates::

    E = Eastings  + f * (a * px - o * py)
    N = Northings + f * (o * px + a * py)
    H = OrthogonalHeight + f * pz

(IfcMapConversionScaled first multiplies px, py, pz by FactorX, FactorY, FactorZ.)

with (a, o) = (XAxisAbscissa, XAxisOrdinate) normalised and f the factor from project units to
map units. IFC4 defines ``Scale`` as that factor (so it includes the unit conversion, e.g. 0.001
for millimetre projects and metre maps); IFC4.3 files and exporters also write it as a pure grid
scale (1.0 with millimetre projects) or inverted (1000). :func:`unit_factor` takes the reading
that is consistent with the units and reports when it is not the literal IFC4 one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cim.conversion import ConversionReport
from cim.crs import CrsFrame, Frame, LocalFrame, crs_frame, horizontal_unit_metres
from cim.errors import CrsMissingError, CrsUnknownError

Array = npt.NDArray[np.float64]

#: a RefLatitude/RefLongitude this far (m) from where the map conversion puts the site is a conflict
CONFLICT_METRES = 100.0


@dataclass(frozen=True)
class MapConversion:
    """A map conversion as written in the file (IfcMapConversion or ePSet_MapConversion)."""

    eastings: float
    northings: float
    orthogonal_height: float
    x_axis_abscissa: float
    x_axis_ordinate: float
    scale: float | None
    crs_name: str
    map_unit_metres: float | None  # metres per map unit when the file says, else None
    source: str  # "IfcMapConversion" or "ePSet_MapConversion"
    #: IfcMapConversionScaled (IFC4X3 ADD2) FactorX/Y/Z, applied to the project axes before the rotation
    factors: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SiteReference:
    """IfcSite RefLatitude/RefLongitude (degrees), RefElevation (metres), the site's origin in
    project coordinates (metres) and true north as a direction in project x, y."""

    latitude: float
    longitude: float
    elevation: float
    origin: tuple[float, float, float]
    true_north: tuple[float, float]


@dataclass(frozen=True)
class Georeferencing:
    """Everything the file says about its placement."""

    unit_metres: float  # metres per project length unit
    map_conversion: MapConversion | None
    site: SiteReference | None
    notes: tuple[str, ...] = ()  # problems found while reading (unparsable values...)


@dataclass(frozen=True)
class Placement:
    """The chosen frame and the affine map ``frame_xyz = kernel_xyz_metres @ matrix.T + offset``."""

    frame: Frame
    matrix: Array
    offset: Array
    description: str

    def apply(self, xyz: Array) -> Array:
        """(n, 3) kernel coordinates (metres, project engineering frame) -> frame coordinates."""
        return np.asarray(xyz, dtype=np.float64).reshape(-1, 3) @ self.matrix.T + self.offset


def dms_to_degrees(value: object) -> float | None:
    """IfcCompoundPlaneAngleMeasure (degrees, minutes, seconds[, millionths]) -> degrees.
    All components carry the sign of the angle (IFC rule); None when unset or malformed."""
    if not isinstance(value, (list, tuple)) or len(value) < 3:
        return None
    try:
        parts = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    millionths = parts[3] if len(parts) > 3 else 0.0
    return parts[0] + parts[1] / 60 + (parts[2] + millionths / 1e6) / 3600


def unit_factor(mc: MapConversion, unit_metres: float, map_unit_metres: float) -> tuple[float, str | None]:
    """The factor from project length units to map units, and a note when the file's ``Scale``
    was not taken literally (IFC4 semantics). ``expected`` is the pure unit conversion; a
    grid scale factor stays within a few per mille of it."""
    expected = unit_metres / map_unit_metres
    if mc.scale is None:
        if abs(expected - 1.0) < 1e-9:
            return 1.0, None
        return expected, (f"{mc.source} has no Scale while the project length unit is {unit_metres:g} m and the map "
                          f"unit {map_unit_metres:g} m: used the unit conversion {expected:g} as the scale")
    if mc.scale <= 0 or not math.isfinite(mc.scale):
        return expected, f"{mc.source} Scale {mc.scale} is not a positive number: used the unit conversion {expected:g}"
    candidates = [
        (mc.scale, None),
        (mc.scale * expected, f"read {mc.source} Scale {mc.scale:g} as a grid scale on top of the unit conversion "
                              f"({unit_metres:g} m project units to {map_unit_metres:g} m map units): factor "
                              f"{mc.scale * expected:g}"),
        (1.0 / mc.scale, f"{mc.source} Scale {mc.scale:g} with project length unit {unit_metres:g} m and map unit "
                         f"{map_unit_metres:g} m would scale the model by {mc.scale / expected:g}; read it as "
                         f"inverted (factor {1.0 / mc.scale:g})"),
    ]
    factor, note = min(candidates, key=lambda c: abs(math.log(c[0] / expected)))
    if abs(math.log(factor / expected)) > math.log(1.1):
        note = (f"{mc.source} Scale {mc.scale:g} does not fit the units (project {unit_metres:g} m, map "
                f"{map_unit_metres:g} m) in any reading; used factor {factor:g}: check the model's size")
    return factor, note


def choose_placement(geo: Georeferencing, user: Frame | None, report: ConversionReport, file_name: str) -> Placement:
    """Pick the placement (see the module docstring) and write what was chosen and why into
    ``report.georeferencing`` (conflicts also into ``report.warnings``)."""
    for note in geo.notes:
        report.warn(note)
    mc, site = geo.map_conversion, geo.site
    found = [s for s, present in ((mc.source if mc else "", mc is not None),
                                  ("IfcSite RefLatitude/RefLongitude", site is not None)) if present]
    if user is not None:
        if isinstance(user, CrsFrame) and mc is not None:
            placement = _map_placement(mc, geo.unit_metres, user, report)
            _say(report, f"user CRS {user.describe()} with the file's {mc.source} "
                         f"(E {mc.eastings}, N {mc.northings}, H {mc.orthogonal_height})"
                 + (f"; the file names its CRS '{mc.crs_name}', overridden by the user" if mc.crs_name else ""))
            return placement
        if found:
            report.warn(f"the user placement overrides the file's own georeferencing ({', '.join(found)})")
        if isinstance(user, CrsFrame):
            factor = 1.0 / horizontal_unit_metres(user.crs.horizontal)
            _say(report, f"user CRS {user.describe()}: the project coordinates are taken as map coordinates")
            return Placement(user, np.eye(3) * factor, np.zeros(3), report.georeferencing)
        _say(report, f"user placement: {user.describe()} (project origin at the given origin)")
        return Placement(user, np.eye(3), np.zeros(3), report.georeferencing)
    if mc is not None:
        name = mc.crs_name.strip()
        frame: CrsFrame | None = None
        problem = ""
        if not name:
            problem = f"its {mc.source.replace('MapConversion', 'ProjectedCRS')} has an empty name (no EPSG code)"
        else:
            try:
                frame = crs_frame(name)
            except CrsUnknownError as exc:
                problem = f"its projected CRS '{name}' cannot be resolved ({exc.message})"
        if frame is not None:
            placement = _map_placement(mc, geo.unit_metres, frame, report)
            _say(report, f"{mc.source} to {frame.describe()}: E {mc.eastings}, N {mc.northings}, "
                         f"H {mc.orthogonal_height}, x axis ({mc.x_axis_abscissa:g}, {mc.x_axis_ordinate:g}) = "
                         f"{_rotation_degrees(mc):.3f} deg")
            if site is not None:
                _compare_site(site, placement, report)
            return placement
        if site is None:
            raise CrsMissingError(
                f"{file_name} has a {mc.source} but {problem}, so its eastings/northings cannot be placed; "
                "name the CRS with --crs EPSG:N (the map conversion is then applied in it) or place the model "
                "with --origin LON,LAT[,HEIGHT] [--rotation DEG]", file=file_name, source=mc.source)
        report.warn(f"{mc.source} ignored: {problem}; placed by IfcSite RefLatitude/RefLongitude instead")
    if site is not None:
        return _site_placement(site, report)
    raise CrsMissingError(
        f"{file_name} has no georeferencing (no IfcMapConversion, no ePSet_MapConversion, no IfcSite "
        "RefLatitude/RefLongitude); place it with --origin LON,LAT[,HEIGHT] [--rotation DEG] or --crs EPSG:N "
        "if its coordinates are map coordinates", file=file_name)


def _say(report: ConversionReport, text: str) -> None:
    report.georeferencing = text if not report.georeferencing else f"{report.georeferencing}; {text}"


def _rotation_degrees(mc: MapConversion) -> float:
    """Counter-clockwise angle of the project x axis from the map's easting axis."""
    return math.degrees(math.atan2(mc.x_axis_ordinate, mc.x_axis_abscissa))


def _map_placement(mc: MapConversion, unit_metres: float, frame: CrsFrame, report: ConversionReport) -> Placement:
    crs_unit = horizontal_unit_metres(frame.crs.horizontal)
    map_unit = mc.map_unit_metres or crs_unit
    if mc.map_unit_metres is not None and abs(mc.map_unit_metres - crs_unit) > 1e-9 * crs_unit:
        report.warn(f"the projected CRS's MapUnit ({mc.map_unit_metres:g} m) differs from the unit of "
                    f"{frame.describe()} ({crs_unit:g} m); used the MapUnit for the scale")
    factor, note = unit_factor(mc, unit_metres, map_unit)
    if note:
        report.warn(note)
        _say(report, note)
    norm = math.hypot(mc.x_axis_abscissa, mc.x_axis_ordinate)
    a, o = (mc.x_axis_abscissa / norm, mc.x_axis_ordinate / norm) if norm > 0 else (1.0, 0.0)
    if norm <= 0:
        report.warn(f"{mc.source} x axis (0, 0) has no direction; no rotation applied")
    # kernel vertices are metres: back to project units (/ unit_metres), then * factor
    k = factor / unit_metres
    # vertical: the same factor (project units -> map units), then the CRS's own z handling
    fx, fy, fz = mc.factors
    matrix = np.array([[a * k * fx, -o * k * fy, 0.0], [o * k * fx, a * k * fy, 0.0], [0.0, 0.0, k * fz]])
    offset = np.array([mc.eastings, mc.northings, mc.orthogonal_height], dtype=np.float64)
    return Placement(frame, matrix, offset, "")


def _site_placement(site: SiteReference, report: ConversionReport) -> Placement:
    nx, ny = site.true_north
    # compass bearing of the project +y axis: north is at atan2(ny, nx) counter-clockwise from +x
    bearing = (math.degrees(math.atan2(ny, nx)) - 90.0) % 360.0
    bearing = bearing - 360.0 if bearing > 180 else bearing
    frame = LocalFrame(site.longitude, site.latitude, site.elevation, bearing)
    _say(report, f"IfcSite RefLatitude {site.latitude:.7f}, RefLongitude {site.longitude:.7f}, RefElevation "
                 f"{site.elevation:g} m at the site origin; true north ({nx:.4f}, {ny:.4f}) = project +y at bearing "
                 f"{bearing:.3f} deg (RefElevation is used as an ellipsoidal height)")
    return Placement(frame, np.eye(3), -np.asarray(site.origin, dtype=np.float64), report.georeferencing)


def _compare_site(site: SiteReference, placement: Placement, report: ConversionReport) -> None:
    where = placement.frame.to_lonlat(placement.apply(np.array([site.origin])))[0]
    distance = _haversine(where[0], where[1], site.longitude, site.latitude)
    if distance > CONFLICT_METRES:
        msg = (f"conflict: IfcSite RefLatitude/RefLongitude ({site.latitude:.6f}, {site.longitude:.6f}) is "
               f"{distance / 1000:,.1f} km from where the map conversion puts the site origin ({where[1]:.6f}, "
               f"{where[0]:.6f}); used the map conversion (an explicit projected CRS outranks RefLatitude, which "
               "exporters often leave at a default)")
        report.warn(msg)
        _say(report, msg)
    else:
        _say(report, f"IfcSite RefLatitude/RefLongitude agrees within {distance:.1f} m")


def _haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))
