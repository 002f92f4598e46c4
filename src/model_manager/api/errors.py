"""The HTTP layer's own errors and the one place that turns any failure into the error envelope.

Every failure, whatever raised it, answers ``{"success": false, "error", "message", "solution"}``:
the manager's errors with the status of the shared error table (``model_manager.errors``), FastAPI's
validation errors as ``invalid_request`` 422, unknown routes and methods as 404/405, and the guard's
refusals (401, 403, 413, 415), which are sent before the app runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from ..errors import ERROR_TABLE, ErrorKind, ModelManagerError

log = logging.getLogger(__name__)

# The rows of the error table this layer answers with.
UNAUTHORIZED = ERROR_TABLE["unauthorized"]
FORBIDDEN = ERROR_TABLE["forbidden"]
NOT_FOUND = ERROR_TABLE["not_found"]
METHOD_NOT_ALLOWED = ERROR_TABLE["method_not_allowed"]
PAYLOAD_TOO_LARGE = ERROR_TABLE["payload_too_large"]
UNSUPPORTED_MEDIA_TYPE = ERROR_TABLE["unsupported_media_type"]
BAD_REQUEST = ERROR_TABLE["bad_request"]
INTERNAL = ERROR_TABLE["internal_error"]

_BY_STATUS = {k.http_status: k for k in (NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE, BAD_REQUEST)}


class ApiError(ModelManagerError):
    """An error of the HTTP layer, of one of the kinds above."""

    def __init__(self, kind: ErrorKind, detail: str = "", headers: Mapping[str, str] | None = None) -> None:
        self._kind = kind
        self.headers = dict(headers or {})
        super().__init__(detail)

    @property
    def kind(self) -> ErrorKind:
        return self._kind


def envelope(error: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"success": False, **error, **extra}


def error_response(exc: ModelManagerError, **extra: Any) -> JSONResponse:
    headers = exc.headers if isinstance(exc, ApiError) else None
    return JSONResponse(envelope(exc.to_dict(), **extra), status_code=exc.http_status, headers=headers)


def error_bytes(exc: ModelManagerError) -> bytes:
    """The envelope as a body, for the guard (which answers before the app runs)."""
    return json.dumps(envelope(exc.to_dict()), ensure_ascii=False).encode()


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = [str(p) for p in error.get("loc", ())]
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            # FastAPI puts the character offset where a field name would be.
            cause = (error.get("ctx") or {}).get("error", "")
            loc, message = loc[:1], f"{message} at character {loc[-1]}: {cause}" if len(loc) > 1 else message
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(parts)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for every kind of failure (registered once per exception type)."""
    if isinstance(exc, ModelManagerError):
        return error_response(exc)
    if isinstance(exc, RequestValidationError):
        invalid = ERROR_TABLE["invalid_request"]
        return error_response(ApiError(invalid, _validation_detail(exc)))
    if isinstance(exc, StarletteHTTPException):
        return _http_error(request, exc)
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(INTERNAL))


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors: unknown route, wrong method, a body that is not even text."""
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (undecodable bytes): bad JSON like any other.
        return error_response(ApiError(ERROR_TABLE["invalid_request"], "the body is not valid JSON"))
    kind = _BY_STATUS.get(exc.status_code, BAD_REQUEST if exc.status_code < 500 else INTERNAL)
    detail = f"{request.method} {request.url.path}" if kind in (NOT_FOUND, METHOD_NOT_ALLOWED) else ""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    response = error_response(ApiError(kind, detail, headers=headers))
    response.status_code = exc.status_code
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)
