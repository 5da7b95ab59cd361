"""``POST /api/uploads``: stream a file (or a zip of files) to the staging area, check it, and
queue a conversion job; answers ``202 {"id": …}`` (docs/http-api.md, Uploads).

Everything that can be checked before converting is checked here, so that a bad upload answers
an error at once and leaves nothing behind: size cap (413), archive safety, format by content
through the converter registry (415 with the formats tried), placement options and dataset name.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import converters
from cim.placement import user_frame
from cim.errors import InputError, PayloadTooLargeError, UnsupportedFormatError
from cim.store import SqliteStore
from server import archive
from server.jobs import JobManager
from server.pipeline import check_dataset_name, dataset_name_for
from server.settings import Settings
from server.upload_stream import Received, receive_upload

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and form fields around the file
OPTIONS = ("dataset", "crs", "origin", "rotation")


def _options(request: Request, received: Received) -> dict[str, str]:
    """Placement options and dataset name: form fields win over query parameters."""
    out = {k: request.query_params[k].strip() for k in OPTIONS if request.query_params.get(k, "").strip()}
    out.update({k: v for k, v in received.fields.items() if k in OPTIONS and v})
    return out


def _placement(options: dict[str, str]) -> dict[str, Any]:
    """Validated placement (raises PlacementError / CrsError now rather than in the job)."""
    rotation: float | None = None
    if "rotation" in options:
        try:
            rotation = float(options["rotation"])
        except ValueError as exc:
            raise InputError(f"rotation must be a number of degrees, not '{options['rotation']}'") from exc
    placement = {"crs": options.get("crs"), "origin": options.get("origin"), "rotation": rotation}
    user_frame(**placement)
    return {k: v for k, v in placement.items() if v is not None}


def _inputs(received: Received, folder: Path, settings: Settings) -> tuple[list[Path], list[str]]:
    """The files to convert (the upload, or the supported files of an archive) and notes on
    files of an archive that were left out."""
    assert received.path is not None
    if received.size == 0:
        raise InputError(f"{received.filename} is empty")
    if not archive.is_zip(received.path):
        converters.detect(received.path)  # UnsupportedFormatError lists the formats tried
        return [received.path], []
    limits = archive.ArchiveLimits(settings.zip_max_bytes, settings.zip_max_entries, settings.zip_max_ratio)
    files = archive.extract(received.path, folder / "unpacked", limits, received.filename)
    received.path.unlink()  # the archive itself is no longer needed
    usable, skipped = [], []
    for path in sorted(files):
        try:
            converters.detect(path)
            usable.append(path)
        except UnsupportedFormatError:
            skipped.append(f"{path.relative_to(folder / 'unpacked')}: not a format this server reads, left out")
    if not usable:
        tried = converters.registered_formats()
        raise UnsupportedFormatError(f"{received.filename} holds no file this server reads; tried {', '.join(tried)}",
                                     file=received.filename, tried=tried)
    return usable, skipped


async def create_upload(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    store: SqliteStore = request.app.state.store
    manager: JobManager = request.app.state.jobs
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.upload_max_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLargeError(f"the upload ({length} bytes) is larger than this server's cap of "
                                   f"{settings.upload_max_bytes} bytes (CIM_UPLOAD_MAX_BYTES)",
                                   limit=settings.upload_max_bytes)
    job_id = uuid.uuid4().hex
    folder = manager.staging(job_id)
    await run_in_threadpool(folder.mkdir, parents=True, mode=0o700)
    try:
        received = await receive_upload(request.headers.get("content-type", ""), request.headers.get("x-filename"),
                                        request.stream(), folder, settings.upload_max_bytes)
        options = _options(request, received)
        dataset = check_dataset_name(options["dataset"]) if "dataset" in options else \
            dataset_name_for([Path(received.filename)])
        placement = await run_in_threadpool(_placement, options)
        files, skipped = await run_in_threadpool(_inputs, received, folder, settings)
        params = {"files": [str(p.resolve()) for p in files], "filename": received.filename, "bytes": received.size,
                  "placement": placement, "format": "1.1", "skipped": skipped}
        job = await run_in_threadpool(store.create_job, job_id, dataset, params)
    except BaseException:
        await run_in_threadpool(shutil.rmtree, folder, True)
        raise
    manager.wake()
    body = job.to_dict()
    body["url"] = request.url_for("job", job_id=job_id).path
    return JSONResponse(body, status_code=202, headers={"Location": body["url"]})


def routes() -> list[Route]:
    return [Route("/api/uploads", create_upload, methods=["POST"], name="uploads")]


_PLACEMENT_PARAMS = [
    {"name": "dataset", "in": "query", "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
     "description": "Dataset name (default: derived from the file name). An existing dataset is replaced."},
    {"name": "crs", "in": "query", "schema": {"type": "string", "example": "EPSG:5899"},
     "description": "CRS of the input coordinates (overrides the file's own)."},
    {"name": "origin", "in": "query", "schema": {"type": "string", "example": "108.25,16.05,5"},
     "description": "Place local metric data: WGS 84 lon,lat[,height] of its origin."},
    {"name": "rotation", "in": "query", "schema": {"type": "number"},
     "description": "With origin: compass bearing in degrees of the local +Y axis."},
]

OPENAPI_PATHS: dict[str, Any] = {
    "/api/uploads": {"post": {
        "summary": "Upload a file (or a .zip/.ifczip) and queue its conversion into the city",
        "operationId": "createUpload", "tags": ["jobs"], "security": [{"bearer": ["write"]}],
        "parameters": _PLACEMENT_PARAMS + [
            {"name": "X-Filename", "in": "header", "schema": {"type": "string"},
             "description": "File name of a raw (application/octet-stream) upload."}],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}, "dataset": {"type": "string"},
                "crs": {"type": "string"}, "origin": {"type": "string"}, "rotation": {"type": "number"}}}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "202": {"description": "Job queued", "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
            "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
            "415": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}}}},
}
