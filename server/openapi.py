"""The OpenAPI 3.1 description served at ``GET /api/openapi.json``.

Each route module exports ``OPENAPI_PATHS`` (``{path: {method: operation}}``, OpenAPI's own
shape); this module merges those of :data:`ROUTE_MODULES`. A module that adds routes adds its
dotted name here; ``tests/test_openapi.py`` fails for any route of the app that is not described.
"""
from __future__ import annotations

import importlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: Modules whose ``OPENAPI_PATHS`` make up the description (add new route modules here).
ROUTE_MODULES: tuple[str, ...] = (
    "server.app",
    "server.datasets",
    "server.tiles",
    "server.uploads",
    "server.job_routes",
    "server.features_api",
    "server.cityjson_api",
)

ERROR_SCHEMA = {"type": "object", "required": ["error", "message"], "additionalProperties": True, "properties": {
    "error": {"type": "string", "description": "stable code, e.g. dataset_not_found, payload_too_large"},
    "message": {"type": "string", "description": "what went wrong and what to do"}}}

JOB_SCHEMA = {"type": "object", "required": ["id", "state", "dataset", "progress"], "properties": {
    "id": {"type": "string"},
    "state": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
    "dataset": {"type": "string"},
    "progress": {"type": "object", "properties": {
        "stage": {"type": "string", "description": "queued, starting, import, tiles, done"},
        "percent": {"type": "number", "minimum": 0, "maximum": 100},
        "messages": {"type": "array", "items": {"type": "string"}}}},
    "report": {"type": ["object", "null"], "description": "the conversion report of a finished import"},
    "error": {"anyOf": [{"$ref": "#/components/schemas/Error"}, {"type": "null"}]},
    "source": {"type": ["string", "null"]}, "placement": {"type": "object"},
    "created": {"type": "string"}, "updated": {"type": "string"},
    "started": {"type": ["string", "null"]}, "finished": {"type": ["string", "null"]},
    "url": {"type": "string"}}}


def build_openapi(version: str = "0.1.0") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for name in ROUTE_MODULES:
        module = importlib.import_module(name)
        for path, operations in getattr(module, "OPENAPI_PATHS", {}).items():
            merged = paths.setdefault(path, {})
            clash = set(merged) & set(operations)
            if clash:
                raise ValueError(f"{name} describes {sorted(clash)} {path} again")
            merged.update(operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": "open-cim-server", "version": version,
                 "description": "City information model server: uploads and conversion jobs, OGC 3D Tiles 1.1 "
                                "of the whole city, datasets and footprints. See docs/http-api.md."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "Tokens from CIM_WRITE_TOKENS (write and read scope) or CIM_READ_TOKENS (read). "
                               "Reads are public when CIM_READ_TOKENS is empty. GET requests also accept "
                               "?access_token=<token>."}},
            "schemas": {"Error": ERROR_SCHEMA, "Job": JOB_SCHEMA},
            "responses": {"Error": {"description": "An error",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(build_openapi(request.app.state.version), headers={"Cache-Control": "no-cache"})
