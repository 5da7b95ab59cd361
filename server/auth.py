"""Bearer-token access control, once for the whole app (an ASGI middleware in ``create_app``).

It looks at the request, not at the route, so every route (also those other modules add later) is
covered without knowing about it:

* ``GET``/``HEAD`` need the **read** scope, but only when ``CIM_READ_TOKENS`` is set (otherwise reads
  are public). Any other method (``POST``, ``DELETE``...) needs the **write** scope. A write token
  has the read scope too.
* Public whatever the configuration: the viewer page and its files (``/``, ``/static/...``,
  ``/cesium/...``; the page asks for a token itself), ``/healthz`` and ``/api/openapi.json``.
  CORS preflights never reach this middleware (the CORS middleware answers them).
* Credentials: ``Authorization: Bearer <token>``; for reads also ``?access_token=<token>``
  (RFC 6750 section 2.3) so that a plain link (a footprint download) works. Writes accept the header only.
* Requests that no route takes (404, or 405 for a wrong method) are answered by the router as
  before: they reveal nothing.
* No or a wrong token -> 401 with ``WWW-Authenticate: Bearer``; a read-only token on a write -> 403.
  The request body is never read, so nothing is stored. Tokens are compared in constant time.
"""
from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from cim.errors import AuthenticationError, CimError, PermissionDeniedError
from server import errors

READ_METHODS = frozenset({"GET", "HEAD"})
PUBLIC_PATHS = frozenset({"/", "/healthz", "/api/openapi.json"})
PUBLIC_PREFIXES = ("/static/", "/cesium/")
QUERY_TOKEN = "access_token"
REALM = 'Bearer realm="cim"'


def _matches(token: str, tokens: Sequence[str]) -> bool:
    """Constant time in the token's content: every configured token is compared, with no early exit."""
    given = token.encode()
    found = False
    for candidate in tokens:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


def bearer_token(scope: Scope, allow_query: bool) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return ""  # some other scheme, or an empty token: wrong credentials
    if allow_query:
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if key == QUERY_TOKEN:
                return value
    return None


def check_access(scope: Scope, write_tokens: Sequence[str], read_tokens: Sequence[str]) -> None:
    """Raise AuthenticationError / PermissionDeniedError unless the request may go on."""
    path = scope["path"]
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return
    write = scope["method"] not in READ_METHODS
    if not write and not read_tokens:
        return
    token = bearer_token(scope, allow_query=not write)
    if token is None:
        needed = "write" if write else "read"
        hint = "" if write_tokens or not write else " (this server has no write token: set CIM_WRITE_TOKENS)"
        raise AuthenticationError(f"this request needs a bearer token with {needed} scope "
                                  f"('Authorization: Bearer <token>'){hint}", scope=needed)
    is_writer = _matches(token, write_tokens)
    is_reader = _matches(token, read_tokens)
    if not (is_writer or is_reader):
        raise AuthenticationError("the bearer token is not valid on this server", scope="write" if write else "read")
    if write and not is_writer:
        raise PermissionDeniedError("this token may only read: uploads, cancelling and deleting need a token "
                                    "with write scope", scope="write")


def _routed(scope: Scope) -> bool:
    """True when a route of the app takes this path and method (checked against the app's router,
    so routes added by any module are covered)."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return True
    for route in router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return True
    return False


class AuthMiddleware:
    def __init__(self, app: ASGIApp, write_tokens: Sequence[str], read_tokens: Sequence[str]) -> None:
        self.app = app
        self.write_tokens = tuple(write_tokens)
        self.read_tokens = tuple(read_tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _routed(scope):
            await self.app(scope, receive, send)  # the router answers 404 / 405 (no secret behind them)
            return
        try:
            check_access(scope, self.write_tokens, self.read_tokens)
        except CimError as exc:
            challenge = REALM
            if isinstance(exc, PermissionDeniedError):
                challenge += ', error="insufficient_scope", scope="write"'
            elif bearer_token(scope, allow_query=scope["method"] in READ_METHODS) is not None:
                challenge += ', error="invalid_token"'
            response = errors.error_response(Request(scope), errors.status_for(exc), exc.to_dict(),
                                             headers={"WWW-Authenticate": challenge})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
