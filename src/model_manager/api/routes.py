"""The endpoints of models, operations, metadata and the service (downloads are in ``downloads.py``).

Each route is a module-level plain ``def`` (FastAPI runs it in its thread pool, as the manager is
synchronous) that takes the app's manager as a dependency, makes one call on the raising core and wraps
the result in the success envelope. Errors are raised, never returned: ``errors.handle_error`` turns
them into the failure envelope.
"""

from __future__ import annotations

import gzip
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import InvalidRequestError
from ..exchange import loads_document
from ..types import ModelPurpose
from ..units import MAX_GB
from . import host_schemas as hs
from . import recommend_schemas as rs
from . import schemas as s
from .assets import accepts_gzip
from .common import (
    BODY_REQUIRED_IN_DOCS,
    COMMON_ERRORS,
    JSON_ONLY,
    ORIGIN_ERRORS,
    Manager,
    Metrics,
    doc,
    error_doc,
    ok,
)
from .errors import envelope
from .hosts import FleetDep, fleet_listing, fleet_recommend, fleet_sync, host_query, is_all, on_host

router = APIRouter()

LISTINGS_KEPT = 64


async def _raw_body(request: Request) -> bytes:
    """The body as sent, for the import document (parsed strictly by ``loads_document``)."""
    return await request.body()


# --- models -----------------------------------------------------------------------------------------


@router.get("/api/model/list", tags=["models"], responses=doc(s.ModelListResponse, *ORIGIN_ERRORS, 404))
def list_models(
    request: Request,
    manager: Manager,
    fleet: FleetDep,
    purpose: Annotated[
        str | None,
        Query(
            description=f"{', '.join(ModelPurpose.words())} (any case)",
            json_schema_extra={"enum": list(ModelPurpose.words())},
        ),
    ] = None,
    max_vram: Annotated[
        float | None, Query(ge=0, le=MAX_GB, description="Only models that fit in this many GB")
    ] = None,
    installed_only: Annotated[bool, Query(description="true/false/1/0")] = False,
    host: Annotated[
        hs.HostOrAll | None, host_query("all: every host, with where each model is installed and loaded")
    ] = None,
) -> Response:
    """Every known model (catalog and installed), filtered."""
    if is_all(host):
        return fleet_listing(fleet, installed_only, purpose, max_vram)
    if host is not None:
        manager = on_host(manager, fleet, host)
        memory = manager.memory(max_vram)
        infos = manager.models(installed_only, purpose, max_vram)
        models = [manager.metadata(i, memory=memory) for i in infos]
        known = manager.installed_state_known()
        return ok(
            models=models, count=len(models), installed_state_known=known, host=manager.settings.host_name
        )
    # Apps poll this: the rendered answer is reused until the store, Ollama's state or the memory changes.
    # Kept with its gzip form, so that a polling client that accepts gzip costs no compression either.
    listings: dict[tuple[Any, ...], tuple[bytes, bytes]] = request.app.state.listings
    memory = manager.memory(max_vram)
    marker = manager.listing_marker()  # refreshes installed state first, so the next line is current
    known = manager.installed_state_known()
    key = (purpose, max_vram, installed_only, marker, known, memory.marker())
    found = listings.get(key)
    if found is None:
        infos = manager.models(installed_only, purpose, max_vram)
        models = [manager.metadata(i, memory=memory) for i in infos]
        body = bytes(ok(models=models, count=len(models), installed_state_known=known).body)
        found = (body, gzip.compress(body, 6, mtime=0))
        if len(listings) >= LISTINGS_KEPT:
            listings.clear()
        listings[key] = found
    vary = {"Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(found[1], media_type="application/json", headers={"Content-Encoding": "gzip", **vary})
    return Response(found[0], media_type="application/json", headers=vary)


@router.get("/api/model/installed", tags=["models"], responses=doc(s.ModelListResponse, *ORIGIN_ERRORS, 404))
def installed_models(
    manager: Manager, fleet: FleetDep, host: Annotated[hs.AnyHost | None, host_query()] = None
) -> JSONResponse:
    """The models Ollama has on disk (as last seen when ``installed_state_known`` is false)."""
    manager = on_host(manager, fleet, host)
    memory = manager.memory()
    models = [manager.metadata(i, memory=memory) for i in manager.models(installed_only=True)]
    return ok(models=models, count=len(models), installed_state_known=manager.installed_state_known())


@router.get(
    "/api/model/current", tags=["models"], responses=doc(s.CurrentModelResponse, *ORIGIN_ERRORS, 404, 409)
)
def current_model(
    manager: Manager, fleet: FleetDep, host: Annotated[hs.AnyHost | None, host_query()] = None
) -> JSONResponse:
    """The selected model (null when none) and its metadata, with whether Ollama has it loaded now
    (it unloads an idle model after its keep-alive). 409 when Ollama no longer has it installed."""
    manager = on_host(manager, fleet, host)
    state = manager.current_state()
    name = state.name
    loaded = {k: v for k, v in state.to_dict().items() if k != "current_model"}
    return ok(model=name, info=manager.metadata(manager.model_info(name)) if name else None, **loaded)


@router.get(
    "/api/model/info/{name:path}", tags=["models"], responses=doc(s.ModelInfoResponse, *ORIGIN_ERRORS, 404)
)
def model_info(
    manager: Manager,
    fleet: FleetDep,
    name: Annotated[str, Path(description=s.MODEL_DESCRIPTION, json_schema_extra=s.MODEL_NAME_SCHEMA)],
    host: Annotated[hs.AnyHost | None, host_query()] = None,
) -> JSONResponse:
    """Metadata of one model; the name may contain ':' and '/'."""
    manager = on_host(manager, fleet, host)
    return ok(model=manager.metadata(manager.model_info(name)))


@router.get(
    "/api/model/statistics", tags=["models"], responses=doc(s.StatisticsResponse, *ORIGIN_ERRORS, 404)
)
def statistics(
    manager: Manager,
    fleet: FleetDep,
    model: Annotated[
        str | None, Query(description="One model's statistics only", json_schema_extra=s.MODEL_NAME_SCHEMA)
    ] = None,
    host: Annotated[hs.HostOrAll | None, host_query("all: the totals with each host's share (hosts)")] = None,
) -> JSONResponse:
    """Usage statistics of every model, or of one: the totals over every host, or one host's share."""
    if is_all(host):
        every = fleet.all_statistics(model)
        return ok(statistics=next(iter(every.values())) if model is not None else every)
    if host is not None:
        found = {k: v.to_dict() for k, v in fleet.statistics(host, model).items()}
        one = next(iter(found.values())) if model is not None else found
        return ok(statistics=one, host=fleet.manager(host).settings.host_name)
    if model is not None:
        return ok(statistics=manager.statistics(model).to_dict())
    return ok(statistics={k: v.to_dict() for k, v in manager.all_statistics().items()})


# --- operations -------------------------------------------------------------------------------------


@router.post(
    "/api/model/switch",
    dependencies=JSON_ONLY,
    tags=["operations"],
    responses=doc(s.SwitchResponse, *COMMON_ERRORS, 404, 409, 502, 504),
)
def switch(manager: Manager, fleet: FleetDep, body: s.SwitchRequest) -> JSONResponse:
    """Load a model in Ollama, unload the previous one, remember the choice. 409 at once while another
    switch or delete runs (no request waits for another's turn). ``host`` auto: the host placement picks
    among those that have it (the answer's ``placement`` says why)."""
    if body.host is None:
        result = manager.switch(body.model, wait_s=0)
        info = manager.metadata(result.info, fit=result.fit.to_dict() if result.fit else None)
        return ok(model=result.info.name, message=f"Switched to {result.info.name}", info=info)
    from ..placement import switch as switch_on

    result, where, placement = switch_on(fleet, body.model, body.host, wait_s=0)
    target = fleet.manager(where)
    info = target.metadata(result.info, fit=result.fit.to_dict() if result.fit else None)
    extra = {"placement": placement.to_dict()} if placement else {}
    message = f"Switched {where} to {result.info.name}"
    return ok(model=result.info.name, message=message, info=info, host=where, **extra)


@router.delete(
    "/api/model/delete",
    dependencies=JSON_ONLY,
    tags=["operations"],
    responses=doc(s.ModelMessageResponse, *COMMON_ERRORS, 404, 409),
)
def delete(
    manager: Manager,
    fleet: FleetDep,
    model: Annotated[
        str | None,
        Query(description="The model, when no JSON body is sent", json_schema_extra=s.MODEL_NAME_SCHEMA),
    ] = None,
    body: Annotated[s.HostModelRequest | None, Body()] = None,
    host: Annotated[hs.AnyHost | None, host_query()] = None,
) -> JSONResponse:
    """Delete a model from Ollama: ``{"model": ...}`` as the body, or ``?model=``."""
    if body is not None and model is not None and body.model != model:
        raise InvalidRequestError("the body and ?model= name different models")
    if body is not None and body.host is not None and host is not None and body.host != host:
        raise InvalidRequestError("the body and ?host= name different hosts")
    name = body.model if body is not None else model
    if name is None:
        raise InvalidRequestError('send {"model": "<name>"} or ?model=<name>')
    where = (body.host if body is not None else None) or host
    if where is None:
        return ok(model=name, message=manager.delete(name, wait_s=0))
    target = on_host(manager, fleet, where)
    return ok(model=name, message=target.delete(name, wait_s=0), host=target.settings.host_name)


@router.post(
    "/api/model/recommend",
    dependencies=JSON_ONLY,
    openapi_extra=BODY_REQUIRED_IN_DOCS,
    tags=["operations"],
    responses=doc(rs.RecommendResponse | hs.FleetRecommendResponse, *COMMON_ERRORS, 404),
)
def recommend(
    manager: Manager, fleet: FleetDep, body: Annotated[s.RecommendRequest | None, Body()] = None
) -> JSONResponse:
    """The best catalog model for a priority (and capability) within the VRAM (detected when not given; a
    host's own memory with ``host``, each host's answer with all), with every candidate, best first."""
    body = body or s.RecommendRequest()
    if is_all(body.host):
        return fleet_recommend(fleet, body.available_vram_gb, body.priority, body.capability)
    target = on_host(manager, fleet, body.host)
    result = target.recommend(body.available_vram_gb, body.priority, capability=body.capability)
    extra = {"host": target.settings.host_name} if body.host is not None else {}
    return ok(**result.to_dict(), **extra)


@router.post(
    "/api/model/recommend/all",
    dependencies=JSON_ONLY,
    openapi_extra=BODY_REQUIRED_IN_DOCS,
    tags=["operations"],
    responses=doc(rs.RecommendAllResponse, *COMMON_ERRORS, 404),
)
def recommend_all(
    manager: Manager, fleet: FleetDep, body: Annotated[s.RecommendAllRequest | None, Body()] = None
) -> JSONResponse:
    """The best catalog model of each priority (and of the capability) within the VRAM (a host's own
    memory with ``host``)."""
    body = body or s.RecommendAllRequest()
    target = on_host(manager, fleet, body.host)
    recs = target.recommend_all(body.available_vram_gb, capability=body.capability)
    answers = [r.to_dict() for r in recs]
    shared = {k: answers[0][k] for k in ("capability", "available_vram_gb", "memory_source")}
    for answer in answers:
        for key in ("capability", "available_vram_gb", "memory_source", "memory"):
            answer.pop(key, None)
    extra = {"host": target.settings.host_name} if body.host is not None else {}
    return ok(**shared, recommendations=answers, **extra)


@router.post(
    "/api/model/check_compatibility",
    dependencies=JSON_ONLY,
    tags=["operations"],
    responses=doc(rs.CompatibilityResponse, *COMMON_ERRORS, 404),
)
def check_compatibility(manager: Manager, fleet: FleetDep, body: s.CompatibilityRequest) -> JSONResponse:
    """Whether a model fits in the VRAM (detected when not given; the host's own with ``host``), with its
    fit level and context."""
    target = on_host(manager, fleet, body.host)
    return ok(**target.compatibility(body.model, body.available_vram_gb).to_dict())


@router.post(
    "/api/model/plan",
    dependencies=JSON_ONLY,
    tags=["operations"],
    responses=doc(rs.PlanResponse, *COMMON_ERRORS, 404),
)
def plan(manager: Manager, fleet: FleetDep, body: s.PlanRequest) -> JSONResponse:
    """Memory at each context (2,048 up to the model's maximum) for each KV cache type, the largest context
    that fits the VRAM (detected when not given), and the layers on the GPU where it does not fit."""
    result = on_host(manager, fleet, body.host).plan(
        body.model, body.available_vram_gb, body.context_length, body.kv_cache_type, body.num_parallel
    )
    return ok(**result.to_dict())


@router.post(
    "/api/model/sync",
    dependencies=JSON_ONLY,
    openapi_extra=BODY_REQUIRED_IN_DOCS,
    tags=["operations"],
    responses=doc(s.SyncResponse | hs.FleetSyncResponse, *COMMON_ERRORS, 404),
)
def sync(
    manager: Manager, fleet: FleetDep, body: Annotated[s.SyncRequest | None, Body()] = None
) -> JSONResponse:
    """Read what Ollama has installed; answers what was added and removed (``host`` all: each host's)."""
    host = body.host if body is not None else None
    if is_all(host):
        return fleet_sync(fleet)
    return ok(**on_host(manager, fleet, host).sync().to_dict())


# --- metadata ---------------------------------------------------------------------------------------


@router.post(
    "/api/model/export",
    dependencies=JSON_ONLY,
    openapi_extra=BODY_REQUIRED_IN_DOCS,
    tags=["metadata"],
    responses=doc(s.ExportDocument, *COMMON_ERRORS),
)
def export(manager: Manager, body: Annotated[s.EmptyRequest | None, Body()] = None) -> JSONResponse:
    """The export document itself, as the body (save it; POST it to /api/model/import)."""
    return JSONResponse(manager.export_data())


@router.post(
    "/api/model/import",
    dependencies=JSON_ONLY,
    tags=["metadata"],
    responses=doc(s.MessageResponse, *COMMON_ERRORS),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExportDocument"}}},
        }
    },
)
def import_(manager: Manager, raw: Annotated[bytes, Depends(_raw_body)]) -> JSONResponse:
    """Validate an export document whole, then apply it in one transaction."""
    return ok(message=manager.import_data(loads_document(raw)))


@router.post(
    "/api/model/usage",
    dependencies=JSON_ONLY,
    tags=["metadata"],
    responses=doc(s.UsageResponse, *COMMON_ERRORS, 404),
)
def usage(manager: Manager, metrics: Metrics, body: s.UsageRequest) -> JSONResponse:
    """Record one use of a model (for apps not written in Python) on ``host`` (default: this server's);
    answers the name it is kept under."""
    timing = body.timing.model_dump() if body.timing is not None else {}
    manager.record_usage(body.model, body.inference_time, body.success, host=body.host, **timing)
    name = manager.canonical_name(body.model)
    metrics.usage(name, body.inference_time, body.success)
    return ok(model=name)


# --- the service ------------------------------------------------------------------------------------


@router.get(
    "/api/health",
    tags=["service"],
    responses={**doc(s.HealthResponse, *ORIGIN_ERRORS), 503: {"model": s.ErrorResponse}},
)
def health(manager: Manager) -> JSONResponse:
    """Liveness: 200 while the server and its store work, with Ollama's state inside (``ollama.ok``);
    503 only when the store fails. Ollama being down is no reason to restart this server."""
    report = manager.health()
    if report.store_failure is None:
        return ok(**report.to_dict())
    return JSONResponse(envelope(report.store_failure.to_dict(), **report.to_dict()), status_code=503)


@router.get(
    "/api/ready",
    tags=["service"],
    responses={**doc(s.HealthResponse, *ORIGIN_ERRORS), 503: {"model": s.ErrorResponse}},
)
def ready(manager: Manager) -> JSONResponse:
    """Readiness: 200 when the store and Ollama both answer; 503 with the same details while Ollama is
    unreachable (or the store fails)."""
    report = manager.health()
    if report.failure is None:
        return ok(**report.to_dict())
    return JSONResponse(envelope(report.failure.to_dict(), **report.to_dict()), status_code=503)


@router.get(
    "/metrics",
    tags=["service"],
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_doc(*ORIGIN_ERRORS),
    },
)
def prometheus_metrics(metrics: Metrics) -> Response:
    """Usage counts, inference-time histogram, download bytes and failures."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
