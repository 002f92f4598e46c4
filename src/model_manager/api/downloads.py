"""The download-job endpoints. The two routes that wait on a download (``"wait": true`` and the event
stream) are async, so that waiting holds no thread of the pool: many clients waiting on long pulls must
not starve the other endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import http_status_for
from . import schemas as s
from .common import COMMON_ERRORS, JSON_ONLY, ORIGIN_ERRORS, Jobs, accepted, doc, error_doc, ok
from .errors import envelope
from .jobs import ACTIVE
from .jobs import Jobs as JobsOfAKind

router = APIRouter()

EVENTS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: 'progress' with the job on each change, 'end' with the final job; "
        "': ping' comments while idle",
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
    **error_doc(*ORIGIN_ERRORS, 404),
}


@router.post(
    "/api/model/download",
    dependencies=JSON_ONLY,
    tags=["downloads"],
    status_code=202,
    responses={
        200: {"model": s.StartedJobResponse, "description": 'The job ended ("wait": true)'},
        **doc(s.StartedJobResponse, *COMMON_ERRORS, 404, 409, 502, status=202),
    },
)
async def download(jobs: Jobs, body: s.DownloadRequest) -> JSONResponse:
    """Start (or join) a background download; ``"wait": true`` blocks until it ends. ``host``: the host
    to pull on (``auto``: where placement puts it; an interrupted job of the model resumes on its host)."""
    return await start_job(jobs, body.model, body.wait, body.host)


async def start_job(jobs: JobsOfAKind, model: str, wait: bool, host: str | None = None) -> JSONResponse:
    """Start (or join) ``model``'s job on ``host``: 202 with it at once, or (``wait``) its end, as success
    or failure."""
    job, started = await run_in_threadpool(jobs.start, model, host)
    if not wait:
        return accepted(job=job, started=started)
    job = await jobs.ended(job["id"])
    if job["status"] == "succeeded":
        return ok(job=job, started=started, message=job["message"])
    error = job["error"] or {}
    return JSONResponse(
        envelope(error, job=job, started=started), status_code=http_status_for(error.get("error", ""))
    )


@router.get("/api/model/downloads", tags=["downloads"], responses=doc(s.JobListResponse, *ORIGIN_ERRORS))
def downloads(jobs: Jobs) -> JSONResponse:
    """Recent download jobs, newest first."""
    found = jobs.recent()
    return ok(jobs=found, count=len(found))


@router.get(
    "/api/model/download/{job_id}", tags=["downloads"], responses=doc(s.JobResponse, *ORIGIN_ERRORS, 404)
)
def download_job(jobs: Jobs, job_id: str) -> JSONResponse:
    """One job's state."""
    return ok(job=jobs.get(job_id))


@router.delete(
    "/api/model/download/{job_id}",
    tags=["downloads"],
    responses={
        202: {"model": s.JobResponse, "description": "Cancel requested; the pull stops at its next line"},
        **doc(s.JobResponse, *ORIGIN_ERRORS, 404, 409),
    },
)
def cancel_download(jobs: Jobs, job_id: str) -> JSONResponse:
    """Cancel a job (Ollama keeps what was fetched, so a new download resumes)."""
    job = jobs.cancel(job_id)
    return accepted(job=job) if job["status"] in ACTIVE else ok(job=job)


@router.get(
    "/api/model/download/{job_id}/events",
    tags=["downloads"],
    response_class=StreamingResponse,
    responses=EVENTS_DOC,
)
async def download_events(jobs: Jobs, job_id: str) -> StreamingResponse:
    """Follow a job live. Closing the stream does not cancel the job."""
    return await job_events(jobs, job_id)


async def job_events(jobs: JobsOfAKind, job_id: str) -> StreamingResponse:
    """A job's Server-Sent Events (404 before the stream starts for an unknown job)."""
    await run_in_threadpool(jobs.get, job_id)
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
