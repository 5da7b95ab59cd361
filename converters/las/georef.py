"""Where a LAS file sits on Earth: its WKT VLR, its GeoTIFF keys, or the user's ``--crs``.

* WKT (LAS 1.4, required for point formats 6-10) and GeoTIFF keys (LAS 1.0-1.3) may both be
  present: the WKT wins and a disagreement goes into the report.
* A WKT without an EPSG code (ESRI-style, e.g. Autzen's ``NAD_1983_HARN_Lambert_Conformal_Conic``)
  is identified with the EPSG CRS of equal definition (:func:`cim.crs.identify_crs`).
* Heights: a vertical CRS in the WKT gives the z unit; else ``VerticalUnitsGeoKey``; else z is
  taken in the horizontal unit (feet CRSs of US scans have feet heights) and the report says so.
* x is always easting or longitude in LAS: geographic frames are never latitude first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cim.crs import CrsFrame, CrsRef, Frame, identify_crs, parse_crs, unit_factor
from cim.errors import CrsError, CrsMissingError, CrsUnknownError

GT_MODEL_TYPE, GEOGRAPHIC_TYPE, PROJECTED_CS_TYPE = 1024, 2048, 3072
PROJ_LINEAR_UNITS, VERTICAL_CS_TYPE, VERTICAL_UNITS = 3076, 4096, 4099
USER_DEFINED = 32767
#: EPSG linear unit codes -> (name, metres per unit)
LINEAR_UNITS = {9001: ("metre", 1.0), 9002: ("foot", 0.3048), 9003: ("US survey foot", 1200 / 3937)}


@dataclass
class Georef:
    """The file's own CRS (None when it declares none) and notes for the report."""

    ref: CrsRef | None
    z_factor: float | None
    source: str
    notes: list[str] = field(default_factory=list)
    vertical_units: int | None = None
    warnings: list[str] = field(default_factory=list)


def z_factor_for(ref: CrsRef | None, vertical_units: int | None) -> tuple[float | None, str | None]:
    """Metres per z unit when it is not the CRS's own (None: the CRS says), with a report note."""
    if ref is None or ref.vertical is not None or ref.is_geocentric:
        return None, None
    if vertical_units in LINEAR_UNITS:
        name, factor = LINEAR_UNITS[vertical_units]
        return (factor, f"heights in {name} (VerticalUnitsGeoKey)") if factor != 1.0 else (None, None)
    if not ref.is_geographic:
        name, factor = unit_factor(ref.horizontal)
        if abs(factor - 1.0) > 1e-12:
            return factor, f"no vertical unit declared: heights taken in the horizontal unit ({name})"
    return None, None


def geo_keys(vlrs: list[Any]) -> dict[int, int]:
    """GeoKey id -> value for the keys stored inline (tiff_tag_location 0)."""
    for vlr in vlrs:
        if type(vlr).__name__ == "GeoKeyDirectoryVlr":
            return {int(k.id): int(k.value_offset) for k in vlr.geo_keys if int(k.tiff_tag_location) == 0}
    return {}


def wkt_text(vlrs: list[Any]) -> str | None:
    for vlr in vlrs:
        if type(vlr).__name__ == "WktCoordinateSystemVlr":
            text = str(vlr.string).strip("\x00 \n")
            return text or None
    return None


def _keys_ref(keys: dict[int, int]) -> tuple[CrsRef | None, str]:
    model = keys.get(GT_MODEL_TYPE)
    code = keys.get(PROJECTED_CS_TYPE) if model in (1, None) else None
    if code is None or code in (0, USER_DEFINED):
        code = keys.get(GEOGRAPHIC_TYPE) if model in (2, 3, None) else code
    if model == 3 and code in (None, 0, USER_DEFINED):
        code = 4978
    if code in (None, 0, USER_DEFINED):
        return None, "user-defined" if keys else "none"
    vertical = keys.get(VERTICAL_CS_TYPE)
    text = f"EPSG:{code}" + (f"+{vertical}" if vertical not in (None, 0, USER_DEFINED) else "")
    try:
        return parse_crs(text), text
    except CrsUnknownError:
        return parse_crs(f"EPSG:{code}"), f"EPSG:{code}"


def read_georef(vlrs: list[Any], near_xy: tuple[float, float]) -> Georef:
    """The CRS a LAS file declares, from its VLRs; ``near_xy`` is a point of the data (the
    header's bbox centre), used to identify a WKT without an EPSG code."""
    keys = geo_keys(vlrs)
    wkt = wkt_text(vlrs)
    notes: list[str] = []
    warnings: list[str] = []
    keys_ref, keys_text = _keys_ref(keys)
    ref, source = None, "none"
    if wkt:
        try:
            ref, source = parse_crs(wkt), "WKT VLR"
        except CrsUnknownError:
            ref, source = identify_crs(wkt, near_xy), "WKT VLR"
            notes.append(f"the WKT CRS has no EPSG code; its definition equals {ref} ({ref.name})")
        if keys_ref is not None and keys_ref.horizontal != ref.horizontal:
            units = LINEAR_UNITS.get(keys.get(PROJ_LINEAR_UNITS, 0), ("", 0))[0]
            warnings.append(f"the GeoTIFF keys say {keys_text}{' in ' + units if units else ''} but the WKT says {ref}; "
                         "using the WKT (LAS 1.4 makes it authoritative)")
    elif keys_ref is not None:
        ref, source = keys_ref, "GeoTIFF keys"
        units = keys.get(PROJ_LINEAR_UNITS)
        if units in LINEAR_UNITS and ref is not None and not ref.is_geographic:
            declared = LINEAR_UNITS[units][1]
            actual = unit_factor(ref.horizontal)[1]
            if abs(declared - actual) > 1e-9:
                raise CrsError(f"the GeoTIFF keys say {ref} but also ProjLinearUnits {LINEAR_UNITS[units][0]}, "
                               f"while {ref} is in {unit_factor(ref.horizontal)[0]}: the keys contradict each other; "
                               "give the CRS with --crs", crs=str(ref))
    elif keys:
        raise CrsUnknownError("the file's GeoTIFF keys define a user-defined CRS without a WKT; give the CRS with "
                              "--crs EPSG:N", keys={str(k): v for k, v in keys.items()})
    vertical_units = keys.get(VERTICAL_UNITS)
    z_factor, note = z_factor_for(ref, vertical_units)
    if note:
        notes.append(note)
    return Georef(ref, z_factor, source, notes, vertical_units, warnings)


def las_frame(georef: Georef, user: Frame | None, file_name: str) -> tuple[Frame, str]:
    """The frame to place the points with, and a one-line description for the report."""
    if user is not None:
        if isinstance(user, CrsFrame):
            # LAS x is always easting/longitude, whatever the CRS's authority axis order
            z_factor, _ = z_factor_for(user.crs, georef.vertical_units)
            user = CrsFrame(user.crs, False, user.z_factor if user.z_factor is not None else z_factor)
        note = f"placed with the user's {user.describe()}"
        if georef.ref is not None:
            note += f" (the file says {georef.ref})"
        return user, note
    if georef.ref is None:
        raise CrsMissingError(f"{file_name} declares no CRS (no WKT or GeoTIFF keys VLR): give it with --crs EPSG:N",
                              file=file_name)
    frame = CrsFrame(georef.ref, False, georef.z_factor)
    return frame, f"{frame.describe()} from the {georef.source}"
