"""The endpoints: the seed's thirteen, download jobs, usage, health and metrics.

Each route is a plain ``def`` (FastAPI runs it in its thread pool, as the manager is synchronous) that
makes one call on the manager or the jobs and wraps the result in the success envelope. Errors are
raised, never returned: ``errors.handle_error`` turns them into the failure envelope. The two routes
that wait on a download (``"wait": true`` and the event stream) are async instead, so that waiting
holds no thread of the pool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from ..errors import ERROR_TABLE, InvalidRequestError
from ..exchange import loads_document
from ..jobs import ACTIVE, DownloadJobs, error_status
from ..manager import ModelManager
from . import schemas as s
from .errors import envelope
from .guard import require_json
from .metrics import ApiMetrics

JSON_ONLY = [Depends(require_json)]
"""On every route that changes state (see ``guard.require_json``)."""
BODY_REQUIRED_IN_DOCS: dict[str, Any] = {"requestBody": {"required": True}}
"""For POSTs whose fields are all optional: documented as taking a JSON object (``{}`` will do), which is
what clients should send; an empty body with the JSON content type is accepted as well."""


def _error_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": s.ErrorResponse} for code in statuses}


COMMON_ERRORS = (401, 403, 413, 415, 422, 500, 503)
"""Statuses any route with a body may answer (guard, validation, store, Ollama)."""
ORIGIN_ERRORS = (401, 403, 422, 500)
"""The same for routes without a body."""


def ok(**data: Any) -> JSONResponse:
    """The success envelope: ``{"success": true, ...data}``."""
    return JSONResponse({"success": True, **data})


def accepted(**data: Any) -> JSONResponse:
    """The success envelope with 202: the work goes on after the answer."""
    return JSONResponse({"success": True, **data}, status_code=202)


def _doc(model: type[Any], *errors: int, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}, **_error_doc(*errors)}


async def _raw_body(request: Request) -> bytes:
    """The body as sent, for the import document (parsed strictly by ``loads_document``)."""
    return await request.body()


def build_router(manager: ModelManager, jobs: DownloadJobs, metrics: ApiMetrics) -> APIRouter:
    """All endpoints, bound to one manager."""
    router = APIRouter()
    _model_routes(router, manager)
    _operation_routes(router, manager, metrics)
    _download_routes(router, jobs)
    _service_routes(router, manager, metrics)
    return router


def _model_routes(router: APIRouter, manager: ModelManager) -> None:
    listings: dict[tuple[Any, ...], bytes] = {}

    @router.get("/api/model/list", tags=["models"], responses=_doc(s.ModelListResponse, *ORIGIN_ERRORS))
    def list_models(
        purpose: Annotated[
            str | None,
            Query(
                description="speed, balanced, quality or specialized (any case)",
                json_schema_extra={"enum": ["speed", "balanced", "quality", "specialized"]},
            ),
        ] = None,
        max_vram: Annotated[
            float | None, Query(ge=0, le=1_000_000, description="Only models that fit in this many GB")
        ] = None,
        installed_only: Annotated[bool, Query(description="true/false/1/0")] = False,
    ) -> Response:
        """Every known model (catalog and installed), filtered."""
        # Apps poll this: the rendered answer is reused until the store or Ollama's state changes.
        key = (purpose, max_vram, installed_only, manager.listing_marker())
        body = listings.get(key)
        if body is None:
            models = manager.list_available_models(
                installed_only=installed_only, purpose=purpose, max_vram_gb=max_vram
            )
            body = bytes(ok(models=models, count=len(models)).body)
            if len(listings) >= 64:
                listings.clear()
            listings[key] = body
        return Response(body, media_type="application/json")

    @router.get("/api/model/installed", tags=["models"], responses=_doc(s.ModelListResponse, *ORIGIN_ERRORS))
    def installed_models() -> JSONResponse:
        """The models Ollama has on disk."""
        models = manager.list_available_models(installed_only=True)
        return ok(models=models, count=len(models))

    @router.get(
        "/api/model/current", tags=["models"], responses=_doc(s.CurrentModelResponse, *ORIGIN_ERRORS, 409)
    )
    def current_model() -> JSONResponse:
        """The selected model (null when none) and its metadata. 409 when Ollama no longer has it."""
        name = manager.current_model()
        return ok(model=name, info=manager.get_model_info(name) if name else None)

    @router.get(
        "/api/model/info/{name:path}",
        tags=["models"],
        responses=_doc(s.ModelInfoResponse, *ORIGIN_ERRORS, 404),
    )
    def model_info(
        name: Annotated[str, Path(description=s.MODEL_DESCRIPTION, json_schema_extra=s.MODEL_NAME_SCHEMA)],
    ) -> JSONResponse:
        """Metadata of one model; the name may contain ':' and '/'."""
        return ok(model=manager.model_info(name))

    @router.get(
        "/api/model/statistics", tags=["models"], responses=_doc(s.StatisticsResponse, *ORIGIN_ERRORS, 404)
    )
    def statistics(
        model: Annotated[
            str | None,
            Query(description="One model's statistics only", json_schema_extra=s.MODEL_NAME_SCHEMA),
        ] = None,
    ) -> JSONResponse:
        """Usage statistics of every model, or of one."""
        return ok(statistics=manager.statistics(model) if model is not None else manager.all_statistics())


def _operation_routes(router: APIRouter, manager: ModelManager, metrics: ApiMetrics) -> None:
    @router.post(
        "/api/model/switch",
        dependencies=JSON_ONLY,
        tags=["operations"],
        responses=_doc(s.SwitchResponse, *COMMON_ERRORS, 404, 409),
    )
    def switch(body: s.ModelRequest) -> JSONResponse:
        """Load a model in Ollama, unload the previous one, remember the choice."""
        meta = manager.switch(body.model)
        return ok(model=meta["name"], message=f"Switched to {meta['name']}", info=meta)

    @router.delete(
        "/api/model/delete",
        dependencies=JSON_ONLY,
        tags=["operations"],
        responses=_doc(s.ModelMessageResponse, *COMMON_ERRORS, 404, 409),
    )
    def delete(
        model: Annotated[
            str | None,
            Query(description="The model, when no JSON body is sent", json_schema_extra=s.MODEL_NAME_SCHEMA),
        ] = None,
        body: Annotated[s.ModelRequest | None, Body()] = None,
    ) -> JSONResponse:
        """Delete a model from Ollama: ``{"model": ...}`` as the body, or ``?model=``."""
        if body is not None and model is not None and body.model != model:
            raise InvalidRequestError("the body and ?model= name different models")
        name = body.model if body is not None else model
        if name is None:
            raise InvalidRequestError('send {"model": "<name>"} or ?model=<name>')
        return ok(model=name, message=manager.delete(name))

    @router.post(
        "/api/model/recommend",
        dependencies=JSON_ONLY,
        openapi_extra=BODY_REQUIRED_IN_DOCS,
        tags=["operations"],
        responses=_doc(s.RecommendResponse, *COMMON_ERRORS),
    )
    def recommend(body: Annotated[s.RecommendRequest | None, Body()] = None) -> JSONResponse:
        """The best catalog model for a priority within the VRAM (detected when not given)."""
        body = body or s.RecommendRequest()
        vram = body.available_vram_gb if body.available_vram_gb is not None else manager.available_vram_gb()
        result = manager.recommend(vram, body.priority)
        return ok(**result.to_dict(), available_vram_gb=vram, priority=body.priority.strip().lower())

    @router.post(
        "/api/model/check_compatibility",
        dependencies=JSON_ONLY,
        tags=["operations"],
        responses=_doc(s.CompatibilityResponse, *COMMON_ERRORS, 404),
    )
    def check_compatibility(body: s.CompatibilityRequest) -> JSONResponse:
        """Whether a model fits in the VRAM (detected when not given)."""
        vram = body.available_vram_gb if body.available_vram_gb is not None else manager.available_vram_gb()
        return ok(**manager.compatibility(body.model, vram).to_dict())

    @router.post(
        "/api/model/sync",
        dependencies=JSON_ONLY,
        openapi_extra=BODY_REQUIRED_IN_DOCS,
        tags=["operations"],
        responses=_doc(s.SyncResponse, *COMMON_ERRORS),
    )
    def sync(body: Annotated[s.EmptyRequest | None, Body()] = None) -> JSONResponse:
        """Read what Ollama has installed; answers what was added and removed."""
        return ok(**manager.sync())

    @router.post(
        "/api/model/export",
        dependencies=JSON_ONLY,
        openapi_extra=BODY_REQUIRED_IN_DOCS,
        tags=["metadata"],
        responses=_doc(s.ExportDocument, *COMMON_ERRORS),
    )
    def export(body: Annotated[s.EmptyRequest | None, Body()] = None) -> JSONResponse:
        """The export document itself, as the body (save it; POST it to /api/model/import)."""
        return JSONResponse(manager.export_data())

    @router.post(
        "/api/model/import",
        dependencies=JSON_ONLY,
        tags=["metadata"],
        responses=_doc(s.MessageResponse, *COMMON_ERRORS),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExportDocument"}}},
            }
        },
    )
    def import_(raw: Annotated[bytes, Depends(_raw_body)]) -> JSONResponse:
        """Validate an export document whole, then apply it in one transaction."""
        return ok(message=manager.import_data(loads_document(raw)))

    @router.post(
        "/api/model/usage",
        dependencies=JSON_ONLY,
        tags=["metadata"],
        responses=_doc(s.UsageResponse, *COMMON_ERRORS),
    )
    def usage(body: s.UsageRequest) -> JSONResponse:
        """Record one use of a model (for apps not written in Python); answers the name it is kept under."""
        manager.record_usage(body.model, body.inference_time, body.success)
        name = manager.canonical_name(body.model)
        metrics.usage(name, body.inference_time, body.success)
        return ok(model=name)


def _download_routes(router: APIRouter, jobs: DownloadJobs) -> None:
    @router.post(
        "/api/model/download",
        dependencies=JSON_ONLY,
        tags=["downloads"],
        status_code=202,
        responses={
            200: {"model": s.StartedJobResponse, "description": 'The job ended ("wait": true)'},
            **_doc(s.StartedJobResponse, *COMMON_ERRORS, 404, 409, 502, status=202),
        },
    )
    async def download(body: s.DownloadRequest) -> JSONResponse:
        """Start (or join) a background download; ``"wait": true`` blocks until it ends.

        Async so that a waiting request holds no thread of the pool: many clients waiting on long
        pulls must not starve the other endpoints.
        """
        job, started = await run_in_threadpool(jobs.start, body.model)
        if not body.wait:
            return accepted(job=job, started=started)
        job = await jobs.ended(job["id"])
        if job["status"] == "succeeded":
            return ok(job=job, started=started, message=job["message"])
        error = job["error"] or {}
        return JSONResponse(
            envelope(error, job=job, started=started), status_code=error_status(error.get("error", ""))
        )

    @router.get("/api/model/downloads", tags=["downloads"], responses=_doc(s.JobListResponse, *ORIGIN_ERRORS))
    def downloads() -> JSONResponse:
        """Recent download jobs, newest first."""
        found = jobs.recent()
        return ok(jobs=found, count=len(found))

    @router.get(
        "/api/model/download/{job_id}", tags=["downloads"], responses=_doc(s.JobResponse, *ORIGIN_ERRORS, 404)
    )
    def download_job(job_id: str) -> JSONResponse:
        """One job's state."""
        return ok(job=jobs.get(job_id))

    @router.delete(
        "/api/model/download/{job_id}",
        tags=["downloads"],
        responses={
            202: {"model": s.JobResponse, "description": "Cancel requested; the pull stops at its next line"},
            **_doc(s.JobResponse, *ORIGIN_ERRORS, 404, 409),
        },
    )
    def cancel_download(job_id: str) -> JSONResponse:
        """Cancel a job (Ollama keeps what was fetched, so a new download resumes)."""
        job = jobs.cancel(job_id)
        return accepted(job=job) if job["status"] in ACTIVE else ok(job=job)

    @router.get(
        "/api/model/download/{job_id}/events",
        tags=["downloads"],
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: 'progress' with the job on each change, 'end' with the "
                "final job; ': ping' comments while idle",
                # OpenAPI 3.1 describes a stream by the schema of one event (itemSchema).
                "content": {
                    "text/event-stream": {
                        "itemSchema": {
                            "type": "object",
                            "required": ["event", "data"],
                            "properties": {
                                "event": {"enum": ["progress", "end"]},
                                "id": {"type": "string"},
                                "data": {
                                    "type": "string",
                                    "contentMediaType": "application/json",
                                    "contentSchema": {"$ref": "#/components/schemas/DownloadJob"},
                                },
                            },
                        }
                    }
                },
            },
            **_error_doc(*ORIGIN_ERRORS, 404),
        },
    )
    async def download_events(job_id: str) -> StreamingResponse:
        """Follow a job live. Closing the stream does not cancel the job."""
        await run_in_threadpool(jobs.get, job_id)  # 404 before the stream starts
        return StreamingResponse(
            _sse(jobs.follow(job_id)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _sse(updates: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    version = 0
    async for job in updates:
        if job is None:
            yield b": ping\n\n"
            continue
        version += 1
        event = "progress" if job["status"] in ACTIVE else "end"
        yield f"event: {event}\nid: {version}\ndata: {json.dumps(job)}\n\n".encode()


def _service_routes(router: APIRouter, manager: ModelManager, metrics: ApiMetrics) -> None:
    @router.get(
        "/api/health",
        tags=["service"],
        responses={**_doc(s.HealthResponse, *ORIGIN_ERRORS), 503: {"model": s.ErrorResponse}},
    )
    def health() -> JSONResponse:
        """Whether the store and Ollama answer (503 with the same details when one does not)."""
        report = manager.health()
        if report["ok"]:
            return ok(**report)
        code = "ollama_unavailable" if report["store"]["ok"] else "store_error"
        kind = ERROR_TABLE[code]
        reason = report["ollama"].get("error") if report["store"]["ok"] else report["store"].get("error")
        error = {"error": code, "message": reason or kind.text, "solution": kind.solution}
        return JSONResponse(envelope(error, **report), status_code=503)

    @router.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_error_doc(*ORIGIN_ERRORS),
        },
    )
    def prometheus_metrics() -> Response:
        """Usage counts, inference-time histogram, download bytes and failures."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
