"""The one place that turns any failure into the error envelope.

Every failure, whatever raised it, answers ``{"success": false, "error", "message", "solution"}``: the
errors of ``model_manager.errors`` with the status of the error table, FastAPI's validation errors as
``invalid_request`` 422, unknown routes and methods as 404/405, and the guard's refusals (401, 403, 413,
415), which are sent before the app runs.
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

from ..errors import (
    ApiError,
    BadRequestError,
    EndpointNotFoundError,
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    ModelManagerError,
    PayloadTooLargeError,
)

log = logging.getLogger(__name__)


def envelope(error: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"success": False, **error, **extra}


def error_response(exc: ModelManagerError, status: int | None = None, **extra: Any) -> JSONResponse:
    headers = exc.headers if isinstance(exc, ApiError) else None
    return JSONResponse(
        envelope(exc.to_dict(), **extra), status_code=status or exc.http_status, headers=headers
    )


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
        return error_response(InvalidRequestError(_validation_detail(exc)))
    if isinstance(exc, StarletteHTTPException):
        return _http_error(request, exc)
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError())


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors: unknown route, wrong method, a body that is not even text."""
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (undecodable bytes): bad JSON like any other.
        return error_response(InvalidRequestError("the body is not valid JSON"))
    where = f"{request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    error: ApiError
    if exc.status_code == 404:
        error = EndpointNotFoundError(where, headers)
    elif exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
        error = MethodNotAllowedError(where, headers)
    elif exc.status_code == 413:
        error = PayloadTooLargeError("", headers)
    elif exc.status_code < 500:
        error = BadRequestError("", headers)
    else:
        error = InternalError("", headers)
    return error_response(error, exc.status_code)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)
