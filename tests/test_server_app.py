"""Settings, the error table and handlers, the access log, and the viewer routes."""
from __future__ import annotations

import dataclasses
import gzip
import inspect
import logging
from pathlib import Path

import pytest
from starlette.routing import Route

import server
from cim import errors
from server.app import create_app
from server.errors import STATUS_CODES, status_for
from server.settings import DEFAULT_CACHE_BYTES, Settings, parse_size, settings_from_env
from tests.test_server_fixtures import TestClient, city_data, client, fake_cesium, harness_tilesets, settings_for

__all__ = ["city_data", "client", "fake_cesium", "harness_tilesets"]


# --- settings ----------------------------------------------------------------------------------

def test_settings_defaults() -> None:
    s = settings_from_env({})
    assert s.data_dir == Path("city-data")
    assert s.cesium_dir == Path(server.__file__).resolve().parent / "static" / "vendor" / "cesium"
    assert s.cors_origins == ("*",) and s.cache_bytes == DEFAULT_CACHE_BYTES == 256 * 1024 * 1024
    assert s.store_path == Path("city-data/city.gpkg") and s.tiles_root == Path("city-data/tiles")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.data_dir = Path("x")  # type: ignore[misc]


def test_settings_from_env() -> None:
    s = settings_from_env({"CIM_DATA": "/srv/city", "CIM_CESIUM_DIR": "/opt/cesium", "CIM_CACHE_BYTES": "64M",
                           "CIM_CORS_ORIGINS": "https://a.example, https://b.example"})
    assert s == Settings(Path("/srv/city"), Path("/opt/cesium"), ("https://a.example", "https://b.example"), 64 << 20)


@pytest.mark.parametrize("text, expected", [("1048576", 1 << 20), ("256M", 256 << 20), ("1G", 1 << 30),
                                            ("512KiB", 512 << 10), ("0", 0), ("", 7)])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text, 7) == expected


def test_bad_cache_size_is_an_input_error() -> None:
    with pytest.raises(errors.InputError, match="CIM_CACHE_BYTES"):
        settings_from_env({"CIM_CACHE_BYTES": "lots"})


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, status", [
    (errors.DatasetNotFoundError, 404), (errors.TilesetNotFoundError, 404), (errors.NotFoundError, 404),
    (errors.InputError, 400), (errors.ParseError, 400), (errors.TruncatedFileError, 400),
    (errors.HostileInputError, 400), (errors.EmptyInputError, 400), (errors.PlacementError, 400),
    (errors.UnsupportedFormatError, 415), (errors.CrsError, 422), (errors.CrsMissingError, 422),
    (errors.CrsUnknownError, 422), (errors.CrsContradictionError, 422), (errors.ConflictError, 409),
    (errors.StoreError, 500), (errors.CimError, 500),
])
def test_status_table(cls: type[errors.CimError], status: int) -> None:
    assert status_for(cls("x")) == status


def test_every_library_error_has_a_status() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.CimError)]
    assert all(any(k in STATUS_CODES for k in c.__mro__) for c in classes)


def _app_raising(exc: Exception, fake_cesium: Path, tmp_path: Path) -> TestClient:
    async def boom(request: object) -> None:
        raise exc

    app = create_app(settings_for(tmp_path / "data", fake_cesium))
    app.router.routes.append(Route("/boom", boom))
    return TestClient(app, raise_server_exceptions=False)


def test_library_errors_answer_json_with_details(fake_cesium: Path, tmp_path: Path) -> None:
    exc = errors.ConflictError("dataset 'x' is being imported", dataset="x", job=3)
    with _app_raising(exc, fake_cesium, tmp_path) as c:
        r = c.get("/boom", headers={"Origin": "http://a.example"})
    assert r.status_code == 409 and r.headers["access-control-allow-origin"] == "*"
    assert r.json() == {"error": "conflict", "message": "dataset 'x' is being imported", "dataset": "x", "job": 3}


def test_unexpected_errors_answer_json_500(fake_cesium: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with _app_raising(RuntimeError("bug"), fake_cesium, tmp_path) as c, caplog.at_level(logging.ERROR):
        r = c.get("/boom")
    assert r.status_code == 500 and r.json()["error"] == "internal_error" and "bug" not in r.text
    assert any("internal_error" in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post("/tiles/buildings/tileset.json")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_access_log_has_one_line_per_request_with_the_error_code(client: TestClient,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="server.access"):
        client.get("/tiles/buildings/tileset.json")
        client.get("/tiles/nowhere/tileset.json?x=1")
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert len(lines) == 2
    assert '"GET /tiles/buildings/tileset.json" 200' in lines[0] and "error=" not in lines[0]
    assert '"GET /tiles/nowhere/tileset.json?x=1" 404' in lines[1] and lines[1].endswith("error=dataset_not_found")


# --- viewer ------------------------------------------------------------------------------------

def test_viewer_page_and_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('CESIUM_BASE_URL = "/cesium/"', "/cesium/Cesium.js", "/static/viewer.js", 'id="feature-panel"'):
        assert needle in page.text
    js = client.get("/static/viewer.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "window.cimViewer" in js.text
    assert client.get("/static/viewer.css").headers["content-type"].startswith("text/css")
    for hidden in ("package.json", "install-cesium.sh", "index.html", "..%2fapp.py"):
        assert client.get(f"/static/{hidden}").status_code == 404, hidden


def test_cesium_assets_are_served_gzipped(client: TestClient, fake_cesium: Path) -> None:
    with client.stream("GET", "/cesium/Cesium.js", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "public, max-age=3600"
    assert gzip.decompress(raw) == (fake_cesium / "Cesium.js").read_bytes()
    assert client.get("/cesium/Widgets/widgets.css").status_code == 200
    assert client.get("/cesium/../app.py").status_code == 404


def test_without_cesium_the_page_says_how_to_install_it(city_data: Path, tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(city_data, tmp_path / "no-cesium"))) as c:
        page = c.get("/")
        assert page.status_code == 503 and "CesiumJS is not installed" in page.text and "make install" in page.text
        asset = c.get("/cesium/Cesium.js")
        assert asset.status_code == 404 and "make install" in asset.json()["message"]
        assert c.get("/healthz").json()["cesium"] is False
        assert c.get("/tiles/city/tileset.json").status_code == 200  # tiles work without it
