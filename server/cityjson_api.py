"""``GET /api/datasets/{name}/cityjson[?bbox=W,S,E,N&crs=EPSG:N]``: a dataset as CityJSON 2.0."""
from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cim.export.cityjson import dataset_to_cityjson
from cim.export.footprints import parse_bbox
from cim.store import Store
from server.tiles import check_dataset_name

MEDIA_TYPE = "application/city+json"


def _render(store: Store, name: str, bbox: Any, crs: str | None) -> bytes:
    doc = dataset_to_cityjson(store, name, bbox=bbox, crs=crs)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def dataset_cityjson(request: Request) -> Response:
    name = check_dataset_name(request.path_params["name"])
    bbox = parse_bbox(request.query_params.get("bbox"))
    store: Store = request.app.state.store
    body = await run_in_threadpool(_render, store, name, bbox, request.query_params.get("crs") or None)
    return Response(body, media_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}.city.json"'})


def routes() -> list[Route]:
    return [Route("/api/datasets/{name}/cityjson", dataset_cityjson, methods=["GET"], name="dataset_cityjson")]


OPENAPI_PATHS: dict[str, Any] = {
    "/api/datasets/{name}/cityjson": {"get": {
        "summary": "A dataset (or the groups whose footprint meets bbox) as CityJSON 2.0",
        "operationId": "getDatasetCityJson", "tags": ["Datasets"],
        "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "bbox", "in": "query", "required": False, "description": "W,S,E,N in lon/lat",
             "schema": {"type": "string"}},
            {"name": "crs", "in": "query", "required": False,
             "description": "Write vertices in this CRS (EPSG:N or an OGC URI); default the dataset's source CRS",
             "schema": {"type": "string"}}],
        "responses": {"200": {"description": "CityJSON 2.0 document (Content-Disposition: attachment)",
                              "content": {MEDIA_TYPE: {"schema": {"type": "object"}}}},
                      "400": {"description": "Invalid bbox or crs"}, "404": {"description": "Unknown dataset"}}}},
}
