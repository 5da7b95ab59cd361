"""Job API: ``GET /api/jobs``, ``GET /api/jobs/{job_id}``, ``POST /api/jobs/{job_id}/cancel``,
``DELETE /api/jobs/{job_id}`` (docs/http-api.md, Jobs)."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cim.errors import ConflictError, InputError
from cim.store import ACTIVE_JOB_STATES, JOB_STATES, SqliteStore
from server.jobs import JobManager

DEFAULT_LIMIT = 100


def _body(request: Request, job: Any) -> dict[str, Any]:
    body: dict[str, Any] = job.to_dict()
    body["url"] = request.url_for("job", job_id=job.id).path
    return body


async def list_jobs(request: Request) -> Response:
    store: SqliteStore = request.app.state.store
    states = [s for s in request.query_params.getlist("state") if s] or None
    for state in states or []:
        if state not in JOB_STATES:
            raise InputError(f"unknown job state '{state}'; use one of {', '.join(JOB_STATES)}", state=state)
    text = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InputError(f"limit must be an integer from 1 to 1000, not '{text}'", limit=text)
    jobs = await run_in_threadpool(store.list_jobs, states, int(text))
    return JSONResponse({"jobs": [_body(request, j) for j in jobs]})


async def get_job(request: Request) -> Response:
    store: SqliteStore = request.app.state.store
    job = await run_in_threadpool(store.get_job, request.path_params["job_id"])
    return JSONResponse(_body(request, job))


async def cancel_job(request: Request) -> Response:
    manager: JobManager = request.app.state.jobs
    job = await run_in_threadpool(manager.cancel, request.path_params["job_id"])
    return JSONResponse(_body(request, job))


async def delete_job(request: Request) -> Response:
    store: SqliteStore = request.app.state.store
    job = await run_in_threadpool(store.get_job, request.path_params["job_id"])
    if job.state in ACTIVE_JOB_STATES:
        raise ConflictError(f"job '{job.id}' is {job.state}; cancel it first (POST {request.url.path}/cancel)",
                            job=job.id, state=job.state)
    await run_in_threadpool(store.delete_job, job.id)
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/api/jobs", list_jobs, methods=["GET"], name="jobs"),
        Route("/api/jobs/{job_id}", get_job, methods=["GET"], name="job"),
        Route("/api/jobs/{job_id}", delete_job, methods=["DELETE"], name="delete_job"),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"], name="cancel_job"),
    ]


_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JOB = {"200": {"description": "The job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
        "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/jobs": {"get": {
        "summary": "Conversion jobs, newest first", "operationId": "listJobs", "tags": ["jobs"],
        "security": [{"bearer": ["read"]}, {}],
        "parameters": [{"name": "state", "in": "query", "schema": {"type": "string", "enum": list(JOB_STATES)}},
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
        "responses": {"200": {"description": "Jobs", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}}}}},
            "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}}}},
    "/api/jobs/{job_id}": {
        "get": {"summary": "A job: state, progress (stage, percent, messages), conversion report, error",
                "operationId": "getJob", "tags": ["jobs"], "security": [{"bearer": ["read"]}, {}],
                "parameters": [_ID], "responses": _JOB},
        "delete": {"summary": "Remove the record of a finished job", "operationId": "deleteJob", "tags": ["jobs"],
                   "security": [{"bearer": ["write"]}], "parameters": [_ID],
                   "responses": {"204": {"description": "Removed"}, "401": {"$ref": "#/components/responses/Error"},
                                 "403": {"$ref": "#/components/responses/Error"},
                                 "404": {"$ref": "#/components/responses/Error"},
                                 "409": {"$ref": "#/components/responses/Error"}}}},
    "/api/jobs/{job_id}/cancel": {"post": {
        "summary": "Cancel a queued or running job (kills its worker; the previous dataset version stays)",
        "operationId": "cancelJob", "tags": ["jobs"], "security": [{"bearer": ["write"]}], "parameters": [_ID],
        "responses": {**_JOB, "403": {"$ref": "#/components/responses/Error"},
                      "409": {"$ref": "#/components/responses/Error"}}}},
}
