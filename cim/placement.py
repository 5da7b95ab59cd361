"""Where a dataset lies: the placement a user gives (``--crs``, or ``--origin``/``--rotation`` for
local coordinates) and the check that a dataset's coordinates fit the frame they are said to be in.
Transformations go through the frames of :mod:`cim.crs` (the one module importing pyproj)."""
from __future__ import annotations

import numpy as np

from cim.crs import Array, CrsFrame, Frame, LocalFrame, crs_frame
from cim.errors import CrsContradictionError, PlacementError


def parse_origin(text: str) -> tuple[float, float, float]:
    """``LON,LAT[,HEIGHT]`` -> floats, with a clear error."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (2, 3):
        raise PlacementError(f"--origin must be LON,LAT[,HEIGHT] in degrees and metres, got '{text}'", origin=text)
    lon, lat = values[0], values[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise PlacementError(f"--origin {text}: longitude must be in [-180, 180] and latitude in [-90, 90] "
                             "(the order is LON,LAT)", origin=text)
    return lon, lat, (values[2] if len(values) == 3 else 0.0)


def user_frame(crs: str | None = None, origin: str | tuple[float, float, float] | None = None,
               rotation: float | None = None) -> Frame | None:
    """The frame a user gave with ``--crs`` or ``--origin``/``--rotation`` (None if neither)."""
    if crs and origin:
        raise PlacementError("give either --crs or --origin, not both")
    if rotation is not None and not origin:
        raise PlacementError("--rotation only applies with --origin (a local frame)")
    if crs:
        return crs_frame(crs)
    if origin:
        lon, lat, h = parse_origin(origin) if isinstance(origin, str) else origin
        return LocalFrame(lon, lat, h, float(rotation or 0.0))
    return None


def check_plausible(frame: Frame, lo: Array, hi: Array) -> list[str]:
    """Check that a source bounding box (min xyz, max xyz) fits the frame.

    Returns warnings for small doubts; raises :class:`CrsContradictionError` when the
    coordinates cannot be in the declared CRS (non-finite after transformation, or far outside
    the CRS's area of use).
    """
    warnings: list[str] = []
    corners = np.array([[lo[0], lo[1], lo[2]], [hi[0], hi[1], hi[2]], [lo[0], hi[1], lo[2]], [hi[0], lo[1], hi[2]]])
    with np.errstate(all="ignore"):
        ll = frame.to_lonlat(corners)
    if not np.all(np.isfinite(ll)) or np.any(np.abs(ll[:, 1]) > 90):
        raise CrsContradictionError(
            f"the coordinates (x {lo[0]:.3f}..{hi[0]:.3f}, y {lo[1]:.3f}..{hi[1]:.3f}) cannot be in {frame.describe()}: "
            "they do not transform to valid longitudes/latitudes; check the CRS or give --crs",
            bbox=[*lo[:2].tolist(), *hi[:2].tolist()], crs=frame.describe())
    if isinstance(frame, CrsFrame):
        aou = frame.area_of_use()
        if aou is not None:
            west, south, east, north = aou
            margin = max(2.0, 0.5 * max(east - west, north - south))
            lon, lat = ll[:, 0], ll[:, 1]
            if west > east:  # crosses the antimeridian
                lon = np.where(lon < 0, lon + 360, lon)
                east += 360
            far = (lon < west - margin) | (lon > east + margin) | (lat < south - margin) | (lat > north + margin)
            near = (lon < west) | (lon > east) | (lat < south) | (lat > north)
            where = f"lon {ll[:, 0].min():.4f}..{ll[:, 0].max():.4f}, lat {ll[:, 1].min():.4f}..{ll[:, 1].max():.4f}"
            if np.any(far):
                raise CrsContradictionError(
                    f"the coordinates fall at {where}, far outside the area where {frame.describe()} is used "
                    f"(lon {west:.2f}..{east:.2f}, lat {south:.2f}..{north:.2f}); the declared CRS contradicts the "
                    "coordinates: give the right one with --crs, or --origin for local coordinates",
                    bbox=[*lo[:2].tolist(), *hi[:2].tolist()], crs=frame.describe())
            if np.any(near):
                warnings.append(f"the data lie at {where}, just outside the area of use of {frame.describe()}; "
                                "check that the CRS is right")
    if abs(hi[0] - lo[0]) < 1e-9 and abs(hi[1] - lo[1]) < 1e-9:
        warnings.append("all coordinates share one x, y position")
    return warnings

