"""Each IFC sample lands where its own georeferencing says.

The expected longitude/latitude of a known point (the centroid of one element's body) is derived
independently of the converter: the element's world coordinates come straight from the
ifcopenshell kernel in this process, the georeferencing numbers are those of
../shared/data/MANIFEST.tsv (map conversion eastings/northings/rotation, RefLatitude/RefLongitude),
and pyproj does the projection. The converter's result is read back from the store.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.geom
import numpy as np
import pyproj
import pytest

import converters
from cim.crs import frame_from_spec
from cim.placement import user_frame
from cim.errors import CrsMissingError
from cim.ingest import ingest
from cim.store import open_store

GEOD = pyproj.Geod(ellps="WGS84")
OPENHOUSE_ORIGIN = (108.25, 16.05, 5.0)


def _dms(d: float, m: float, s: float, millionths: float = 0.0) -> float:
    return d + m / 60 + (s + millionths / 1e6) / 3600


def _element_centroid(path: Path, global_id: str) -> np.ndarray:
    """World coordinates (metres, project engineering frame) of the element's body centroid."""
    model = ifcopenshell.open(str(path))
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    shape = ifcopenshell.geom.create_shape(settings, model.by_guid(global_id))
    verts = np.array(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)
    return verts.mean(axis=0)


def _map(p: np.ndarray, e: float, n: float, abscissa: float, ordinate: float, metres_to_map: float) -> tuple[float, float]:
    a, o = abscissa / math.hypot(abscissa, ordinate), ordinate / math.hypot(abscissa, ordinate)
    x, y = p[0] * metres_to_map, p[1] * metres_to_map
    return e + a * x - o * y, n + o * x + a * y


def _from_reference(lon: float, lat: float, p: np.ndarray, bearing_of_y: float) -> tuple[float, float]:
    """Walk from (lon, lat) by the local offset p (metres), the local +y axis at ``bearing_of_y``."""
    distance = math.hypot(p[0], p[1])
    azimuth = bearing_of_y + math.degrees(math.atan2(p[0], p[1]))
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, distance)
    return lon2, lat2


def expected_fzk(path: Path, p: np.ndarray) -> tuple[float, float]:
    # MANIFEST: RefLatitude (49,6,1,566000) RefLongitude (8,26,11,540400); the file's true north
    # is (0.766044443119, 0.642787609687): 40 deg counter-clockwise from +x, so +y is at bearing -50
    lat, lon = _dms(49, 6, 1, 566000), _dms(8, 26, 11, 540400)
    bearing = math.degrees(math.atan2(0.642787609687, 0.766044443119)) - 90
    return _from_reference(lon, lat, p, bearing)


def expected_duplex_chicago(path: Path, p: np.ndarray) -> tuple[float, float]:
    # MANIFEST: RefLat/RefLong (41,52,27,840000)/(-87,-38,-21,-839999); true north = +y
    lat, lon = _dms(41, 52, 27, 840000), _dms(-87, -38, -21, -839999)
    return _from_reference(lon, lat, p, 0.0)


def expected_duplex_luref(path: Path, p: np.ndarray) -> tuple[float, float]:
    # MANIFEST: ePSet_MapConversion E 76670, N 77179, XAxisAbscissa 0.3256, XAxisOrdinate 0.9455, Scale 1,
    # ePSet_ProjectedCRS EPSG:9897 (LUREF / Luxembourg TM = EPSG:2169 horizontally); project unit metre
    e, n = _map(p, 76670.0, 77179.0, 0.325568154457152, 0.945518575599318, 1.0)
    lon, lat = pyproj.Transformer.from_crs(2169, 4326, always_xy=True).transform(e, n)
    return lon, lat


def expected_utm(path: Path, p: np.ndarray) -> tuple[float, float]:
    # MANIFEST: E 458657.30 N 5438232.25, x axis (0.2706, 0.9627), EPSG:25832; project unit mm, so one
    # kernel metre is one map metre (Scale=1000 is the inverted unit factor)
    e, n = _map(p, 458657.30, 5438232.25, 0.270600445976, 0.962691746426, 1.0)
    lon, lat = pyproj.Transformer.from_crs(25832, 4326, always_xy=True).transform(e, n)
    return lon, lat


def expected_angle(path: Path, p: np.ndarray) -> tuple[float, float]:
    # MANIFEST: E 15000 N 0, x axis (0.866, -0.5), CRS without a name: the test names it EPSG:3857
    e, n = _map(p, 15000.0, 0.0, 0.866025403784439, -0.5, 1.0)
    lon, lat = pyproj.Transformer.from_crs(3857, 4326, always_xy=True).transform(e, n)
    return lon, lat


def expected_openhouse(path: Path, p: np.ndarray) -> tuple[float, float]:
    return _from_reference(OPENHOUSE_ORIGIN[0], OPENHOUSE_ORIGIN[1], p, 0.0)


# file, element GlobalId (a wall or the only element), placement given by the user, expected
CASES: list[tuple[str, str, dict[str, Any], Any]] = [
    ("AC20-FZK-Haus.ifc", "2XPyKWY018sA1ygZKgQPtU", {}, expected_fzk),
    ("duplex.ifc", "", {}, expected_duplex_chicago),
    ("Duplex_A_20110907_georeferenced.ifc", "", {}, expected_duplex_luref),
    ("geographic-referencing-utm.ifc", "0rBru4syGxGOZb$M8kVJuS", {}, expected_utm),
    ("geolocation-mapconversion-angle.ifc", "", {"crs": "EPSG:3857"}, expected_angle),
    ("IfcOpenHouse_IFC4.ifc", "", {"origin": ",".join(map(str, OPENHOUSE_ORIGIN))}, expected_openhouse),
]


def _pick_element(path: Path, global_id: str) -> str:
    if global_id:
        return global_id
    model = ifcopenshell.open(str(path))
    for cls in ("IfcWall", "IfcActuator", "IfcSlab"):
        for e in model.by_type(cls):
            if e.Representation is not None:
                return str(e.GlobalId)
    raise AssertionError("no element with a body")


@pytest.mark.slow
@pytest.mark.parametrize(("filename", "global_id", "placement", "expected"), CASES, ids=[c[0] for c in CASES])
def test_known_point_lands_within_a_metre(shared_data: Path, tmp_path: Path, filename: str, global_id: str,
                                         placement: dict[str, Any], expected: Any) -> None:
    path = shared_data / "ifc" / filename
    global_id = _pick_element(path, global_id)
    want_lon, want_lat = expected(path, _element_centroid(path, global_id))

    reading = converters.open_input(path, converters.ConvertOptions(frame=user_frame(**placement) if placement else None))
    store = open_store(tmp_path / "city.gpkg")
    try:
        ingest(store, "m", [reading])
        feature = next(f for f in store.iter_features("m", with_geometry=True) if f.id == global_id)
        frame = frame_from_spec(store.get_dataset("m").frame)
    finally:
        store.close()
    mesh = feature.geometry[feature.best_lod()]  # type: ignore[index]
    got_lon, got_lat = frame.to_lonlat(mesh.vertices.mean(axis=0, keepdims=True))[0][:2]
    _, _, distance = GEOD.inv(want_lon, want_lat, got_lon, got_lat)
    assert distance < 1.0, f"{filename}: {global_id} at {got_lon:.7f},{got_lat:.7f}, expected {want_lon:.7f},{want_lat:.7f}"
    assert reading.report.georeferencing


@pytest.mark.parametrize("filename", ["IfcOpenHouse_IFC4.ifc", "geolocation-mapconversion-angle.ifc"])
def test_models_with_nothing_to_place_them_are_refused(shared_data: Path, filename: str) -> None:
    reading = converters.open_input(shared_data / "ifc" / filename)
    with pytest.raises(CrsMissingError) as info:
        list(reading.features())
    assert "--origin" in info.value.message and filename in info.value.message


def test_georeferenced_duplex_uses_its_map_conversion_and_reports_the_conflict(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "ifc" / "Duplex_A_20110907_georeferenced.ifc")
    first = next(iter(reading.features()))
    assert first.city_class.value == "Site"
    assert reading.frame.spec()["horizontal"] == 2169 and reading.frame.spec()["vertical"] == 5774  # EPSG:9897
    geo = reading.report.georeferencing
    assert "ePSet_MapConversion" in geo and "conflict" in geo and "RefLatitude" in geo
    assert any("conflict" in w for w in reading.report.warnings)


def test_suspicious_scale_is_reported(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "ifc" / "geographic-referencing-utm.ifc")
    list(reading.features())
    assert any("Scale 1000" in w and "inverted" in w for w in reading.report.warnings)
    assert "agrees within" in reading.report.georeferencing  # RefLatitude of this file matches
