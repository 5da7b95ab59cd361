"""cim.crs: every srsName spelling, axis order, units, frames, plausibility."""
from __future__ import annotations

import numpy as np
import pytest

from cim import crs, placement
from cim.errors import CrsContradictionError, CrsUnknownError, PlacementError


@pytest.mark.parametrize("text, horizontal, vertical", [
    ("EPSG:25832", 25832, None),
    ("epsg:5899", 5899, None),
    ("5899", 5899, None),
    ("EPSG:25832+5783", 25832, 5783),
    ("urn:ogc:def:crs:EPSG::25832", 25832, None),
    ("urn:ogc:def:crs:EPSG:6.12:25833", 25833, None),
    ("urn:ogc:def:crs,crs:EPSG:6.12:25833,crs:EPSG:6.12:5783", 25833, 5783),
    ("urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783", 25832, 5783),
    ("http://www.opengis.net/def/crs/EPSG/0/3946", 3946, None),
    ("https://www.opengis.net/def/crs/EPSG/0/7415", 28992, 5709),  # compound code split in two
    ("http://www.opengis.net/def/crs-compound?1=http://www.opengis.net/def/crs/EPSG/0/25832"
     "&2=http://www.opengis.net/def/crs/EPSG/0/5783", 25832, 5783),
    ("urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH", 25832, 5783),
    ("http://www.opengis.net/def/crs/EPSG/0/32649", 32649, None),
])
def test_parse_every_spelling(text: str, horizontal: int, vertical: int | None) -> None:
    ref = crs.parse_crs(text)
    assert (ref.horizontal, ref.vertical) == (horizontal, vertical)


@pytest.mark.parametrize("text", ["", "EPSG:999999", "#local-CRS-1", "urn:adv:crs:NOPE", "not a crs at all"])
def test_unknown_crs_is_a_clear_error(text: str) -> None:
    with pytest.raises(CrsUnknownError) as info:
        crs.parse_crs(text)
    assert info.value.message


def test_local_reference_message_tells_what_to_do() -> None:
    with pytest.raises(CrsUnknownError, match="--origin"):
        crs.parse_crs("#local-CRS-1")


def test_geographic_urn_is_latitude_first() -> None:
    frame = crs.crs_frame("urn:ogc:def:crs:EPSG::4326")
    assert frame.lat_first
    lonlat = frame.to_lonlat(np.array([[16.07, 108.10, 5.0]]))  # lat, lon, h as GML writes it
    assert lonlat[0] == pytest.approx([108.10, 16.07, 5.0])


def test_projected_is_easting_first_and_lands_in_da_nang() -> None:
    frame = crs.crs_frame("EPSG:5899")
    assert not frame.lat_first
    ll = frame.to_lonlat(np.array([[536000.0, 1777000.0, 10.0]]))[0]
    assert 108.0 < ll[0] < 108.2 and 16.0 < ll[1] < 16.2


def test_vn2000_round_trip_against_utm49n() -> None:
    # the same point in VN-2000 TM-3 107-45 and in UTM 49N must land within a few metres (datum shift)
    a = crs.crs_frame("EPSG:5899").to_ecef(np.array([[536000.0, 1777000.0, 0.0]]))
    ll = crs.ecef_to_lonlat(a)[0]
    utm = crs.transform_geometry(__import__("shapely").Point(ll[0], ll[1]), 4326, 32649)
    b = crs.crs_frame("EPSG:32649").to_ecef(np.array([[utm.x, utm.y, ll[2]]]))
    assert np.linalg.norm(a - b) < 0.01


def test_vertical_feet_are_converted() -> None:
    frame = crs.crs_frame("EPSG:2994+6360")  # NAD83(HARN) Oregon Lambert (ft) + NAVD88 height (ftUS)
    assert frame.z_to_metres == pytest.approx(0.3048006096, rel=1e-6)


def test_ecef_matches_known_point() -> None:
    xyz = crs.lonlat_to_ecef(np.array([0.0]), np.array([0.0]), np.array([0.0]))[0]
    assert xyz == pytest.approx([6378137.0, 0.0, 0.0], abs=1e-6)


def test_enu_matrix_axes_are_orthonormal_and_up_is_radial() -> None:
    m = crs.enu_to_ecef_matrix(108.1, 16.07, 10.0)
    r = m[:3, :3]
    assert r.T @ r == pytest.approx(np.eye(3), abs=1e-12)
    up_point = crs.ecef_to_lonlat((m @ np.array([0, 0, 100.0, 1]))[:3])[0]
    assert up_point == pytest.approx([108.1, 16.07, 110.0], abs=1e-6)


def test_local_frame_rotation_is_a_compass_bearing() -> None:
    frame = crs.LocalFrame(108.1, 16.07, 0.0, rotation=90.0)
    origin, plus_y = frame.to_lonlat(np.array([[0, 0, 0], [0, 100.0, 0]]))
    assert plus_y[0] > origin[0] and plus_y[1] == pytest.approx(origin[1], abs=1e-6)  # +Y points east
    assert crs.frame_from_spec(frame.spec()) == frame


def test_frame_spec_round_trip() -> None:
    frame = crs.crs_frame("urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783")
    assert crs.frame_from_spec(frame.spec()) == frame


def test_user_frame_options() -> None:
    assert placement.user_frame() is None
    assert isinstance(placement.user_frame(origin="108.1,16.07,5"), crs.LocalFrame)
    with pytest.raises(PlacementError):
        placement.user_frame(crs="EPSG:5899", origin="108.1,16.07")
    with pytest.raises(PlacementError):
        placement.user_frame(rotation=10)
    with pytest.raises(PlacementError, match="LON,LAT"):
        placement.user_frame(origin="16.07")
    with pytest.raises(PlacementError):
        placement.user_frame(origin="200,16")


def test_coordinates_far_outside_the_crs_are_a_contradiction() -> None:
    frame = crs.crs_frame("EPSG:5899")
    with pytest.raises(CrsContradictionError, match="contradicts"):
        placement.check_plausible(frame, np.array([0.0, 0.0, 0.0]), np.array([100.0, 100.0, 10.0]))


def test_geographic_label_on_metres_is_a_contradiction() -> None:
    frame = crs.crs_frame("EPSG:4326")
    with pytest.raises(CrsContradictionError):
        placement.check_plausible(frame, np.array([536000.0, 1777000.0, 0]), np.array([536100.0, 1777100.0, 10]))


def test_plausible_data_gives_no_warning() -> None:
    frame = crs.crs_frame("EPSG:5899")
    assert placement.check_plausible(frame, np.array([536000.0, 1777000.0, 0]), np.array([536500.0, 1777500.0, 30])) == []
