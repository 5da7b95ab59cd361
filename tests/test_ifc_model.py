"""What the IFC converter keeps: classes, spatial structure, property and quantity sets, colours,
and a footprint with a height range for each building."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyproj
import pytest
import shapely

import converters
from cim.placement import user_frame
from cim.feature import Feature
from cim.ingest import ingest
from cim.store import SqliteStore, open_store

GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def fzk(shared_data: Path) -> list[Feature]:
    return list(converters.open_input(shared_data / "ifc" / "AC20-FZK-Haus.ifc").features())


def test_classes_and_structure(fzk: list[Feature]) -> None:
    by_id = {f.id: f for f in fzk}
    classes = {f.city_class.value for f in fzk}
    assert {"Site", "Building", "Storey", "BuildingRoom", "Door", "Window", "BuildingConstructiveElement"} <= classes
    site = fzk[0]
    assert site.city_class.value == "Site" and site.parent is None
    seen: set[str] = set()
    for f in fzk:  # parents come before their children
        assert f.parent is None or f.parent in seen
        seen.add(f.id)
    wall = by_id["2XPyKWY018sA1ygZKgQPtU"]
    storey = by_id[wall.parent]  # type: ignore[index]
    assert storey.city_class.value == "Storey" and by_id[storey.parent].city_class.value == "Building"  # type: ignore[index]
    assert wall.source.original_class == "IfcWallStandardCase" and wall.attributes["ifc_class"] == "IfcWallStandardCase"
    assert wall.attributes["GlobalId"] == wall.id and wall.attributes["storey"] == storey.name
    assert wall.city_class.value == "BuildingConstructiveElement"


def test_property_and_quantity_sets_are_typed(fzk: list[Feature]) -> None:
    wall = next(f for f in fzk if f.id == "2XPyKWY018sA1ygZKgQPtU")
    assert wall.attributes["Pset_WallCommon.ThermalTransmittance"] == 1.5
    assert wall.attributes["ArchiCADProperties.Geschützt"] is False
    quantities = {k: v for k, v in wall.attributes.items() if k.startswith("Qto_") or k.startswith("BaseQuantities")}
    assert quantities and all(isinstance(v, (int, float)) for v in quantities.values()), quantities
    assert isinstance(wall.attributes["color"], str) and wall.attributes["color"].startswith("#")
    windows = [f for f in fzk if f.city_class.value == "Window"]
    assert windows and all(f.geometry for f in windows)
    assert all(int(f.geometry[3].surfaces[0]) == 11 for f in windows)  # SurfaceType.WINDOW


@pytest.fixture(scope="module")
def stores(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    s = open_store(tmp_path_factory.mktemp("ifcstore") / "city.gpkg")
    ingest(s, "fzk", [converters.open_input(shared_data / "ifc" / "AC20-FZK-Haus.ifc")])
    ingest(s, "duplex", [converters.open_input(shared_data / "ifc" / "Duplex_A_20110907_georeferenced.ifc")])
    ingest(s, "openhouse", [converters.open_input(shared_data / "ifc" / "IfcOpenHouse_IFC4.ifc",
                                                  converters.ConvertOptions(frame=user_frame(origin="108.25,16.05,5")))])
    yield s
    s.close()


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "min_m2", "max_m2"), [("fzk", 100, 250), ("duplex", 150, 600), ("openhouse", 30, 200)])
def test_each_building_has_a_footprint_and_height_range(stores: SqliteStore, dataset: str, min_m2: float, max_m2: float) -> None:
    rows = [r for r in stores.footprints(dataset=dataset) if r.city_class == "Building"]
    assert len(rows) == 1
    row = rows[0]
    area = abs(GEOD.geometry_area_perimeter(row.geometry)[0])
    assert min_m2 < area < max_m2, area
    assert row.height_min is not None and row.height_max is not None
    assert 4 < row.height_max - row.height_min < 20
    # the footprint covers the building's walls
    walls = [f for f in stores.iter_features(dataset, with_geometry=True) if f.attributes.get("ifc_class", "").startswith("IfcWall")]
    frame_spec = stores.get_dataset(dataset).frame
    from cim.crs import frame_from_spec
    frame = frame_from_spec(frame_spec)
    inside = 0
    for w in walls:
        c = frame.to_lonlat(w.geometry[w.best_lod()].vertices.mean(axis=0, keepdims=True))[0]  # type: ignore[index]
        inside += bool(row.geometry.buffer(1e-6).contains(shapely.Point(c[0], c[1])))
    assert walls and inside >= 0.9 * len(walls)
