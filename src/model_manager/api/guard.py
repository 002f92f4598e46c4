"""The request guard: what keeps a local API that can delete models from being driven by anyone else.

A pure ASGI middleware (no per-request task or body copy), applied in this order:

1. ``Host`` must name this server: a loopback name or address, or one of ``allowed_hosts``. A page on
   ``evil.example`` whose DNS now points at 127.0.0.1 (DNS rebinding) is refused, as Ollama refuses
   it. Bound to another address the server passes ``"*"``: the token does this job there.
2. ``Origin``, when a browser sends one, must be the server's own origin or one allowed explicitly;
   without an Origin, ``Sec-Fetch-Site: cross-site`` is refused too. No CORS headers are ever sent, so
   a browser also keeps cross-origin pages from reading answers.
3. With a token configured, ``Authorization: Bearer <token>`` (compared in constant time), except on
   GETs of ``public_paths`` and ``public_prefixes``: the dashboard's page and files, which hold no data
   and which a browser loads by navigating, when it cannot add the header.
4. Bodies above ``max_body_bytes`` get 413, from ``Content-Length`` before reading, or while reading.

Writes must also send JSON; that rule is the route dependency ``require_json``, which runs after
routing so that unknown paths and methods still answer 404 and 405.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    ApiError,
    ForbiddenError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from .errors import error_bytes

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def hostname(value: str) -> str:
    """The host part of a ``Host`` header value, lower case, without port or IPv6 brackets."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return value.lower()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) can only be this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware applying the rules in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        allowed_hosts: Collection[str] = (),
        allowed_origins: Collection[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        public_paths: Collection[str] = (),
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = public_prefixes
        self.token = token.encode() if token else None
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        error = self.check(scope, headers)
        if error is not None:
            await _send_error(send, error)
            return
        await self.app(scope, self._limited(receive), send)

    def check(self, scope: Scope, headers: Headers) -> ApiError | None:
        """The first rule the request breaks, or None."""
        host = headers.get("host", "")
        if not self._host_allowed(hostname(host)):
            return ForbiddenError(f"host {host!r} is not this server's")
        origin = headers.get("origin")
        if origin is not None:
            own = f"{scope.get('scheme', 'http')}://{host}".lower()
            if origin.rstrip("/").lower() not in (own, *self.allowed_origins):
                return ForbiddenError(f"origin {origin!r} is not allowed")
        elif headers.get("sec-fetch-site", "").lower() == "cross-site":
            return ForbiddenError("cross-site request")
        if (
            self.token is not None
            and not self._public(scope)
            and not self._authorized(headers.get("authorization", ""))
        ):
            return UnauthorizedError("missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return PayloadTooLargeError(f"{length} bytes; the limit is {self.max_body_bytes}")
        return None

    def _public(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return scope.get("method") in ("GET", "HEAD") and (
            path in self.public_paths or path.startswith(self.public_prefixes)
        )

    def _host_allowed(self, host: str) -> bool:
        return self.any_host or not host or host in self.allowed_hosts or is_loopback(host)

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        assert self.token is not None
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that stops a body growing past the limit (chunked bodies have no Content-Length)."""
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413)
            return message

        return limited


def require_json(request: Request) -> None:
    """Route dependency: a write must declare ``Content-Type: application/json``.

    HTML forms and ``no-cors`` fetches cannot, so a web page cannot change anything. POSTs need it even
    without a body; a DELETE only when it has one (``?model=`` needs none). It runs after routing, so
    unknown paths and methods still answer 404 and 405.
    """
    headers = request.headers
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if request.method == "DELETE" and not has_body:
        return
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaTypeError(f"{request.method} needs JSON, got {media or 'no Content-Type'!r}")


async def _send_error(send: Send, error: ApiError) -> None:
    body = error_bytes(error)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
