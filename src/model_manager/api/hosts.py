"""The fleet over REST: ``/api/hosts`` (list, add, remove), and what the ``host`` query or body field of
the other routes chooses.

A host's name runs the route against that host's manager (``on_host``); ``all`` asks every host at once
(the listing, what is loaded, statistics, sync, recommendations: the ``fleet_*`` answers here); ``auto``
lets placement choose (download, switch). Left out, every route answers exactly as it does for a server
of one host.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from ..fleet import Fleet, fleet_models_dicts
from ..manager import ManagerCore
from ..types import Priority
from . import host_schemas as hs
from .common import COMMON_ERRORS, JSON_ONLY, ORIGIN_ERRORS, doc, ok

router = APIRouter()


async def _fleet(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


FleetDep = Annotated[Fleet, Depends(_fleet)]


def host_query(words: str = "") -> Any:
    """The ``?host=`` of a GET route (its type: ``schemas.AnyHost``, ``HostOrAll``; see ``host_field``)."""
    extra = f", or {words}" if words else ""
    return Query(description=f"A fleet host's name (GET /api/hosts; local is this server's own){extra}")


def is_all(host: str | None) -> bool:
    return host is not None and host.strip().lower() == "all"


def on_host(manager: ManagerCore, fleet: Fleet, host: str | None) -> ManagerCore:
    """The manager of ``host`` (None: the server's own). Raises InvalidRequestError (``all``/``auto``
    where one host is wanted, a bad name), UnknownHostError."""
    return manager if host is None else fleet.manager(host)


# --- /api/hosts -----------------------------------------------------------------------------------


@router.get("/api/hosts", tags=["hosts"], responses=doc(hs.HostListResponse, *ORIGIN_ERRORS))
def hosts(fleet: FleetDep) -> JSONResponse:
    """Every host (this server's own first), what is known of its memory, and whether its Ollama answers
    (every host asked at once)."""
    found = [{**a.host_dict(), "version": a.value} for a in fleet.check()]
    return ok(hosts=found, count=len(found))


@router.post(
    "/api/hosts",
    dependencies=JSON_ONLY,
    tags=["hosts"],
    status_code=201,
    responses={
        200: {"model": hs.HostResponse, "description": "An existing host, changed"},
        **doc(hs.HostResponse, *COMMON_ERRORS, status=201),
    },
)
def add_host(fleet: FleetDep, body: hs.HostRequest) -> JSONResponse:
    """Add a host (201), or change the URL and ``vram_gb`` of one (200). Every manager sharing the store
    sees it."""
    host, new = fleet.add_host(body.name, body.url, body.vram_gb)
    verb = "Added" if new else "Updated"
    answer = ok(host=host.to_dict(), added=new, message=f"{verb} host {host.name} at {host.url}")
    answer.status_code = 201 if new else 200
    return answer


@router.delete("/api/hosts/{name}", tags=["hosts"], responses=doc(hs.HostResponse, *ORIGIN_ERRORS, 404))
def remove_host(
    fleet: FleetDep,
    name: Annotated[str, Path(description="The host's name", json_schema_extra=hs.host_schema())],
) -> JSONResponse:
    """Remove a host from the store; its recorded usage and jobs are kept."""
    host = fleet.remove_host(name)
    return ok(host=host.to_dict(), message=f"Removed host {host.name}; its recorded usage and jobs are kept")


# --- host=all answers -----------------------------------------------------------------------------


def fleet_listing(
    fleet: Fleet, installed_only: bool, purpose: str | None, max_vram: float | None
) -> JSONResponse:
    models, answers = fleet.listing("all", installed_only, purpose, max_vram)
    rows = fleet_models_dicts(models)
    known = all(a.ok for a in answers)
    return ok(
        models=rows, count=len(rows), installed_state_known=known, hosts=[a.host_dict() for a in answers]
    )


def fleet_running(fleet: Fleet) -> JSONResponse:
    answers = fleet.running("all")
    rows = [{**m.to_dict(), "host": a.host.name} for a in answers for m in a.value or []]
    return ok(models=rows, count=len(rows), hosts=[a.host_dict() for a in answers])


def fleet_sync(fleet: Fleet) -> JSONResponse:
    answers = fleet.sync("all")
    return ok(hosts=[{**a.host_dict(), "sync": a.value.to_dict() if a.value else None} for a in answers])


def fleet_recommend(
    fleet: Fleet, vram_gb: float | None, priority: str, capability: str | None = None
) -> JSONResponse:
    answers = fleet.recommend("all", vram_gb, priority, capability=capability)
    found = [{**a.host_dict(), "recommendation": a.value.to_dict() if a.value else None} for a in answers]
    return ok(priority=Priority.parse(priority).value, hosts=found)
