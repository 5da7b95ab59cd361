"""Dataset API: ``GET /api/datasets`` and ``GET /api/datasets/{name}`` (JSON).

Each dataset is :meth:`cim.store.DatasetInfo.to_dict` plus ``tileset`` (the URL path of its
published tileset, or null when it has none) and ``tileset_version``.
"""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.store import DatasetInfo, Store
from server.tiles import TileSource, check_dataset_name, published_or_none


async def _describe(request: Request, info: DatasetInfo) -> dict[str, Any]:
    source: TileSource = request.app.state.tiles
    published = await published_or_none(source, info.name)
    body = info.to_dict()
    body["tileset"] = request.url_for("tile", dataset=info.name, path="tileset.json").path if published else None
    body["tileset_version"] = published.version if published else None
    return body


async def list_datasets(request: Request) -> Response:
    store: Store = request.app.state.store
    infos = await run_in_threadpool(store.list_datasets)
    return JSONResponse({"datasets": [await _describe(request, info) for info in infos]})


async def get_dataset(request: Request) -> Response:
    name = check_dataset_name(request.path_params["name"])
    store: Store = request.app.state.store
    info = await run_in_threadpool(store.get_dataset, name)
    return JSONResponse(await _describe(request, info))


def routes() -> list[Route]:
    return [
        Route("/api/datasets", list_datasets, methods=["GET"], name="datasets"),
        Route("/api/datasets/{name}", get_dataset, methods=["GET"], name="dataset"),
    ]


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_DATASET = {"type": "object", "additionalProperties": True, "description": "docs/http-api.md, Datasets"}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/datasets": {"get": {
        "summary": "Every dataset of the store", "operationId": "listDatasets", "tags": ["datasets"],
        "security": [{"bearer": ["read"]}, {}],
        "responses": {"200": {"description": "Datasets", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"datasets": {"type": "array", "items": _DATASET}}}}}},
            "401": {"$ref": "#/components/responses/Error"}}}},
    "/api/datasets/{name}": {"get": {
        "summary": "One dataset: counts, extent, frame, conversion report, published tileset",
        "operationId": "getDataset", "tags": ["datasets"], "security": [{"bearer": ["read"]}, {}],
        "parameters": [_NAME],
        "responses": {"200": {"description": "The dataset", "content": {"application/json": {"schema": _DATASET}}},
                      "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}}},
}
