"""What every route module shares: the app's parts as FastAPI dependencies, the success envelope, and
the documented error statuses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from ..manager import ManagerCore
from . import schemas as s
from .guard import require_json
from .jobs import DownloadJobs
from .metrics import ApiMetrics


# Async, so that FastAPI resolves them on the event loop instead of a thread of the pool.
async def _manager(request: Request) -> ManagerCore:
    manager: ManagerCore = request.app.state.manager
    return manager


async def _jobs(request: Request) -> DownloadJobs:
    jobs: DownloadJobs = request.app.state.jobs
    return jobs


async def _metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


Manager = Annotated[ManagerCore, Depends(_manager)]
Jobs = Annotated[DownloadJobs, Depends(_jobs)]
Metrics = Annotated[ApiMetrics, Depends(_metrics)]

JSON_ONLY = [Depends(require_json)]
"""On every route that changes state (see ``guard.require_json``)."""
BODY_REQUIRED_IN_DOCS: dict[str, Any] = {"requestBody": {"required": True}}
"""For POSTs whose fields are all optional: documented as taking a JSON object (``{}`` will do), which is
what clients should send; an empty body with the JSON content type is accepted as well."""

COMMON_ERRORS = (401, 403, 413, 415, 422, 500, 503)
"""Statuses any route with a body may answer (guard, validation, store, Ollama)."""
ORIGIN_ERRORS = (401, 403, 422, 500)
"""The same for routes without a body."""


def error_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": s.ErrorResponse} for code in statuses}


def doc(model: Any, *errors: int, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}, **error_doc(*errors)}


def ok(**data: Any) -> JSONResponse:
    """The success envelope: ``{"success": true, ...data}``."""
    return JSONResponse({"success": True, **data})


def accepted(**data: Any) -> JSONResponse:
    """The success envelope with 202: the work goes on after the answer."""
    return JSONResponse({"success": True, **data}, status_code=202)
