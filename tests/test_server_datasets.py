"""/api/datasets, /healthz and /tiles/city/tileset.json: read back with the store and json."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import numpy as np

from cim.crs import lonlat_to_ecef
from cim.store import open_store
from server.app import create_app
from tests.test_server_fixtures import (STORE_DATASET, TestClient, city_data, client, fake_cesium, harness_tilesets,
                                        publish, settings_for)

__all__ = ["city_data", "client", "fake_cesium", "harness_tilesets"]

CITY = "/tiles/city/tileset.json"


def test_list_datasets_matches_the_store(client: TestClient, city_data: Path) -> None:
    r = client.get("/api/datasets")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    store = open_store(city_data / "city.gpkg")
    try:
        infos = store.list_datasets()
    finally:
        store.close()
    assert [d["name"] for d in body["datasets"]] == [i.name for i in infos] == [STORE_DATASET]
    d, info = body["datasets"][0], infos[0]
    assert d["feature_count"] == info.feature_count == 20
    assert d["class_counts"] == info.class_counts == {"Building": 20}
    assert d["bbox"] == list(info.bbox)  # type: ignore[arg-type]
    west, south, east, north = d["bbox"]
    assert 107.5 < west < east < 108.5 and 15.5 < south < north < 16.5  # Da Nang
    assert d["height_range"] == list(info.height_range)  # type: ignore[arg-type]
    assert d["frame"] == info.frame and d["sources"] == info.sources == ["fake.gml"]
    assert d["report"] == info.report and d["updated"] == info.updated != ""
    assert d["tileset"] == f"/tiles/{STORE_DATASET}/tileset.json"
    assert d["tileset_version"] == "v1"
    tileset = client.get(d["tileset"])
    assert tileset.status_code == 200 and tileset.json()["asset"]["version"] in ("1.0", "1.1")


def test_one_dataset_and_unknown_ones(client: TestClient) -> None:
    one = client.get(f"/api/datasets/{STORE_DATASET}")
    assert one.status_code == 200 and one.json() == client.get("/api/datasets").json()["datasets"][0]
    missing = client.get("/api/datasets/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "dataset_not_found", "message": "no dataset named 'nowhere'",
                              "dataset": "nowhere"}
    bad = client.get("/api/datasets/..")
    assert bad.status_code in (400, 404) and bad.json()["error"] in ("invalid_input", "not_found")


def test_unpublished_dataset_has_no_tileset_url(city_data: Path, fake_cesium: Path) -> None:
    shutil.rmtree(city_data / "tiles" / STORE_DATASET)
    with TestClient(create_app(settings_for(city_data, fake_cesium))) as c:
        d = c.get(f"/api/datasets/{STORE_DATASET}").json()
        assert d["tileset"] is None and d["tileset_version"] is None and d["feature_count"] == 20


def test_healthz(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["datasets"] == 1
    assert isinstance(body["version"], str) and body["version"]


def test_missing_store_is_created_at_startup(tmp_path: Path, fake_cesium: Path) -> None:
    data = tmp_path / "new-city"
    app = create_app(settings_for(data, fake_cesium))
    assert not data.exists()  # nothing happens before startup
    with TestClient(app) as c:
        assert (data / "city.gpkg").is_file()
        assert c.get("/api/datasets").json() == {"datasets": []}
        assert c.get("/healthz").json()["datasets"] == 0


# --- the city tileset --------------------------------------------------------------------------

def _region_contains(region: list[float], points_ecef: Any) -> bool:
    west, south, east, north, low, high = region
    lon = np.arctan2(points_ecef[:, 1], points_ecef[:, 0])
    p = np.hypot(points_ecef[:, 0], points_ecef[:, 1])
    lat = np.arctan2(points_ecef[:, 2], p * (1 - 6.69437999014e-3))  # geodetic, close enough near the surface
    return bool(np.all((lon >= west - 1e-7) & (lon <= east + 1e-7) & (lat >= south - 1e-7) & (lat <= north + 1e-7)))


def test_city_tileset_has_every_published_dataset(client: TestClient) -> None:
    r = client.get(CITY)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-cache"
    city = r.json()
    assert city["asset"]["version"] == "1.1"
    children = city["root"]["children"]
    names = sorted(c["content"]["uri"].split("/")[1] for c in children)
    assert names == ["buildings", "cloud", "district", "legacy"]  # not 'unpublished' (no CURRENT)
    for child in children:
        assert child["content"]["uri"].startswith("../") and child["geometricError"] <= city["root"]["geometricError"]
        url = urljoin("http://testserver" + CITY, child["content"]["uri"])
        sub = client.get(url)
        assert sub.status_code == 200, url
        root = sub.json()["root"]
        if "transform" in root and "box" in root["boundingVolume"]:  # the child volume holds the dataset
            m = np.array(root["transform"], float).reshape(4, 4).T
            centre = m[:3, :3] @ np.array(root["boundingVolume"]["box"][:3]) + m[:3, 3]
            assert _region_contains(child["boundingVolume"]["region"], centre[None, :])


def test_city_etag_changes_with_a_new_version_only(client: TestClient, city_data: Path,
                                                   harness_tilesets: dict[str, Path]) -> None:
    first = client.get(CITY)
    etag = first.headers["etag"]
    assert client.get(CITY, headers={"If-None-Match": etag}).status_code == 304
    publish(city_data / "tiles", "buildings", "v2", harness_tilesets["glb2"])
    second = client.get(CITY, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["etag"] != etag
    publish(city_data / "tiles", "another", "v1", harness_tilesets["glb2"])
    third = client.get(CITY).json()
    assert len(third["root"]["children"]) == len(first.json()["root"]["children"]) + 1


def test_city_leaves_out_a_broken_dataset(client: TestClient, city_data: Path) -> None:
    (city_data / "tiles" / "legacy" / "v1" / "tileset.json").write_text("{not json", encoding="utf-8")
    city = client.get(CITY).json()
    names = sorted(c["content"]["uri"].split("/")[1] for c in city["root"]["children"])
    assert names == ["buildings", "cloud", "district"]


def test_empty_city_is_a_valid_empty_tileset(tmp_path: Path, fake_cesium: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path / "empty", fake_cesium))) as c:
        r = c.get(CITY)
        assert r.status_code == 200
        city = json.loads(r.content)
        assert city["asset"]["version"] == "1.1" and "children" not in city["root"]
        assert city["root"]["boundingVolume"] and city["root"]["geometricError"] == 0


def test_city_bounds_hold_the_store_dataset(client: TestClient, city_data: Path) -> None:
    city = client.get(CITY).json()
    child = next(c for c in city["root"]["children"] if c["content"]["uri"] == f"../{STORE_DATASET}/tileset.json")
    info = client.get(f"/api/datasets/{STORE_DATASET}").json()
    west, south, east, north = info["bbox"]
    centre = lonlat_to_ecef(np.array([(west + east) / 2]), np.array([(south + north) / 2]), np.array([0.0]))
    assert _region_contains(child["boundingVolume"]["region"], centre)
    assert _region_contains(city["root"]["boundingVolume"]["region"], centre)
