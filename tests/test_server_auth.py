"""Bearer tokens through the real HTTP stack: write scope for uploads/cancel/delete, read scope
for everything else when CIM_READ_TOKENS is set; 401/403 store nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from cim.store import open_store
from server.auth import _matches
from server.settings import settings_from_env
from tests.job_helpers import DANANG, READ, READ_AUTH, WRITE, WRITE_AUTH, job_client, staged, upload
from tests.test_server_fixtures import TestClient, city_data, client, fake_cesium, harness_tilesets  # noqa: F401


@pytest.mark.parametrize("headers, status, challenge", [
    ({}, 401, 'Bearer realm="cim"'),
    ({"Authorization": "Bearer not-a-valid-token"}, 401, 'Bearer realm="cim", error="invalid_token"'),
    ({"Authorization": f"Basic {WRITE}"}, 401, 'Bearer realm="cim", error="invalid_token"'),
    (READ_AUTH, 403, 'Bearer realm="cim", error="insufficient_scope", scope="write"'),
])
def test_upload_refused_without_write_scope_stores_nothing(tmp_path: Path, fake_cesium: Path,  # noqa: F811
                                                           headers: dict[str, str], status: int, challenge: str) -> None:
    data = tmp_path / "data"
    with job_client(data, fake_cesium, read_tokens=(READ,)) as client:
        r = upload(client, DANANG, headers=headers, dataset="danang")
        assert r.status_code == status, r.text
        assert r.headers["WWW-Authenticate"] == challenge
        assert r.json()["error"] == ("unauthorized" if status == 401 else "forbidden")
        assert client.get("/api/jobs", headers=WRITE_AUTH).json() == {"jobs": []}
        # a query token never authorises a write
        r = client.post(f"/api/uploads?access_token={WRITE}", content=b"x",
                        headers={"Content-Type": "application/octet-stream", "X-Filename": "a.gml"})
        assert r.status_code == 401
    assert staged(data) == []
    store = open_store(data / "city.gpkg")
    try:
        assert store.list_datasets() == [] and store.list_jobs() == []
    finally:
        store.close()


def test_reads_are_public_without_read_tokens(client: TestClient) -> None:  # noqa: F811
    assert client.get("/api/datasets").status_code == 200
    assert client.get("/tiles/city/tileset.json").status_code == 200
    assert client.get("/api/jobs").status_code == 200


def test_read_tokens_protect_every_read_route(city_data: Path, fake_cesium: Path) -> None:  # noqa: F811
    with job_client(city_data, fake_cesium, read_tokens=(READ,)) as client:
        for url in ("/api/datasets", "/api/datasets/district", "/tiles/city/tileset.json",
                    "/tiles/buildings/tileset.json", "/api/jobs", "/api/jobs/nope", "/collections",
                    "/collections/buildings/items?limit=2", "/api/footprints?format=gpkg",
                    "/api/datasets/district/cityjson"):
            r = client.get(url)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), url
            assert client.get(url, headers={"Authorization": "Bearer wrong-token-99"}).status_code == 401
            for headers in (READ_AUTH, WRITE_AUTH):  # a write token can read too
                assert client.get(url, headers=headers).status_code in (200, 404), url
        assert client.get(f"/tiles/city/tileset.json?access_token={READ}").status_code == 200
        assert client.head("/tiles/buildings/tileset.json", headers=READ_AUTH).status_code == 200
        # public whatever the configuration: the page, its files, health, the API description
        for url in ("/", "/static/viewer.js", "/cesium/Cesium.js", "/healthz", "/api/openapi.json"):
            assert client.get(url).status_code == 200, url
        # the router still answers unknown routes and wrong methods (nothing is behind them)
        assert client.get("/no/such/route").status_code == 404
        assert client.post("/tiles/buildings/tileset.json").status_code == 405
        # a CORS preflight needs no token
        r = client.options("/api/uploads", headers={"Origin": "http://gis.example", "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 200 and "POST" in r.headers["access-control-allow-methods"]
        # a 401 carries CORS headers, so that a viewer on another origin can read it
        r = client.get("/api/datasets", headers={"Origin": "http://gis.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "*"


def test_no_write_token_configured_means_no_uploads(tmp_path: Path, fake_cesium: Path) -> None:  # noqa: F811
    with job_client(tmp_path / "d", fake_cesium, write_tokens=()) as client:
        r = upload(client, DANANG, headers={"Authorization": "Bearer anything-at-all"})
        assert r.status_code == 401
        r = upload(client, DANANG, headers={})
        assert r.status_code == 401 and "CIM_WRITE_TOKENS" in r.json()["message"]


def test_tokens_come_from_the_environment_and_are_never_printed() -> None:
    s = settings_from_env({"CIM_WRITE_TOKENS": f" {WRITE} ,other-writer-1", "CIM_READ_TOKENS": READ})
    assert s.write_tokens == (WRITE, "other-writer-1") and s.read_tokens == (READ,)
    assert WRITE not in repr(s) and READ not in repr(s)
    with pytest.raises(Exception, match="at least 8"):
        settings_from_env({"CIM_WRITE_TOKENS": "short"})
    assert _matches(WRITE, (READ, WRITE)) and not _matches(WRITE[:-1], (READ, WRITE)) and not _matches("", ())


def test_access_log_hides_query_tokens(city_data: Path, fake_cesium: Path,  # noqa: F811
                                       caplog: pytest.LogCaptureFixture) -> None:
    with job_client(city_data, fake_cesium, read_tokens=(READ,)) as client:
        with caplog.at_level("INFO", logger="server.access"):
            assert client.get(f"/api/datasets?access_token={READ}").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    assert any("access_token=REDACTED" in line for line in lines), lines
    assert not any(READ in line for line in lines)
