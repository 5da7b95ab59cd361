"""The Starlette application: ``create_app(settings)``; nothing is built at import time.

Routes (docs/http-api.md): ``/healthz``, ``/api/datasets[/{name}]``, ``/tiles/...``, and the
viewer: ``/`` (the page), ``/static/viewer.{js,css}``, ``/cesium/...`` (CesiumJS's built files).
``app.state`` holds ``settings``, ``store`` (opened at startup, created if missing) and
``tiles`` (the published tilesets behind the in-memory tile cache).
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cim.store import Store, open_store
from server import auth, cityjson_api, datasets, errors, features_api, job_routes, openapi, tiles, uploads
from server.jobs import JobManager
from server.settings import Settings

access_log = logging.getLogger("server.access")

VIEWER_DIR = Path(__file__).resolve().parent / "viewer"
VIEWER_ASSETS = {"viewer.js": "text/javascript; charset=utf-8", "viewer.css": "text/css; charset=utf-8"}
CESIUM_CACHE_CONTROL = "public, max-age=3600"
CESIUM_MISSING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CIM viewer: CesiumJS is not installed</title></head>
<body style="font-family: sans-serif; max-width: 44em; margin: 3em auto">
<h1>CesiumJS is not installed</h1>
<p>The city viewer needs CesiumJS's built files in <code>{cesium_dir}</code>, and they are missing.</p>
<p>Install them from the repository root with <code>make install</code>
(or <code>bash server/viewer/install-cesium.sh</code>; it needs Node.js 20.19+ and npm), or point
<code>CIM_CESIUM_DIR</code> at a folder that holds <code>Cesium.js</code>, then reload this page.</p>
<p>The tiles (<a href="/tiles/city/tileset.json">/tiles/city/tileset.json</a>) and the API
(<a href="/api/datasets">/api/datasets</a>) work without it.</p>
</body></html>
"""


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await run_in_threadpool(open_store, settings.store_path)
        app.state.store = store
        app.state.jobs = JobManager(store, settings)
        await run_in_threadpool(app.state.jobs.start)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.jobs.stop)
            store.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        *datasets.routes(),
        *tiles.routes(),
        *features_api.routes(),
        *cityjson_api.routes(),
        *uploads.routes(),
        *job_routes.routes(),
        Route("/api/openapi.json", openapi.openapi_json, methods=["GET"], name="openapi"),
        Route("/", index, methods=["GET"], name="viewer"),
        Route("/static/{name}", viewer_asset, methods=["GET"], name="static"),
        Mount("/cesium", app=GZipMiddleware(CesiumFiles(directory=settings.cesium_dir, check_dir=False)),
              name="cesium"),
    ]
    middleware = [
        Middleware(AccessLogMiddleware),
        Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                   allow_methods=["GET", "HEAD", "POST", "DELETE"], allow_headers=["*"],
                   expose_headers=["ETag", "Content-Length", "Content-Encoding", "Location", "WWW-Authenticate"],
                   max_age=3600),
        # inside CORS (401/403 answers carry CORS headers, preflights need no token); covers every route
        Middleware(auth.AuthMiddleware, write_tokens=settings.write_tokens, read_tokens=settings.read_tokens),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=errors.EXCEPTION_HANDLERS,
                    lifespan=lifespan)
    app.state.settings = settings
    app.state.version = _version()
    app.state.tiles = tiles.TileSource(settings.tiles_root, tiles.TileCache(settings.cache_bytes))
    return app


async def healthz(request: Request) -> Response:
    store: Store = request.app.state.store
    count = len(await run_in_threadpool(store.list_datasets))
    settings: Settings = request.app.state.settings
    return JSONResponse({"status": "ok", "datasets": count, "version": request.app.state.version,
                         "cesium": _cesium_installed(settings),
                         "tile_cache": tiles.cache_stats(request.app.state.tiles)})


async def index(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not _cesium_installed(settings):
        return HTMLResponse(CESIUM_MISSING.format(cesium_dir=settings.cesium_dir), status_code=503,
                            headers={"Cache-Control": "no-cache"})
    return FileResponse(VIEWER_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


async def viewer_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in VIEWER_ASSETS:
        raise HTTPException(404, f"no viewer file '{name}'")
    return FileResponse(VIEWER_DIR / name, media_type=VIEWER_ASSETS[name], headers={"Cache-Control": "no-cache"})


class CesiumFiles(StaticFiles):
    """CesiumJS's ``Build/Cesium``; a JSON 404 that says how to install it when it is missing."""

    async def check_config(self) -> None:
        return None

    async def get_response(self, path: str, scope: Scope) -> Response:
        if self.directory is None or not os.path.isdir(self.directory):
            raise HTTPException(404, f"CesiumJS is not installed in {self.directory}: run 'make install'")
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = CESIUM_CACHE_CONTROL
        return response


class AccessLogMiddleware:
    """One INFO line per request: client, method, path, status, body bytes, time, error code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, size = 500, 0

        async def send_and_count(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            client = scope.get("client")
            query = _redact(scope.get("query_string", b"").decode("latin-1"))
            target = scope.get("root_path", "") + scope["path"] + (f"?{query}" if query else "")
            code = scope.get(errors.ERROR_CODE_SCOPE_KEY)
            access_log.info('%s "%s %s" %d %dB %.1fms%s', client[0] if client else "-", scope["method"], target,
                            status, size, (time.perf_counter() - start) * 1000, f" error={code}" if code else "")


def _redact(query: str) -> str:
    """The query string with token values hidden (tokens never go to the log)."""
    return re.sub(rf"(^|&)({auth.QUERY_TOKEN}|token)=[^&]*", r"\1\2=REDACTED", query)


def _cesium_installed(settings: Settings) -> bool:
    return (settings.cesium_dir / "Cesium.js").is_file()


def _version() -> str:
    try:
        return metadata.version("open-cim-server")
    except metadata.PackageNotFoundError:
        return "unknown"


_PUBLIC = [{}]  # no token needed, whatever the configuration (server/auth.py)
OPENAPI_PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "Liveness, dataset count, version, CesiumJS installed, tile cache",
                         "operationId": "healthz", "tags": ["server"], "security": _PUBLIC,
                         "responses": {"200": {"description": "OK"}}}},
    "/api/openapi.json": {"get": {"summary": "This OpenAPI 3.1 description", "operationId": "openapi",
                                  "tags": ["server"], "security": _PUBLIC,
                                  "responses": {"200": {"description": "OpenAPI document"}}}},
    "/": {"get": {"summary": "The web page: upload with progress, datasets and jobs, CesiumJS city view",
                  "operationId": "viewer", "tags": ["viewer"], "security": _PUBLIC,
                  "parameters": [{"name": "token", "in": "query", "schema": {"type": "string"},
                                  "description": "A bearer token for the page to use (kept in the tab, removed "
                                                 "from the address bar)"}],
                  "responses": {"200": {"description": "HTML"}, "503": {"description": "CesiumJS not installed"}}}},
    "/static/{name}": {"get": {"summary": "The page's script and style (viewer.js, viewer.css)",
                               "operationId": "viewerAsset", "tags": ["viewer"], "security": _PUBLIC,
                               "parameters": [{"name": "name", "in": "path", "required": True,
                                               "schema": {"type": "string", "enum": sorted(VIEWER_ASSETS)}}],
                               "responses": {"200": {"description": "The file"}, "404": {"description": "Unknown"}}}},
    "/cesium/{path}": {"get": {"summary": "CesiumJS's built files (Cesium.js, Widgets/, Workers/, Assets/)",
                               "operationId": "cesium", "tags": ["viewer"], "security": _PUBLIC,
                               "parameters": [{"name": "path", "in": "path", "required": True,
                                               "schema": {"type": "string"}}],
                               "responses": {"200": {"description": "The file"}, "404": {"description": "Missing"}}}},
}
