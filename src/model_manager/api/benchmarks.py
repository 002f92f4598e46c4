"""Benchmark jobs and their endpoints: ``POST /api/model/benchmark`` times a fixed prompt on an installed model
through Ollama (``ManagerCore.benchmark``) as a background job, with the download jobs' machinery
(``jobs.Jobs``): one job per model at a time, kept in the store, followed by polling or by events. One
benchmark runs at a time, so that two never share the machine they measure."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..errors import (
    BenchmarkCancelledError,
    BenchmarkInterruptedError,
    BenchmarkJobConflictError,
    BenchmarkJobNotFoundError,
)
from . import schemas as s
from .common import COMMON_ERRORS, JSON_ONLY, ORIGIN_ERRORS, Manager, accepted, doc, ok
from .downloads import EVENTS_DOC, job_events, start_job
from .host_schemas import AnyHost, host_field
from .hosts import FleetDep, on_host
from .job_record import JobKind
from .jobs import ACTIVE, Jobs
from .schemas import _OPEN, _STRICT, MODEL_FIELD, DownloadJob

if TYPE_CHECKING:
    from ..manager import ManagerCore
    from ..types import ProgressCallback

BENCHMARK = JobKind(
    "benchmark",
    BenchmarkJobNotFoundError,
    BenchmarkJobConflictError,
    BenchmarkCancelledError,
    BenchmarkInterruptedError,
)


class BenchmarkJobs(Jobs):
    """The benchmark jobs: each runs ``manager.benchmark`` and keeps its figures as the job's result."""

    kind = BENCHMARK

    def _work(
        self, manager: ManagerCore, model: str, progress: ProgressCallback
    ) -> tuple[str, dict[str, Any] | None]:
        run = manager.benchmark(model, progress)
        figures = run.to_dict()
        return (
            f"Benchmarked {run.model}: {figures['tokens_per_second']} tok/s on Ollama host {run.host}",
            figures,
        )


async def _benchmarks(request: Request) -> BenchmarkJobs:
    jobs: BenchmarkJobs = request.app.state.benchmarks
    return jobs


Benchmarks = Annotated[BenchmarkJobs, Depends(_benchmarks)]


class BenchmarkRequest(BaseModel):
    model_config = _STRICT
    model: str = MODEL_FIELD
    wait: bool = Field(default=False, description="Block until the benchmark ends instead of answering 202")
    host: AnyHost | None = host_field()


class BenchmarkJob(DownloadJob):
    """A benchmark job: ``detail`` says what it is doing; ``result`` holds the figures once it succeeded."""

    completed: int = Field(description="Always 0: a benchmark reports no bytes")
    total: int = Field(description="Always 0")
    detail: str = Field(description="What the benchmark is doing")
    result: s.BenchmarkResult | None = Field(  # type: ignore[assignment]
        default=None, description="The benchmark's figures once it succeeded"
    )


class BenchmarkJobResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    job: BenchmarkJob


class StartedBenchmarkResponse(BenchmarkJobResponse):
    started: bool = Field(description="False when the model's running benchmark was joined")


class BenchmarkJobListResponse(BaseModel):
    success: Literal[True]
    jobs: list[BenchmarkJob]
    count: int


def _events_doc() -> dict[int | str, dict[str, Any]]:
    """The download events' documentation, of benchmark jobs."""
    found = copy.deepcopy(EVENTS_DOC)
    item = found[200]["content"]["text/event-stream"]["itemSchema"]
    item["properties"]["data"]["contentSchema"] = {"$ref": "#/components/schemas/BenchmarkJob"}
    return found


router = APIRouter()


@router.post(
    "/api/model/benchmark",
    dependencies=JSON_ONLY,
    tags=["benchmarks"],
    status_code=202,
    responses={
        200: {"model": StartedBenchmarkResponse, "description": 'The benchmark ended ("wait": true)'},
        **doc(StartedBenchmarkResponse, *COMMON_ERRORS, 404, 409, 502, 504, status=202),
    },
)
async def benchmark(
    manager: Manager, fleet: FleetDep, jobs: Benchmarks, body: BenchmarkRequest
) -> JSONResponse:
    """Start (or join) a benchmark of an installed model: a fixed prompt through Ollama (a vision model also
    gets the bundled test photo), timed by Ollama's own fields and kept for that Ollama host (``host``;
    default: this server's). 404 for an unknown model or host and 409 for a model not installed there, at
    once; ``"wait": true`` blocks until it ends."""
    target = on_host(manager, fleet, body.host)
    info = await run_in_threadpool(target.model_info, body.model)
    target.benchmarks.check(info)
    return await start_job(jobs, body.model, body.wait, body.host)


@router.get(
    "/api/model/benchmarks", tags=["benchmarks"], responses=doc(BenchmarkJobListResponse, *ORIGIN_ERRORS)
)
def benchmarks(jobs: Benchmarks) -> JSONResponse:
    """Recent benchmark jobs, newest first."""
    found = jobs.recent()
    return ok(jobs=found, count=len(found))


@router.get(
    "/api/model/benchmark/{job_id}",
    tags=["benchmarks"],
    responses=doc(BenchmarkJobResponse, *ORIGIN_ERRORS, 404),
)
def benchmark_job(jobs: Benchmarks, job_id: str) -> JSONResponse:
    """One benchmark job's state, with its figures once it succeeded."""
    return ok(job=jobs.get(job_id))


@router.delete(
    "/api/model/benchmark/{job_id}",
    tags=["benchmarks"],
    responses={
        202: {
            "model": BenchmarkJobResponse,
            "description": "Cancel requested; a running benchmark stops once Ollama answers",
        },
        **doc(BenchmarkJobResponse, *ORIGIN_ERRORS, 404, 409),
    },
)
def cancel_benchmark(jobs: Benchmarks, job_id: str) -> JSONResponse:
    """Cancel a benchmark job: a queued one at once; a running one once Ollama answers, keeping no figures."""
    job = jobs.cancel(job_id)
    return accepted(job=job) if job["status"] in ACTIVE else ok(job=job)


@router.get(
    "/api/model/benchmark/{job_id}/events",
    tags=["benchmarks"],
    response_class=StreamingResponse,
    responses=_events_doc(),
)
async def benchmark_events(jobs: Benchmarks, job_id: str) -> StreamingResponse:
    """Follow a benchmark job live. Closing the stream does not cancel it."""
    return await job_events(jobs, job_id)
