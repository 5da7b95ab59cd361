"""GET /api/openapi.json describes every route of the app (OpenAPI 3.1)."""
from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Mount, Route

from server.app import create_app
from server.openapi import ROUTE_MODULES
from tests.test_server_fixtures import TestClient, fake_cesium, settings_for  # noqa: F401 (fixture)


def _app_routes(app: object) -> set[tuple[str, str]]:
    """(path, method) of every route, with Starlette's ``{name:path}`` as ``{name}``."""
    out = set()
    for route in app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
            for method in route.methods or ():
                out.add((path, method.lower()))
        elif isinstance(route, Mount):
            out.add((route.path + "/{path}", "get"))
    return out


def test_every_route_is_described(tmp_path: Path, fake_cesium: Path) -> None:  # noqa: F811
    app = create_app(settings_for(tmp_path / "d", fake_cesium, read_tokens=("reader-token-1",)))
    with TestClient(app) as client:
        r = client.get("/api/openapi.json")  # public even with read tokens
        assert r.status_code == 200
        doc = r.json()
    assert doc["openapi"].startswith("3.1")
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    routes = _app_routes(app)
    # Starlette answers HEAD on every GET route; HTTP implies it, so a described GET covers it
    routes = {(p, m) for p, m in routes if m != "head" or (p, "head") in described or (p, "get") not in described}
    missing = routes - described
    assert not missing, f"routes without an OpenAPI description (add OPENAPI_PATHS to their module): {missing}"
    assert not described - routes, f"described but not routed: {described - routes}"
    # a few details a client relies on
    upload = doc["paths"]["/api/uploads"]["post"]
    assert upload["security"] == [{"bearer": ["write"]}]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "application/octet-stream"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    job = doc["components"]["schemas"]["Job"]
    assert job["properties"]["state"]["enum"] == ["queued", "running", "done", "failed", "cancelled"]
    for path, ops in doc["paths"].items():  # every $ref resolves
        for op in ops.values():
            for ref in re.findall(r"'\$ref': '#/components/(\w+)/(\w+)'", str(op)):
                assert ref[1] in doc["components"][ref[0]], (path, ref)
    assert all(m.startswith("server.") for m in ROUTE_MODULES)
