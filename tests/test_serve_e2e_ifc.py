"""The issue's end-to-end check against a real ``cim serve`` process: upload
``AC20-FZK-Haus.ifc`` with a write token, poll the job to done, then real CesiumJS (view-tileset)
on the city tileset shows the new building's elements; the same upload without a token is
refused; footprints come back as GeoJSON in EPSG:5899 and as a GeoPackage that GDAL opens."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ifcopenshell
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from tests.job_helpers import WRITE_AUTH
from tests.test_serve_e2e import Served, _staged, _upload, _wait, running_server
from tests.test_tiling_judges import assert_clean, check_tileset, view_tileset

pytestmark = [pytest.mark.slow, pytest.mark.browser]

#: the FZK-Haus stands in Karlsruhe (IfcSite RefLatitude/RefLongitude, MANIFEST.tsv)
KARLSRUHE_BBOX = "8.42,49.09,8.45,49.11"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_server(tmp_path_factory.mktemp("e2e-ifc") / "city-data") as server:
        yield server


@pytest.fixture(scope="module")
def fzk_haus(served: Served, shared_data: Path) -> dict:
    ifc = shared_data / "ifc" / "AC20-FZK-Haus.ifc"
    refused = _upload(served, ifc, {}, dataset="fzk-haus")
    assert refused.status_code == 401
    assert _staged(served) == [] and served.http.get("/api/jobs").json()["jobs"] == []
    r = _upload(served, ifc, WRITE_AUTH, dataset="fzk-haus")
    assert r.status_code == 202, r.text
    job = _wait(served, r.json()["id"])
    assert job["state"] == "done", job
    return job


def test_ifc_upload_is_published_into_the_city(served: Served, fzk_haus: dict, shared_tools: Path,
                                               shared_data: Path, tmp_path: Path) -> None:
    model = ifcopenshell.open(str(shared_data / "ifc" / "AC20-FZK-Haus.ifc"))
    # every product but voids, 2D annotations and virtual boundaries becomes a feature
    products = [p for p in model.by_type("IfcProduct")
                if not p.is_a("IfcOpeningElement") and not p.is_a("IfcAnnotation") and not p.is_a("IfcVirtualElement")]
    assert fzk_haus["report"]["feature_count"] == len(products) == 93
    assert fzk_haus["report"]["class_counts"]["Building"] == 1
    city = served.http.get("/tiles/city/tileset.json").json()
    assert [c["content"]["uri"] for c in city["root"]["children"]] == ["../fzk-haus/tileset.json"]
    assert_clean(check_tileset(shared_tools, f"{served.url}/tiles/city/tileset.json", tmp_path / "check.json"))  # type: ignore[arg-type]
    report = view_tileset(shared_tools, f"{served.url}/tiles/city/tileset.json", tmp_path / "view.json",  # type: ignore[arg-type]
                          tmp_path / "shot.png")
    assert report["ok"], report["problems"]
    assert report["tileErrors"] == [] and report["tiles"]["failed"] == 0
    assert report["content"]["featuresLoaded"] > 50
    picked = report["pick"]["properties"]
    assert picked["source_dataset"] == "fzk-haus"
    assert picked["source_class"].startswith("Ifc") and len(picked["GlobalId"]) == 22


def test_ifc_footprints_export_in_vn2000_and_geopackage(served: Served, fzk_haus: dict, tmp_path: Path) -> None:
    def building(crs: str | None) -> dict:
        params = {"bbox": KARLSRUHE_BBOX, **({"crs": crs} if crs else {})}
        r = served.http.get("/collections/buildings/items", params=params)
        assert r.status_code == 200, r.text
        found = [f for f in r.json()["features"] if f["properties"]["class"] == "Building"]
        assert len(found) == 1 and found[0]["properties"]["dataset"] == "fzk-haus", found
        return found[0]

    lonlat = shapely.geometry.shape(building(None)["geometry"])
    # the house stands at its IfcSite reference point: 49°6'1.566"N 8°26'11.5404"E
    assert lonlat.distance(shapely.Point(8 + 26 / 60 + 11.5404 / 3600, 49 + 6 / 60 + 1.566 / 3600)) < 3e-4
    vn2000 = shapely.geometry.shape(building("http://www.opengis.net/def/crs/EPSG/0/5899")["geometry"])
    to_5899 = Transformer.from_crs("EPSG:4326", "EPSG:5899", always_xy=True)
    expected = shapely.transform(lonlat, lambda xy: np.column_stack(to_5899.transform(xy[:, 0], xy[:, 1])))
    assert vn2000.equals_exact(expected, tolerance=0.01)

    gpkg = served.http.get("/api/footprints", params={"format": "gpkg", "bbox": KARLSRUHE_BBOX, "crs": "EPSG:5899"})
    assert gpkg.status_code == 200 and gpkg.content[:16] == b"SQLite format 3\x00"
    out = tmp_path / "fzk.gpkg"
    out.write_bytes(gpkg.content)
    info = pyogrio.read_info(out)
    assert info["crs"] == "EPSG:5899" and info["features"] >= 1
    meta, _, geometry, fields = pyogrio.raw.read(out)
    classes = list(fields[list(meta["fields"]).index("class")])
    polygon = shapely.from_wkb(geometry[classes.index("Building")])
    assert polygon.equals_exact(expected, tolerance=0.01)


def test_unreferenced_ifc_needs_a_placement_given_with_the_upload(served: Served, shared_data: Path) -> None:
    house = shared_data / "ifc" / "IfcOpenHouse_IFC4.ifc"  # no map conversion, no RefLatitude
    failed = _wait(served, _upload(served, house, WRITE_AUTH, dataset="openhouse").json()["id"])
    assert failed["state"] == "failed" and failed["error"]["error"] == "crs_missing", failed
    assert "--origin" in failed["error"]["message"] or "origin" in failed["error"]["message"]
    assert served.http.get("/api/datasets/openhouse").status_code == 404
    placed = _wait(served, _upload(served, house, WRITE_AUTH, dataset="openhouse",
                                   origin="108.25,16.05,5", rotation="30").json()["id"])
    assert placed["state"] == "done", placed
    west, south, east, north = served.http.get("/api/datasets/openhouse").json()["bbox"]
    assert 108.2495 < west < east < 108.2505 and 16.0495 < south < north < 16.0505
