"""Headless Chromium for the dashboard's tests and bench: the system's browser driven by Playwright, with
no request leaving 127.0.0.1.

    with sync_playwright() as p:
        browser = launch_chromium(p)          # Debian's /usr/bin/chromium; never `playwright install`
        context = new_context(browser)        # service workers blocked (they would bypass the routes)
        guard = LoopbackGuard(context)        # records every URL, aborts non-loopback ones
        meter = TransferMeter(context)        # bytes transferred per response
        page = context.new_page(); page.goto(url)
        guard.assert_only_loopback()

Playwright for Python is only the client and its Node driver (both in the wheel); the browser it would
download with `playwright install` is replaced by the system's `chromium` package.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported lazily, so that this module imports where playwright is not installed
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, Route, WebSocket

CHROMIUM_ENV = "MODEL_MANAGER_CHROMIUM"
REQUIRE_ENV = "MODEL_MANAGER_REQUIRE_SERVICES"

# Looked for in this order (MODEL_MANAGER_CHROMIUM, when set, is the only one tried). /usr/bin/chromium
# is Debian's wrapper script: it execs /usr/lib/chromium/chromium, keeping Playwright's pipes.
_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium-browser",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
)

# What Playwright does not already pass (it adds --headless, --no-sandbox, --disable-background-networking,
# --disable-component-update, --no-first-run, --disable-sync and a --disable-features list). Never pass
# another --disable-features: Chromium keeps only the last one, which would drop Playwright's.
CHROMIUM_ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--dns-prefetch-disable",
    "--disable-crash-reporter",
    "--no-service-autorun",
)

# Every non-loopback request, the browser's own background ones included (page routes never see those),
# goes to a proxy on the discard port where nothing listens. Chromium never proxies loopback addresses.
LOCKDOWN_ARGS = (
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost;[::1]",
)


def find_chromium() -> Path | None:
    """A system Chromium or Chrome executable, or None."""
    override = os.environ.get(CHROMIUM_ENV)
    candidates: Iterable[str] = (override,) if override is not None else _CANDIDATES
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    if override is None:
        for name in ("chromium", "chromium-browser", "google-chrome"):
            found = shutil.which(name)
            if found:
                return Path(found)
    return None


def services_required() -> bool:
    """Whether a missing browser must fail the test instead of skipping it (CI sets the variable)."""
    return os.environ.get(REQUIRE_ENV) == "1"


def launch_chromium(
    playwright: Playwright, *, executable: Path | None = None, extra_args: Sequence[str] = (), **kwargs: Any
) -> Browser:
    """The system Chromium, headless, locked to loopback (no browser download)."""
    exe = executable or find_chromium()
    if exe is None:
        raise FileNotFoundError(f"no Chromium found (set {CHROMIUM_ENV} or apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=str(exe),
        headless=True,
        args=[*CHROMIUM_ARGS, *LOCKDOWN_ARGS, *extra_args],
        chromium_sandbox=False,
        **kwargs,
    )


def new_context(browser: Browser, **kwargs: Any) -> BrowserContext:
    """A context at 1280×800 with service workers blocked (their requests would bypass the routes)."""
    kwargs.setdefault("service_workers", "block")
    kwargs.setdefault("viewport", {"width": 1280, "height": 800})
    return browser.new_context(**kwargs)


# Playwright's request.failure for requests Chromium refused before any network access.
_BROWSER_REFUSALS = frozenset({"csp", "net::ERR_BLOCKED_BY_CSP", "mixed-content"})
_LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome-error"})
_LOOPBACK = frozenset({"127.0.0.1"})


def is_loopback_url(url: str, hosts: frozenset[str] = _LOOPBACK) -> bool:
    parts = urlsplit(url)
    if parts.scheme in _LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and (parts.hostname or "") in hosts


@dataclass
class LoopbackGuard:
    """Records every URL a context requests and aborts (and records) those not on 127.0.0.1.

    A request the page's own Content-Security-Policy refused never reaches the route or the network: it
    is kept in ``refused_by_browser`` and not counted as foreign.
    """

    context: BrowserContext
    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    refused_by_browser: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.context.route("**/*", self._route)
        self.context.on("request", self._on_request)
        self.context.on("requestfailed", self._on_failed)
        self.context.on("page", lambda page: page.on("websocket", self._on_websocket))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if is_loopback_url(url):
            route.fallback()
            return
        with self._lock:
            self.blocked.append(url)
        route.abort("blockedbyclient")

    def _on_request(self, request: Request) -> None:
        with self._lock:
            self.requested.append(request.url)

    def _on_failed(self, request: Request) -> None:
        if (request.failure or "") in _BROWSER_REFUSALS:
            with self._lock:
                self.refused_by_browser.append(request.url)

    def _on_websocket(self, ws: WebSocket) -> None:
        with self._lock:
            self.websockets.append(ws.url)

    @property
    def foreign(self) -> list[str]:
        """Every non-loopback URL the pages asked for, less those the browser refused itself (CSP)."""
        with self._lock:
            refused = set(self.refused_by_browser) - set(self.blocked)
            urls = {*self.requested, *self.blocked, *self.websockets} - refused
        return sorted(u for u in urls if not is_loopback_url(u))

    def assert_only_loopback(self) -> None:
        foreign = self.foreign
        assert not foreign, f"requests left 127.0.0.1: {foreign}"


@dataclass
class TransferMeter:
    """Bytes transferred per finished response: the encoded body (after gzip) and the headers."""

    context: BrowserContext
    responses: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.context.on("requestfinished", self._on_finished)

    def _on_finished(self, request: Request) -> None:
        if urlsplit(request.url).scheme not in {"http", "https"}:
            return
        sizes = request.sizes()
        response = request.response()
        entry = {
            "url": request.url,
            "type": request.resource_type,
            "status": response.status if response else None,
            "encoding": (response.headers.get("content-encoding") if response else None) or "identity",
            "body": sizes["responseBodySize"],
            "headers": sizes["responseHeadersSize"],
        }
        with self._lock:
            self.responses.append(entry)

    def clear(self) -> None:
        with self._lock:
            self.responses.clear()

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(int(r["body"]) + int(r["headers"]) for r in self.responses)


_PAINT_JS = """() => new Promise(resolve => {
  const done = () => {
    const out = {};
    for (const e of performance.getEntriesByType('paint')) out[e.name] = e.startTime;
    return out;
  };
  if (performance.getEntriesByName('first-contentful-paint').length) return resolve(done());
  const obs = new PerformanceObserver(() => {
    if (performance.getEntriesByName('first-contentful-paint').length) { obs.disconnect(); resolve(done()); }
  });
  obs.observe({type: 'paint', buffered: true});
  setTimeout(() => { obs.disconnect(); resolve(done()); }, %d);
})"""


def paint_timings(page: Page, timeout_ms: int = 5000) -> dict[str, float]:
    """{'first-paint': ms, 'first-contentful-paint': ms} since navigation start."""
    result: dict[str, float] = page.evaluate(_PAINT_JS % timeout_ms)
    return result
