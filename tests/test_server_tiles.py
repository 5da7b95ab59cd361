"""/tiles/{dataset}/{path}: media types, ETag/304, gzip, Cache-Control, HEAD, CORS, path
traversal, errors, version switches and the cache. Bodies are read back with real parsers."""
from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.tiles import CONTENT_CACHE_CONTROL, JSON_CACHE_CONTROL, TileCache, TileFile
from tests.test_server_fixtures import (TestClient, city_data, client, fake_cesium, harness_tilesets, publish,
                                        settings_for)

__all__ = ["city_data", "client", "fake_cesium", "harness_tilesets"]

ORIGIN = "http://viewer.example.org"


def _glb_header(body: bytes) -> tuple[bytes, int, int, dict[str, Any]]:
    magic, version, length = struct.unpack_from("<4sII", body, 0)
    chunk_length, chunk_type = struct.unpack_from("<I4s", body, 12)
    assert chunk_type == b"JSON"
    return magic, version, length, json.loads(body[20:20 + chunk_length])


def _raw(client: TestClient, url: str, **headers: str) -> tuple[Any, bytes]:
    """The response and its body exactly as sent (not decoded by httpx)."""
    with client.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def _content_uris(tile: dict[str, Any]) -> list[str]:
    uris = [tile["content"]["uri"]] if "content" in tile else []
    for child in tile.get("children", []):
        uris += _content_uris(child)
    return uris


# --- media types and bodies --------------------------------------------------------------------

def test_tileset_json_and_glb_content(client: TestClient, city_data: Path) -> None:
    r = client.get("/tiles/buildings/tileset.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    tileset = r.json()
    assert tileset["asset"]["version"] == "1.1"
    uris = _content_uris(tileset["root"])
    assert len(uris) == 4 and all(u.endswith(".glb") for u in uris)
    g = client.get(f"/tiles/buildings/{uris[0]}")
    assert g.status_code == 200 and g.headers["content-type"] == "model/gltf-binary"
    magic, version, length, gltf = _glb_header(g.content)
    assert (magic, version, length) == (b"glTF", 2, len(g.content))
    assert "EXT_structural_metadata" in gltf["extensionsUsed"]
    assert g.content == (city_data / "tiles" / "buildings" / "v1" / uris[0]).read_bytes()


@pytest.mark.parametrize("dataset, magic", [("legacy", b"b3dm"), ("cloud", b"pnts")])
def test_3d_tiles_1_0_content_is_octet_stream(client: TestClient, dataset: str, magic: bytes) -> None:
    uri = _content_uris(client.get(f"/tiles/{dataset}/tileset.json").json()["root"])[0]
    r = client.get(f"/tiles/{dataset}/{uri}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.content[:4] == magic and struct.unpack_from("<I", r.content, 8)[0] == len(r.content)


def test_real_tiler_output_is_served(client: TestClient) -> None:
    tileset = client.get("/tiles/district/tileset.json").json()
    for uri in _content_uris(tileset["root"]):
        r = client.get(f"/tiles/district/{uri}")
        assert r.status_code == 200, uri
        if uri.endswith(".glb"):
            assert _glb_header(r.content)[:3] == (b"glTF", 2, len(r.content))


# --- validators, caching headers, gzip, HEAD ---------------------------------------------------

@pytest.mark.parametrize("path, cache_control", [("tileset.json", JSON_CACHE_CONTROL),
                                                 ("buildings_0.glb", CONTENT_CACHE_CONTROL)])
def test_etag_and_304(client: TestClient, path: str, cache_control: str) -> None:
    url = f"/tiles/buildings/{path}"
    r = client.get(url, headers={"Accept-Encoding": "identity"})
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert r.headers["cache-control"] == cache_control
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(url, headers={"If-None-Match": sent, "Accept-Encoding": "identity"})
        assert again.status_code == 304 and again.content == b"", sent
        assert again.headers["etag"] == etag and again.headers["cache-control"] == cache_control
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_gzip_when_accepted_for_json(client: TestClient, city_data: Path) -> None:
    on_disk = (city_data / "tiles" / "buildings" / "v1" / "tileset.json").read_bytes()
    r, raw = _raw(client, "/tiles/buildings/tileset.json", **{"Accept-Encoding": "gzip, deflate"})
    assert r.headers["content-encoding"] == "gzip" and "Accept-Encoding" in r.headers["vary"]
    assert int(r.headers["content-length"]) == len(raw) < len(on_disk)
    assert gzip.decompress(raw) == on_disk
    plain = client.get("/tiles/buildings/tileset.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == on_disk
    assert "Accept-Encoding" in plain.headers["vary"]
    assert plain.headers["etag"] != r.headers["etag"]  # two representations, two strong ETags
    refused = client.get("/tiles/buildings/tileset.json", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_binary_content_is_gzipped_only_when_it_saves_ten_percent(client: TestClient, city_data: Path) -> None:
    folder = city_data / "tiles" / "buildings" / "v1"
    (folder / "noise.glb").write_bytes(os.urandom(20000))
    r, raw = _raw(client, "/tiles/buildings/noise.glb", **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers and raw == (folder / "noise.glb").read_bytes()
    (folder / "zeros.b3dm").write_bytes(b"b3dm" + bytes(20000))
    r, raw = _raw(client, "/tiles/buildings/zeros.b3dm", **{"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == (folder / "zeros.b3dm").read_bytes()


def test_head_has_the_headers_of_get_and_no_body(client: TestClient) -> None:
    for accept in ("gzip", "identity"):
        get, raw = _raw(client, "/tiles/buildings/buildings_1.glb", **{"Accept-Encoding": accept})
        head = client.head("/tiles/buildings/buildings_1.glb", headers={"Accept-Encoding": accept})
        assert head.status_code == 200 and head.content == b""
        for name in ("content-type", "content-length", "etag", "cache-control", "vary"):
            assert head.headers[name] == get.headers[name], name
        assert int(head.headers["content-length"]) == len(raw)


# --- CORS --------------------------------------------------------------------------------------

def test_cors_on_200_304_404_and_preflight(client: TestClient) -> None:
    ok = client.get("/tiles/buildings/tileset.json", headers={"Origin": ORIGIN})
    assert ok.headers["access-control-allow-origin"] == "*"
    assert "etag" in ok.headers["access-control-expose-headers"].lower()
    not_modified = client.get("/tiles/buildings/tileset.json", headers={"Origin": ORIGIN,
                                                                       "If-None-Match": ok.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.headers["access-control-allow-origin"] == "*"
    missing = client.get("/tiles/nowhere/tileset.json", headers={"Origin": ORIGIN})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == "*"
    preflight = client.options("/tiles/buildings/buildings_0.glb", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()


def test_cors_with_a_list_of_origins(city_data: Path, fake_cesium: Path) -> None:
    settings = settings_for(city_data, fake_cesium, cors_origins=("http://gis.example", ORIGIN))
    with TestClient(create_app(settings)) as c:
        allowed = c.get("/tiles/buildings/tileset.json", headers={"Origin": ORIGIN})
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        other = c.get("/tiles/buildings/tileset.json", headers={"Origin": "http://evil.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        refused = c.options("/tiles/buildings/tileset.json", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
        assert refused.status_code == 400


# --- path traversal and errors -----------------------------------------------------------------

TRAVERSALS = [
    "/tiles/buildings/..%2f..%2fcity.gpkg", "/tiles/buildings/%2e%2e/%2e%2e/city.gpkg",
    "/tiles/buildings/.%2e/CURRENT", "/tiles/buildings/..%2fCURRENT", "/tiles/buildings/%2fetc%2fpasswd",
    "/tiles/buildings//etc/passwd", "/tiles/buildings/..%5c..%5ccity.gpkg", "/tiles/buildings/tileset.json%00.glb",
    "/tiles/..%2f..%2fcity.gpkg/x", "/tiles/%2e%2e/city.gpkg", "/tiles/buildings/v1/../../secret.txt",
    "/tiles/buildings/.hidden", "/tiles/buildings/link-out.glb", "/tiles/buildings/CURRENT",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_path_traversal_never_serves_a_file_outside_the_version_folder(client: TestClient, city_data: Path,
                                                                       url: str) -> None:
    (city_data / "secret.txt").write_text("top secret", encoding="utf-8")
    (city_data / "tiles" / "buildings" / "v1" / ".hidden").write_text("top secret", encoding="utf-8")
    os.symlink(city_data / "secret.txt", city_data / "tiles" / "buildings" / "v1" / "link-out.glb")
    r = client.get(url)
    assert r.status_code in (400, 404), (url, r.status_code)
    body = r.json()
    assert body["error"] in ("invalid_input", "not_found", "dataset_not_found") and body["message"]
    assert b"top secret" not in r.content and b"SQLite" not in r.content


@pytest.mark.parametrize("url, status, code", [
    ("/tiles/nowhere/tileset.json", 404, "dataset_not_found"),
    ("/tiles/unpublished/tileset.json", 404, "tileset_not_found"),
    ("/tiles/buildings/missing.glb", 404, "not_found"),
    ("/tiles/buildings/", 404, "not_found"),
    ("/tiles/-bad-name/tileset.json", 400, "invalid_input"),
    ("/tiles/city/buildings_0.glb", 404, "not_found"),
])
def test_errors_are_json_with_a_code(client: TestClient, url: str, status: int, code: str) -> None:
    r = client.get(url)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]


def test_current_naming_a_bad_folder_is_404(client: TestClient, city_data: Path) -> None:
    current = city_data / "tiles" / "buildings" / "CURRENT"
    for text in ("v9\n", "../legacy/v1\n", "\n"):
        current.write_text(text, encoding="utf-8")
        r = client.get("/tiles/buildings/tileset.json")
        assert r.status_code == 404 and r.json()["error"] == "tileset_not_found", text


# --- versions and the cache --------------------------------------------------------------------

def test_switching_current_serves_the_new_version_at_once(client: TestClient, city_data: Path,
                                                          harness_tilesets: dict[str, Path]) -> None:
    tiles = city_data / "tiles"
    first = client.get("/tiles/buildings/buildings_0.glb")
    first_json = client.get("/tiles/buildings/tileset.json")
    assert first.content == (tiles / "buildings" / "v1" / "buildings_0.glb").read_bytes()
    publish(tiles, "buildings", "v2", harness_tilesets["glb2"])
    second = client.get("/tiles/buildings/buildings_0.glb")
    second_json = client.get("/tiles/buildings/tileset.json", headers={"If-None-Match": first_json.headers["etag"]})
    assert second.content == (tiles / "buildings" / "v2" / "buildings_0.glb").read_bytes() != first.content
    assert second.headers["etag"] != first.headers["etag"]
    assert second_json.status_code == 200  # the old ETag no longer matches
    assert second_json.json()["root"]["transform"] != first_json.json()["root"]["transform"]
    source = client.app.state.tiles  # type: ignore[attr-defined]
    assert all(key[1].startswith("v2@") for key in source.cache._entries if key[0] == "buildings")


def test_deleted_and_recreated_dataset_is_not_served_from_the_cache(client: TestClient, city_data: Path,
                                                                    harness_tilesets: dict[str, Path]) -> None:
    import shutil

    tiles = city_data / "tiles"
    before = client.get("/tiles/buildings/buildings_2.glb").content
    shutil.rmtree(tiles / "buildings")
    assert client.get("/tiles/buildings/buildings_2.glb").json()["error"] == "dataset_not_found"
    publish(tiles, "buildings", "v1", harness_tilesets["glb2"])  # the same version name, new content
    after = client.get("/tiles/buildings/buildings_2.glb").content
    assert after == (tiles / "buildings" / "v1" / "buildings_2.glb").read_bytes() != before


def test_files_over_the_entry_limit_are_streamed(city_data: Path, fake_cesium: Path) -> None:
    with TestClient(create_app(settings_for(city_data, fake_cesium, cache_bytes=4096))) as c:
        path = city_data / "tiles" / "buildings" / "v1" / "buildings_3.glb"
        r = c.get("/tiles/buildings/buildings_3.glb", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.content == path.read_bytes() and "content-encoding" not in r.headers
        assert r.headers["content-type"] == "model/gltf-binary" and r.headers["cache-control"] == CONTENT_CACHE_CONTROL
        again = c.get("/tiles/buildings/buildings_3.glb", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        head = c.head("/tiles/buildings/buildings_3.glb")
        assert head.content == b"" and int(head.headers["content-length"]) == path.stat().st_size
        assert len(c.app.state.tiles.cache) == 0  # type: ignore[attr-defined]


def test_cache_is_an_lru_within_its_budget() -> None:
    cache = TileCache(budget=4000)
    items = {f"f{i}": TileFile.make(os.urandom(900), "model/gltf-binary", CONTENT_CACHE_CONTROL) for i in range(6)}
    for name, item in items.items():
        cache.put(("d", "v1@1", name), item)
        assert cache.nbytes <= 4000
    assert cache.get(("d", "v1@1", "f0")) is None  # evicted, oldest first
    assert cache.get(("d", "v1@1", "f5")) is items["f5"]
    cache.get(("d", "v1@1", "f2"))  # touch f2: now f3 is the oldest
    cache.put(("d", "v1@1", "g"), TileFile.make(os.urandom(900), "model/gltf-binary", CONTENT_CACHE_CONTROL))
    assert cache.get(("d", "v1@1", "f2")) is not None and cache.get(("d", "v1@1", "f3")) is None
    cache.put(("d", "v1@1", "big"), TileFile.make(os.urandom(1500), "model/gltf-binary", CONTENT_CACHE_CONTROL))
    assert cache.get(("d", "v1@1", "big")) is None  # over budget / 4: never cached
    cache.drop_dataset("d", keep_token="v2@2")
    assert len(cache) == 0 and cache.nbytes == 0


def test_served_from_memory_after_the_first_read(client: TestClient) -> None:
    source = client.app.state.tiles  # type: ignore[attr-defined]
    client.get("/tiles/buildings/buildings_0.glb")
    misses = source.cache.misses
    for _ in range(5):
        assert client.get("/tiles/buildings/buildings_0.glb").status_code == 200
    assert source.cache.misses == misses and source.cache.hits >= 5
