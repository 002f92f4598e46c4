"""The dashboard: a page at ``/`` that draws the GPU, the models and their record from the REST API, live.

The page is plain ES modules and a stylesheet under ``api/static/`` (no build step), with uPlot for the
charts; ``assets.Assets`` serves them. Everything the page shows comes through the same REST endpoints
and guards as any other client (same origin, JSON writes, the bearer token when one is set), so the page
can do nothing a script could not.

The page and its files carry no data, so they are the only paths served without the token when one is
set (``PUBLIC_PREFIXES``, for the guard): a browser cannot add a header to a page it navigates to. The
page then asks for the token and sends it on every API call.

``GET /api/dashboard`` says which optional endpoints the app it is mounted in routes, so that the page
shows the plan chart, the bench button and the usage history only where they can be answered.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import Match

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
        found = features(app)
        app.state.dashboard_features = found
    return ok(version=app.version, features=found)


OPTIONAL = {
    "plan": ("POST", "/api/model/plan"),
    "bench": ("POST", "/api/model/benchmark"),
    "usage_history": ("GET", "/api/model/usage/llama3.2:1b/history"),
}
"""The optional operations the page can use, each as a request that only a server with it would route."""


def features(app: Starlette) -> dict[str, bool]:
    """Which of ``OPTIONAL`` the app routes (asked of its router as a request would be, rather than read
    from the OpenAPI document, whose first build takes a few hundred milliseconds the page would wait for)."""
    return {name: _routes(app, method, path) for name, (method, path) in OPTIONAL.items()}


def _routes(app: Starlette, method: str, path: str) -> bool:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)
