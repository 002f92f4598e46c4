"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the files shipped in the package, so that both work
on a machine without internet. FastAPI's defaults load them from a CDN (and ReDoc's fonts from Google), so
the app is built with ``docs_url=None, redoc_url=None`` and these routes take their place, using FastAPI's
own page builders with every URL pointed at ``/static/vendor/``.

Both pages carry a Content-Security-Policy that lets the browser load nothing from another origin. ReDoc 2
has one hard-coded foreign request, its "API docs by Redocly" footer logo, with no option to turn it off:
the policy's ``img-src`` keeps the browser from fetching it (the logo hides itself when it fails). Inline
script and style are allowed because FastAPI's pages start the UIs with an inline script; ``blob:`` workers
are ReDoc's search index.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
    swagger_ui_default_parameters,
)
from fastapi.responses import HTMLResponse

router = APIRouter()

VENDOR = "/static/vendor"
DOCS_CSP = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self' data:; "
    "connect-src 'self'; "
    "worker-src 'self' blob:; "
    "frame-ancestors 'self'; "
    "base-uri 'self'; "
    "form-action 'self'"
)
# validatorUrl None: Swagger UI would otherwise show a badge image from validator.swagger.io whenever the
# document's URL is not localhost (the server opened by a LAN address, say).
SWAGGER_PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _openapi_url(request: Request) -> str:
    return _root(request) + (request.app.openapi_url or "/openapi.json")


def _with_csp(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return _with_csp(
        get_swagger_ui_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{VENDOR}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
    )


@router.get("/docs/oauth2-redirect", include_in_schema=False)
def swagger_ui_redirect() -> HTMLResponse:
    return _with_csp(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return _with_csp(
        get_redoc_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{root}{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{VENDOR}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
    )
