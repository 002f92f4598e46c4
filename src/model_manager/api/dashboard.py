"""The dashboard: a page at ``/`` that draws the GPU, the models and their record from the REST API, live.

The page is plain ES modules and a stylesheet under ``api/static/`` (no build step), with uPlot for the
charts; ``assets.Assets`` serves them. Everything the page shows comes through the same REST endpoints
and guards as any other client (same origin, JSON writes, the bearer token when one is set), so the page
can do nothing a script could not.

The page and its files carry no data, so they are the only paths served without the token when one is
set (``PUBLIC_PREFIXES``, for the guard): a browser cannot add a header to a page it navigates to. The
page then asks for the token and sends it on every API call.

``GET /api/dashboard`` says which optional endpoints this server has, so that the page shows the plan
chart, the bench button and the "with vision" recommendations only where the API can answer them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ..errors import EndpointNotFoundError
from .assets import Assets
from .common import ORIGIN_ERRORS, doc, ok

router = APIRouter()

PAGE = "index.html"
PUBLIC_PATHS = frozenset({"/"})
PUBLIC_PREFIXES = ("/static/",)
"""GET/HEAD paths the guard serves without the token (still same-origin and same-host only)."""

# The page runs only its own files: no inline script, nothing from another origin, no framing.
# Styles may be inline because uPlot and the bars size their elements with style attributes.
DASHBOARD_CSP = (
    "default-src 'self'; "
    "script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "object-src 'none'; "
    "frame-ancestors 'none'; "
    "base-uri 'self'; "
    "form-action 'self'"
)

_ASSETS = Assets()


class Features(BaseModel):
    plan: bool
    bench: bool
    recommend_capability: bool
    usage_history: bool


class DashboardResponse(BaseModel):
    success: Literal[True]
    version: str
    features: Features


@router.get("/", include_in_schema=False)
def page(request: Request) -> Response:
    """The dashboard page."""
    response = _ASSETS.response(request, PAGE, {"Content-Security-Policy": DASHBOARD_CSP})
    if response is None:  # a broken install: the package lost its files
        raise EndpointNotFoundError("the dashboard's files are missing from the package")
    return response


@router.get("/static/{path:path}", include_in_schema=False)
def static(request: Request, path: str) -> Response:
    """A file shipped with the package: the page's scripts and styles, uPlot, Swagger UI and ReDoc."""
    response = _ASSETS.response(request, path)
    if response is None:
        raise EndpointNotFoundError(f"GET /static/{path}")
    return response


@router.get("/api/dashboard", tags=["service"], responses=doc(DashboardResponse, *ORIGIN_ERRORS))
def dashboard(request: Request) -> JSONResponse:
    """The server's version and which optional endpoints it has (what the dashboard can show)."""
    app: FastAPI = request.app
    found: dict[str, bool] | None = getattr(app.state, "dashboard_features", None)
    if found is None:
        found = features(app.openapi())
        app.state.dashboard_features = found
    return ok(version=app.version, features=found)


def features(schema: dict[str, Any]) -> dict[str, bool]:
    """Which optional operations an OpenAPI document declares."""
    paths: dict[str, Any] = schema.get("paths", {})
    recommend = paths.get("/api/model/recommend", {}).get("post", {})
    return {
        "plan": "post" in paths.get("/api/model/plan", {}),
        "bench": "post" in paths.get("/api/model/bench", {}),
        "recommend_capability": "capability" in _body_properties(schema, recommend),
        "usage_history": "get" in paths.get("/api/model/usage/{name}/history", {}),
    }


def _body_properties(schema: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """The property names of an operation's JSON body, through ``$ref`` and ``anyOf``."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    components = schema.get("components", {}).get("schemas", {})
    names: set[str] = set()
    pending = [body]
    while pending:
        part = pending.pop()
        if not isinstance(part, dict):
            continue
        ref = part.get("$ref")
        if isinstance(ref, str):
            pending.append(components.get(ref.rsplit("/", 1)[-1], {}))
        names.update(part.get("properties", {}))
        pending.extend(part.get("anyOf", []) + part.get("allOf", []) + part.get("oneOf", []))
    return names
