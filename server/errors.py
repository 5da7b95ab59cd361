"""Library errors -> HTTP, in one table, and the exception handlers that answer JSON.

Every error response has the body ``{"error": <code>, "message": <text>, ...details}``, where
``code`` is the :class:`cim.errors.CimError` code (``dataset_not_found``, ``invalid_input``...) or,
for errors that do not come from the library, ``not_found``, ``method_not_allowed`` or
``internal_error``. The access log line of the request names the code too.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cim import errors

log = logging.getLogger("server.errors")

#: The first class in a raised error's MRO that is listed here gives the status code.
STATUS_CODES: dict[type[errors.CimError], int] = {
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.DatasetNotFoundError: 404,
    errors.JobNotFoundError: 404,
    errors.TilesetNotFoundError: 404,
    errors.NotFoundError: 404,
    errors.UnsupportedFormatError: 415,
    errors.InvalidParameterError: 400,
    errors.PayloadTooLargeError: 413,
    errors.CrsError: 422,
    errors.InputError: 400,
    errors.ConflictError: 409,
    errors.StoreError: 500,
    errors.CimError: 500,
}

ERROR_CODE_SCOPE_KEY = "cim.error_code"  # read by the access log


def status_for(exc: errors.CimError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_response(request: Request, status: int, body: dict[str, Any],
                   headers: Mapping[str, str] | None = None) -> Response:
    request.scope[ERROR_CODE_SCOPE_KEY] = body.get("error")
    return JSONResponse(body, status_code=status, headers=headers)


async def cim_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CimError)
    status = status_for(exc)
    if status >= 500:
        log.error("%s on %s %s: %s", exc.code, request.method, request.url.path, exc.message, exc_info=exc)
    return error_response(request, status, exc.to_dict())


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if exc.detail and exc.detail != phrase else f"{phrase}: {request.url.path}"
    return error_response(request, exc.status_code, {"error": code, "message": message}, exc.headers)


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.error("internal_error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"error": "internal_error", "message": "internal server error; the server log has the details"}
    return error_response(request, 500, body)


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Any]] = {
    errors.CimError: cim_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
