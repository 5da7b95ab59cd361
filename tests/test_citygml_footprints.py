"""Footprints the CityGML reader builds from polygon rings are the footprints of the meshes
(``cim.footprint.footprint_from_meshes``, what ingestion derives for other formats)."""
from __future__ import annotations

from pathlib import Path

import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from cim.classes import CityClass, SurfaceType
from cim.feature import Feature
from cim.footprint import footprint_from_meshes
from converters import ConvertOptions
from converters.citygml.reader import CityGmlReading
from tests.test_citygml import SAMPLES, _options

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(SAMPLES.glob("*.gml")) + [REPO / "fixtures" / "danang_hitech_park_citygml2.gml",
                                          REPO / "fixtures" / "danang_hitech_park_citygml3.gml"]
PARTS = {CityClass.BUILDING: CityClass.BUILDING_PART, CityClass.BRIDGE: CityClass.BRIDGE_PART,
         CityClass.TUNNEL: CityClass.TUNNEL_PART}


def _mesh_footprint(top: Feature, features: list[Feature]) -> BaseGeometry | None:
    """The footprint as it was derived before, from the best-LOD meshes of the feature and its parts."""
    group = [top]
    part_class = PARTS.get(top.city_class)
    if part_class is not None:
        ids = {top.id}
        for f in features:
            if f.parent in ids and f.city_class == part_class:
                group.append(f)
                ids.add(f.id)
    meshes = [f.geometry[max(f.geometry)] for f in group if f.geometry]
    if not meshes:
        return None
    if len({bool((m.surfaces == SurfaceType.GROUND).any()) for m in meshes}) == 1:
        return footprint_from_meshes(meshes)
    shapes = [fp for fp in (footprint_from_meshes([m]) for m in meshes) if fp is not None]
    return shapely.union_all(shapes) if shapes else None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_footprints_from_rings_equal_mesh_footprints(path: Path) -> None:
    options = _options(path.name) if path.parent == SAMPLES else ConvertOptions()
    features = list(CityGmlReading(path, options).features())
    tops = [f for f in features if f.parent is None]
    assert tops
    checked = 0
    for top in tops:
        expected = _mesh_footprint(top, features)
        assert (top.footprint is None) == (expected is None), top.id
        if expected is None:
            continue
        got = top.footprint
        assert got.geom_type == "MultiPolygon" and got.is_valid, top.id
        assert got.area == pytest.approx(expected.area, rel=1e-6), top.id
        assert shapely.symmetric_difference(got, expected).area <= 1e-6 * expected.area, top.id
        checked += 1
    assert checked

