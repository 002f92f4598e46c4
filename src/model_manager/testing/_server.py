"""HTTP plumbing: a threading HTTP/1.1 server on loopback that answers the way Go's net/http and gin do.

Streams use chunked transfer encoding, as Go's server does, so a stream cut by a fault is visibly
incomplete to the client (httpx raises ``RemoteProtocolError``) rather than looking like a normal end.
Unknown routes get gin's plain-text ``404 page not found`` and known routes with the wrong method its
``405 method not allowed``. Every open connection is tracked so "down" can drop them all at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ._faults import Faults, RequestRecord
from ._go import Field, GoError, check_fields, decode_go_json, go_json, json_kind
from ._state import Closing

JSON_TYPE = "application/json; charset=utf-8"
_ALLOWED_SUFFIXES = (".localhost", ".local", ".internal")


class HttpError(Exception):
    """Answer with ``{"error": message}`` and this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class StreamCut(Exception):
    """Close the connection now, mid-response, without finishing it."""


class ClientGone(Exception):
    """Writing to the client failed: it hung up."""


Endpoint = Callable[["Exchange"], None]
Routes = Mapping[str, Mapping[str, Endpoint]]


class NdjsonStream:
    """A chunked ``application/x-ndjson`` response body, one JSON object per line."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def line(self, obj: Mapping[str, Any]) -> None:
        self.raw(go_json(obj) + b"\n")

    def raw(self, data: bytes) -> None:
        self._exchange.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def end(self) -> None:
        self._exchange.write(b"0\r\n\r\n")


class Exchange:
    """One request and the means to answer it."""

    def __init__(
        self, handler: Handler, method: str, path: str, raw: bytes, *, truncate: bool = False
    ) -> None:
        self._handler = handler
        self.method = method
        self.path = path
        self.raw = raw
        self.headers_sent = False
        self._truncate = truncate

    def client_gone(self) -> bool:
        """Whether the client hung up (its end of the connection reads as closed)."""
        sock = self._handler.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def wait_connected(self, seconds: float, closing: threading.Event) -> bool:
        """Wait ``seconds`` while the client stays connected; False as soon as it hangs up (or the
        double stops), the way Ollama's request context is cancelled."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.client_gone() or closing.wait(min(left, 0.02)):
                return False
        return not self.client_gone()

    def body(self, struct: str, fields: Mapping[str, Field]) -> dict[str, Any]:
        """The JSON object body decoded as Go would into ``api.<struct>``.

        Keys match fields case-insensitively, as in Go. Raises HttpError(400) for an empty body
        (``missing request body``), malformed JSON or a field of the wrong type, in Go's words.
        """
        text = self.raw.decode("utf-8", errors="replace")
        if not text.strip(" \t\r\n"):
            raise HttpError(400, "missing request body")
        try:
            value = decode_go_json(text)
        except GoError as exc:
            raise HttpError(400, str(exc)) from None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise HttpError(
                400, f"json: cannot unmarshal {json_kind(value)} into Go value of type api.{struct}"
            )
        by_lower = {name.lower(): name for name in fields}
        body: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            body[name if name in fields else by_lower.get(name.lower(), name)] = item
        try:
            check_fields(struct, body, fields)
        except GoError as exc:
            raise HttpError(400, str(exc)) from None
        return body

    def write(self, data: bytes) -> None:
        try:
            self._handler.wfile.write(data)
            self._handler.wfile.flush()
        except OSError as exc:
            raise ClientGone(str(exc)) from None

    def send(self, status: int, body: bytes, content_type: str | None = None) -> None:
        """A complete response with Content-Length (headers only for HEAD)."""
        handler = self._handler
        handler.send_response_only(status)
        handler.send_header("Date", handler.date_time_string())
        if content_type:
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        self.headers_sent = True
        if self._truncate and content_type == JSON_TYPE and self.path.startswith("/api/"):
            self.write(body[: len(body) // 2])
            self._handler.hang_up()
            return
        self.write(b"" if self.method == "HEAD" else body)

    def json(self, status: int, obj: Any) -> None:
        self.send(status, go_json(obj), JSON_TYPE)

    def error(self, status: int, message: str) -> None:
        self.json(status, {"error": message})

    def empty(self, status: int = 200) -> None:
        self.send(status, b"")

    def text(self, status: int, text: str, content_type: str = "text/plain") -> None:
        self.send(status, text.encode(), content_type)

    def stream(self) -> NdjsonStream:
        handler = self._handler
        handler.send_response_only(200)
        handler.send_header("Date", handler.date_time_string())
        handler.send_header("Content-Type", "application/x-ndjson")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        self.headers_sent = True
        self.write(b"")
        return NdjsonStream(self)


class DoubleHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its routes, faults and log, and tracks open connections."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        routes: Routes,
        faults: Faults,
        record: Callable[[RequestRecord], None],
        closing: threading.Event,
    ) -> None:
        super().__init__(address, Handler)
        self.routes = routes
        self.faults = faults
        self.record = record
        self.closing = closing
        self.loopback = ipaddress.ip_address(address[0]).is_loopback
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Hang up on every client, mid-request or idle in a keep-alive pool."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError | ClientGone):
            super().handle_error(request, client_address)


def host_allowed(host_header: str) -> bool:
    """Ollama's loopback Host check: IP literals, localhost, this machine, *.localhost/.local/.internal."""
    host = urlsplit(f"//{host_header}").hostname or ""
    if not host:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host in ("localhost", socket.gethostname().lower()) or host.endswith(_ALLOWED_SUFFIXES)
    return ip.is_loopback or ip.is_private or ip.is_unspecified


class Handler(BaseHTTPRequestHandler):
    """Reads one request, applies the faults, routes it, and turns failures into Ollama's answers."""

    protocol_version = "HTTP/1.1"
    server: DoubleHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        raw = self._read_body()
        split = urlsplit(self.path)
        self.server.record(RequestRecord(self.command, split.path, _loggable(raw), split.query))
        faults = self.server.faults
        garbage = faults.not_http_bytes()
        if garbage is not None:
            with contextlib.suppress(OSError):
                self.wfile.write(garbage)
            self.hang_up()
            return
        exchange = Exchange(self, self.command, split.path, raw, truncate=faults.truncate_body)
        try:
            if not self._apply_delays():
                return
            self._route(exchange, split.path)
        except (StreamCut, Closing):
            self.hang_up()
        except ClientGone:
            self.close_connection = True
        except HttpError as exc:
            if exchange.headers_sent:
                self.hang_up()
            else:
                exchange.error(exc.status, exc.message)
        except Exception as exc:
            if not exchange.headers_sent:
                exchange.error(500, f"ollama double: {type(exc).__name__}: {exc}")
            raise

    def _apply_delays(self) -> bool:
        """Apply ``hang_s`` (then hang up: returns False) and ``slow_s``."""
        faults, closing = self.server.faults, self.server.closing
        if faults.hang_s > 0:
            closing.wait(faults.hang_s)
            self.hang_up()
            return False
        if faults.slow_s > 0:
            closing.wait(faults.slow_s)
        if closing.is_set():
            self.hang_up()
            return False
        return True

    def _route(self, exchange: Exchange, path: str) -> None:
        if self.server.loopback and not host_allowed(self.headers.get("Host", "")):
            exchange.send(403, b"")
            return
        methods = self.server.routes.get(path)
        if methods is None:
            exchange.text(404, "404 page not found")
            return
        endpoint = methods.get(self.command)
        if endpoint is None:
            exchange.text(405, "405 method not allowed")
            return
        message = self.server.faults.error_500()
        if message is not None and path.startswith("/api/"):
            exchange.error(500, message)
            return
        endpoint(exchange)

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch


def _loggable(raw: bytes) -> Any:
    if not raw.strip():
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
