"""The REST API: ``create_app(manager)`` builds a FastAPI app over one manager (its raising core).

Tests and users' own applications build it directly (``TestClient(create_app(manager))``, or mount it);
``server.serve`` runs it under uvicorn with the bind and token rules. The app owns its download jobs
and metrics registry, never the manager: closing the manager stays with whoever made it.

    api/
      server.py     uvicorn, the bind rule, ``model-manager serve``
      guard.py      Host/Origin allow-list, bearer token, JSON-only writes, body size limit
      common.py     the app's parts as dependencies, the success envelope, documented statuses
      routes.py     models, operations, metadata and service endpoints, one manager call each
      downloads.py  download-job endpoints and their event stream
      benchmarks.py benchmark jobs and their endpoints (on the download jobs' machinery)
      hosts.py      /api/hosts, and what the other routes' ``host`` field chooses
      jobs.py       the jobs themselves (background pulls and benchmarks kept in the store, on a host)
      job_record.py one job as clients see it and the store keeps it
      schemas.py    request bodies and documented response shapes
      host_schemas.py  the same for the fleet's hosts
      recommend_schemas.py  the answers of recommend, compatibility and plan
      errors.py     the error envelope for every failure
      metrics.py    Prometheus metrics in a per-app registry
      dashboard.py  the dashboard page at /, its files, and which optional endpoints exist
      machine.py    read-only GPU, loaded-model and usage-history endpoints the dashboard draws
      assets.py     files shipped in the package (static/), served gzipped with ETags
      docs.py       /docs and /redoc from those files, so they work offline
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ModelManagerError
from ..fleet import Fleet
from ..manager import ManagerCore
from . import benchmarks, dashboard, docs, downloads, hosts, machine, routes
from .assets import GzipWhereAccepted
from .errors import handle_error
from .guard import DEFAULT_MAX_BODY_BYTES, Guard
from .jobs import DownloadJobs
from .metrics import ApiMetrics

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

DESCRIPTION = """Manage local LLMs served by Ollama: catalog, fit, recommendations, downloads,
switching and usage statistics.

Every answer is JSON with `success`. Failures carry `error` (a stable code), `message` and `solution`.
Requests that change state send `Content-Type: application/json`. Downloads run as background jobs:
`POST /api/model/download` answers 202 with the job; follow it at `/api/model/download/{id}/events`.
Benchmarks run as jobs the same way (`POST /api/model/benchmark`)."""


def _version() -> str:
    try:
        return version("model-manager")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    manager: ManagerCore,
    *,
    token: str | None = None,
    allowed_hosts: Collection[str] = (),
    allowed_origins: Collection[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_parallel_downloads: int = 2,
) -> FastAPI:
    """A FastAPI app serving ``manager``.

    ``token`` (default: the manager's ``MODEL_MANAGER_API_TOKEN`` setting) is then required as a bearer
    token on every request. ``allowed_hosts`` are Host names accepted besides loopback ones (``"*"``:
    any); ``allowed_origins`` are browser origins accepted besides the server's own.
    """
    token = token or manager.settings.api_token
    metrics = ApiMetrics(manager)
    fleet = Fleet(manager)
    jobs = DownloadJobs(
        manager,
        fleet=fleet,
        max_parallel=max_parallel_downloads,
        on_bytes=metrics.downloaded,
        on_finish=metrics.job_finished,
    )
    metrics.count_active_with(jobs.active_count)
    benchmark_jobs = benchmarks.BenchmarkJobs(manager, max_parallel=1, fleet=fleet)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(jobs.close)
        await run_in_threadpool(benchmark_jobs.close)
        fleet.close()

    # docs_url/redoc_url None: FastAPI's own pages load Swagger UI and ReDoc from a CDN; docs.py serves
    # the copies shipped in the package instead.
    app = FastAPI(
        title="model-manager",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.manager = manager
    app.state.jobs = jobs
    app.state.benchmarks = benchmark_jobs
    app.state.fleet = fleet
    app.state.metrics = metrics
    app.state.listings = {}
    app.include_router(routes.router)
    app.include_router(downloads.router)
    app.include_router(benchmarks.router)
    app.include_router(hosts.router)
    app.include_router(machine.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router)
    for exc_type in (ModelManagerError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_type, handle_error)
    # JSON answers are compressed for clients that accept it (the model list of an 82-model catalog is
    # 220 KB, 30 KB gzipped); event streams and the packaged files (compressed once, in assets) pass as they are.
    app.add_middleware(GzipWhereAccepted, minimum_size=1024, compresslevel=6)
    app.add_middleware(
        Guard,
        token=token,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
        max_body_bytes=max_body_bytes,
        public_paths=dashboard.PUBLIC_PATHS,
        public_prefixes=dashboard.PUBLIC_PREFIXES,
    )
    app.openapi = lambda: _openapi(app, secured=token is not None)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, *, secured: bool) -> dict[str, Any]:
    """The schema, with the bearer scheme declared when a token is required."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        if secured:
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
