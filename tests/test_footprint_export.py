"""Footprint exports (GeoJSON, GeoPackage) from a store holding the Da Nang fixture (EPSG:5899):
through the library, the real `cim` CLI and the HTTP stack; read back with pyogrio and json, and
positions checked against the source coordinates of the fixture file."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyogrio
from pyogrio.raw import read as ogr_read
import pytest
import shapely
from lxml import etree
from shapely.geometry import Polygon, shape

from cim.crs import crs_frame
from cim.errors import CrsUnknownError, InvalidParameterError
from cim.export.footprints import FootprintQuery, parse_bbox, parse_int, select_footprints
from cim.export.output_crs import CRS84, output_crs
from cim.store import open_store
from server.app import create_app
from server.pipeline import import_files
from tests.test_server_fixtures import TestClient, settings_for

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "danang_hitech_park_citygml2.gml"
CIM = Path(sys.executable).with_name("cim")
DATASET = "dn"
BUILDING = "DNHTP_B000001"
GML = "{http://www.opengis.net/gml}"
BLDG = "{http://www.opengis.net/citygml/building/2.0}"
N_FOOTPRINTS, N_BUILDINGS = 295, 240  # 240 Building + 37 GenericCityObject + 18 Road top-level features


def source_ground_polygon(building_id: str) -> Polygon:
    """The GroundSurface of a building as written in the fixture (EPSG:5899 metres)."""
    for _, el in etree.iterparse(str(FIXTURE), tag=f"{BLDG}Building"):
        if el.get(f"{GML}id") == building_id:
            ground = el.find(f".//{BLDG}GroundSurface")
            assert ground is not None
            pos = [float(v) for v in ground.find(f".//{GML}posList").text.split()]  # type: ignore[union-attr]
            return Polygon([(pos[i], pos[i + 1]) for i in range(0, len(pos), 3)])
    raise AssertionError(f"{building_id} not in the fixture")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("footprints")
    store = open_store(data / "city.gpkg")
    try:
        import_files(store, DATASET, [FIXTURE])
    finally:
        store.close()
    return data


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(data_dir, data_dir / "no-cesium"))) as c:
        yield c


def read_layer(path: Path) -> list[dict[str, object]]:
    """Every feature of the file as GDAL reads it (pyogrio.read: no geopandas needed)."""
    meta, _, geometry, fields = ogr_read(path)
    names = list(meta["fields"])
    return [{"geometry": shapely.from_wkb(g), **{n: fields[i][k] for i, n in enumerate(names)}}
            for k, g in enumerate(geometry)]


def run(*args: str | Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CIM), "--data", str(data), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=300)


# --- library ---------------------------------------------------------------------------------

def test_output_crs_spellings() -> None:
    assert output_crs(None) == CRS84 and output_crs("http://www.opengis.net/def/crs/OGC/1.3/CRS84") == CRS84
    for text in ("EPSG:5899", "5899", "http://www.opengis.net/def/crs/EPSG/0/5899", "urn:ogc:def:crs:EPSG::5899"):
        c = output_crs(text)
        assert (c.epsg, c.lat_first, c.uri) == (5899, False, "http://www.opengis.net/def/crs/EPSG/0/5899")
    assert output_crs("EPSG:4326").lat_first and not output_crs("EPSG:4326", authority_axis_order=False).lat_first
    for bad in ("EPSG:999999", "nonsense", "EPSG:4979", "EPSG:5899+5773"):
        with pytest.raises(InvalidParameterError) as err:
            output_crs(bad)
        assert isinstance(err.value, CrsUnknownError)


def test_parameter_parsing() -> None:
    assert parse_bbox("108.0,16.0,108.2,16.1") == (108.0, 16.0, 108.2, 16.1)
    assert parse_bbox("1,2,0,3,4,9") == (1, 2, 3, 4)
    for bad in ("1,2,3", "a,b,c,d", "108.2,16,108.0,16.1", "nan,1,2,3"):
        with pytest.raises(InvalidParameterError):
            parse_bbox(bad)
    assert parse_int(None, "limit", 100, 1, 10) == 100
    for bad in ("0", "11", "x"):
        with pytest.raises(InvalidParameterError):
            parse_int(bad, "limit", 5, 1, 10)


def test_centroid_in_vn2000_matches_the_source_file(data_dir: Path) -> None:
    store = open_store(data_dir / "city.gpkg")
    try:
        page = select_footprints(store, FootprintQuery(crs=output_crs("EPSG:5899")))
    finally:
        store.close()
    assert page.number_matched == len(page.features) == N_FOOTPRINTS
    item = next(f for f in page.features if f.row.feature_id == BUILDING)
    expected = source_ground_polygon(BUILDING)
    assert item.geometry.centroid.distance(expected.centroid) < 0.01  # metres
    assert abs(item.geometry.area - expected.area) < 0.05
    assert item.row.name == "Tòa nhà văn phòng 1-1-1" and item.row.city_class == "Building"


def test_bbox_in_a_projected_crs_selects_the_same_as_lonlat(data_dir: Path) -> None:
    source = source_ground_polygon(BUILDING)
    x, y = source.centroid.x, source.centroid.y
    store = open_store(data_dir / "city.gpkg")
    try:
        projected = select_footprints(store, FootprintQuery(bbox=(x - 1, y - 1, x + 1, y + 1),
                                                            bbox_crs=output_crs("EPSG:5899")))
        ll = crs_frame("EPSG:5899").to_lonlat(__import__("numpy").array([[x, y, 0.0]]))[0]
        lonlat = select_footprints(store, FootprintQuery(bbox=(ll[0] - 1e-5, ll[1] - 1e-5, ll[0] + 1e-5, ll[1] + 1e-5)))
    finally:
        store.close()
    assert [f.row.feature_id for f in projected.features] == [f.row.feature_id for f in lonlat.features] == [BUILDING]


# --- CLI -------------------------------------------------------------------------------------

@pytest.mark.parametrize("crs", ["EPSG:5899", "EPSG:32649", "EPSG:4326"])
def test_cli_gpkg_opens_in_gdal(data_dir: Path, tmp_path: Path, crs: str) -> None:
    out = tmp_path / "fp.gpkg"
    r = run("export", "footprints", "--format", "gpkg", "--crs", crs, "--out", out, data=data_dir)
    assert r.returncode == 0, r.stderr
    assert f"{N_FOOTPRINTS} footprints" in r.stdout
    info = pyogrio.read_info(out)
    assert info["features"] == N_FOOTPRINTS and info["geometry_type"] == "MultiPolygon"
    assert info["crs"] == crs
    row = next(r for r in read_layer(out) if r["feature_id"] == BUILDING)
    assert row["class"] == "Building" and row["dataset"] == DATASET and row["function"] == "office"
    assert row["storeys_above_ground"] == 10 and abs(row["height_max"] - row["height_min"] - 37.2) < 0.01
    assert json.loads(row["attributes"])["tenant"] == "Công ty TNHH Tự động hóa Sơn Trà"
    centroid = row["geometry"].centroid  # type: ignore[attr-defined]
    expected = source_ground_polygon(BUILDING).centroid
    if crs == "EPSG:5899":
        assert centroid.distance(expected) < 0.01
    else:
        from cim.crs import transform_xy
        ex, ey = transform_xy([expected.x], [expected.y], 5899, int(crs.split(":")[1]))
        tol = 1e-7 if crs == "EPSG:4326" else 0.01
        assert abs(centroid.x - ex[0]) < tol and abs(centroid.y - ey[0]) < tol


def test_cli_geojson_with_bbox_and_class(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fp.geojson"
    r = run("export", "footprints", "--format", "geojson", "--crs", "EPSG:5899", "--class", "Building",
            "--bbox", "108.095,16.065,108.105,16.075", "--out", out, data=data_dir)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::5899"
    assert 0 < len(doc["features"]) < N_BUILDINGS
    assert {f["properties"]["class"] for f in doc["features"]} == {"Building"}
    assert pyogrio.read_info(out)["crs"] == "EPSG:5899"
    b = next(f for f in doc["features"] if f["properties"]["feature_id"] == BUILDING)
    assert shape(b["geometry"]).centroid.distance(source_ground_polygon(BUILDING).centroid) < 0.01


def test_cli_errors_leave_no_file(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fp.geojson"
    r = run("export", "footprints", "--format", "geojson", "--crs", "EPSG:999999", "--out", out, data=data_dir)
    assert r.returncode == 4 and "EPSG:999999" in r.stderr and "Traceback" not in r.stderr
    r = run("export", "footprints", "--format", "gpkg", "--bbox", "1,2,3", "--out", out, data=data_dir)
    assert r.returncode == 3 and "minx,miny,maxx,maxy" in r.stderr
    r = run("export", "footprints", "--format", "gpkg", "--dataset", "nowhere", "--out", out, data=data_dir)
    assert r.returncode == 5 and "nowhere" in r.stderr
    assert list(tmp_path.iterdir()) == []


# --- HTTP ------------------------------------------------------------------------------------

def test_collections(client: TestClient) -> None:
    body = client.get("/collections").json()
    assert [c["id"] for c in body["collections"]] == ["buildings", "footprints"]
    one = client.get("/collections/buildings").json()
    assert "http://www.opengis.net/def/crs/EPSG/0/5899" in one["crs"]
    assert any(link["rel"] == "items" for link in one["links"])
    assert client.get("/collections/nothing").status_code == 404


def test_items_paging_links(client: TestClient) -> None:
    r = client.get("/collections/buildings/items", params={"limit": 100})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = r.json()
    assert body["numberMatched"] == N_BUILDINGS and body["numberReturned"] == 100
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert "prev" not in rels
    seen = [f["id"] for f in body["features"]]
    while "next" in rels:
        body = client.get(rels["next"]).json()
        rels = {link["rel"]: link["href"] for link in body["links"]}
        assert "prev" in rels
        seen += [f["id"] for f in body["features"]]
    assert len(seen) == len(set(seen)) == N_BUILDINGS
    default = client.get("/collections/footprints/items").json()
    assert default["numberMatched"] == N_FOOTPRINTS and default["numberReturned"] == 100


def test_items_in_vn2000_and_lat_lon_axis_order(client: TestClient) -> None:
    expected = source_ground_polygon(BUILDING).centroid
    r = client.get("/collections/buildings/items", params={"crs": "http://www.opengis.net/def/crs/EPSG/0/5899",
                                                           "bbox": "108.0,16.0,108.2,16.2", "limit": 10})
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/5899>"
    feature = next(f for f in r.json()["features"] if f["properties"]["feature_id"] == BUILDING)
    assert shape(feature["geometry"]).centroid.distance(expected) < 0.01
    crs84 = client.get(f"/collections/buildings/items/{DATASET}:{BUILDING}").json()
    latlon = client.get(f"/collections/buildings/items/{DATASET}:{BUILDING}", params={"crs": "EPSG:4326"}).json()
    lon, lat = shape(crs84["geometry"]).centroid.coords[0]
    assert 108.0 < lon < 108.2 and 16.0 < lat < 16.1
    assert shape(latlon["geometry"]).centroid.coords[0] == pytest.approx((lat, lon), abs=1e-7)
    # bbox in lat/lon order when bbox-crs is EPSG:4326
    r = client.get("/collections/buildings/items", params={"bbox": f"{lat - 1e-5},{lon - 1e-5},{lat + 1e-5},{lon + 1e-5}",
                                                           "bbox-crs": "EPSG:4326"})
    assert [f["properties"]["feature_id"] for f in r.json()["features"]] == [BUILDING]


@pytest.mark.parametrize("params, word", [
    ({"bbox": "1,2,3"}, "bbox"), ({"crs": "EPSG:999999"}, "crs"), ({"limit": "0"}, "limit"),
    ({"limit": "10001"}, "limit"), ({"offset": "-1"}, "offset"), ({"bbox-crs": "EPSG:5899"}, "bbox"),
])
def test_bad_parameters_are_400(client: TestClient, params: dict[str, str], word: str) -> None:
    r = client.get("/collections/buildings/items", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_parameter" and word in body["message"]


def test_item_not_found(client: TestClient) -> None:
    assert client.get(f"/collections/buildings/items/{DATASET}:nope").status_code == 404
    assert client.get("/collections/buildings/items/nodataset:x").status_code == 404
    assert client.get(f"/collections/buildings/items/{BUILDING}").status_code == 404


def test_download_gpkg(client: TestClient, tmp_path: Path) -> None:
    r = client.get("/api/footprints", params={"format": "gpkg", "crs": "EPSG:32649", "bbox": "108.095,16.065,108.105,16.075"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geopackage+sqlite3"
    assert 'attachment; filename="footprints-epsg32649.gpkg"' in r.headers["content-disposition"]
    path = tmp_path / "dl.gpkg"
    path.write_bytes(r.content)
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:32649" and 0 < info["features"] < N_FOOTPRINTS
    geojson = client.get("/api/footprints", params={"bbox": "108.095,16.065,108.105,16.075"}).json()
    assert geojson["numberMatched"] == info["features"] == len(geojson["features"])
    rows = read_layer(path)
    assert sorted(r["feature_id"] for r in rows) == sorted(f["properties"]["feature_id"] for f in geojson["features"])
    assert min(r["geometry"].area for r in rows) > 10  # type: ignore[attr-defined]  # m²: real outlines
    assert client.get("/api/footprints", params={"format": "shp"}).status_code == 400
