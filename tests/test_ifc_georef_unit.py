"""The placement rules of converters/ifc/georef.py on hand-made georeferencing facts (no file)."""
from __future__ import annotations

import numpy as np
import pytest

from cim.conversion import ConversionReport
from cim.crs import CrsFrame, LocalFrame
from cim.placement import user_frame
from cim.errors import CrsMissingError
from converters.ifc.georef import Georeferencing, MapConversion, SiteReference, choose_placement, unit_factor


def _mc(scale: float | None = None, name: str = "EPSG:25832", factors: tuple[float, float, float] = (1.0, 1.0, 1.0),
        ) -> MapConversion:
    return MapConversion(458000.0, 5438000.0, 100.0, 0.0, 1.0, scale, name, 1.0, "IfcMapConversion", factors)


def test_rotation_scale_and_axis_factors() -> None:
    # x axis points north (abscissa 0, ordinate 1): project +x -> +N; millimetre project, Scale 0.001
    geo = Georeferencing(0.001, _mc(0.001, factors=(2.0, 1.0, 1.0)), None)
    p = choose_placement(geo, None, ConversionReport(), "t.ifc")
    assert isinstance(p.frame, CrsFrame)
    # kernel coordinates are metres: 1 m along x, FactorX 2 -> 2 m north of the false origin
    np.testing.assert_allclose(p.apply(np.array([[1.0, 0.0, 1.0]])), [[458000.0, 5438002.0, 101.0]])
    np.testing.assert_allclose(p.apply(np.array([[0.0, 1.0, 0.0]])), [[457999.0, 5438000.0, 100.0]])


@pytest.mark.parametrize(("scale", "factor", "reported"), [(0.001, 0.001, False), (1.0, 0.001, True),
                                                           (1000.0, 0.001, True), (None, 0.001, True)])
def test_scale_readings_for_a_millimetre_project(scale: float | None, factor: float, reported: bool) -> None:
    got, note = unit_factor(_mc(scale), 0.001, 1.0)
    assert got == pytest.approx(factor) and (note is not None) == reported


def test_user_origin_overrides_and_is_reported() -> None:
    report = ConversionReport()
    site = SiteReference(49.0, 8.0, 100.0, (0.0, 0.0, 0.0), (0.0, 1.0))
    p = choose_placement(Georeferencing(1.0, _mc(), site), user_frame(origin="108.25,16.05,5"), report, "t.ifc")
    assert isinstance(p.frame, LocalFrame) and p.frame.lon == 108.25
    assert any("overrides" in w for w in report.warnings)


def test_empty_crs_name_without_site_is_refused_and_user_crs_applies_the_map_conversion() -> None:
    geo = Georeferencing(1.0, _mc(name=""), None)
    with pytest.raises(CrsMissingError, match="empty name"):
        choose_placement(geo, None, ConversionReport(), "t.ifc")
    p = choose_placement(geo, user_frame(crs="EPSG:32632"), ConversionReport(), "t.ifc")
    assert p.frame.spec()["horizontal"] == 32632
    np.testing.assert_allclose(p.apply(np.zeros((1, 3))), [[458000.0, 5438000.0, 100.0]])


def test_true_north_gives_the_bearing_of_project_y() -> None:
    # north along project +x: +y points west, bearing -90
    site = SiteReference(49.0, 8.0, 110.0, (5.0, 0.0, 0.0), (1.0, 0.0))
    p = choose_placement(Georeferencing(1.0, None, site), None, ConversionReport(), "t.ifc")
    assert isinstance(p.frame, LocalFrame) and p.frame.rotation == pytest.approx(-90.0)
    np.testing.assert_allclose(p.apply(np.array([[5.0, 0.0, 0.0]])), [[0.0, 0.0, 0.0]])  # site origin
