"""Files shipped inside the package (the dashboard's page, scripts and styles; the vendored Swagger UI,
ReDoc and uPlot), served from ``api/static/`` with nothing fetched from another host.

Each file is read once and kept with its gzip form and an ETag (the content's hash), until its size or
modification time changes. Compressing once matters: the Swagger UI bundle is 1.7 MB, 0.46 MB gzipped,
and compressing it on every request would cost tens of milliseconds each time. ``Cache-Control:
no-cache`` makes a browser revalidate (a 304 with no body), so a new version of a file shows at once.

``GzipWhereAccepted`` compresses the other answers (JSON over 1 KB) with Starlette's middleware, for the
requests whose ``Accept-Encoding`` allows gzip by the same reading the files get (``accepts_gzip``).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
TEXT = "text/plain; charset=utf-8"
"""Files without a known suffix (LICENSE, NOTICE)."""
COMPRESS_MIN_BYTES = 1024
INCOMPRESSIBLE = frozenset({".png"})


@dataclass(frozen=True)
class Asset:
    """One file as it is served."""

    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    stamp: tuple[int, int]
    """(size, mtime_ns) when read: a change means the file is read again."""


class Assets:
    """The files under ``root``, cached with their gzip form."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, Asset] = {}
        self._lock = threading.Lock()

    def path_of(self, relative: str) -> Path | None:
        """The file ``relative`` names under the root, or None for anything else (``..``, absolute
        paths, backslashes, hidden files, directories, missing files)."""
        parts = PurePosixPath(relative).parts
        if not parts or "\\" in relative or any(p in ("..", ".") or p.startswith(".") for p in parts):
            return None
        if relative.startswith("/"):
            return None
        path = self.root.joinpath(*parts)
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.root) or not resolved.is_file():
            return None
        return resolved

    def get(self, relative: str) -> Asset | None:
        path = self.path_of(relative)
        if path is None:
            return None
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        body = path.read_bytes()
        compress = len(body) >= COMPRESS_MIN_BYTES and path.suffix not in INCOMPRESSIBLE
        asset = Asset(
            body=body,
            gzipped=gzip.compress(body, 9, mtime=0) if compress else None,
            media_type=MEDIA_TYPES.get(path.suffix, TEXT),
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            stamp=stamp,
        )
        with self._lock:
            self._cache[path] = asset
        return asset

    def response(
        self, request: Request, relative: str, headers: dict[str, str] | None = None
    ) -> Response | None:
        """The file as an HTTP response (304 when the browser's copy is current), or None if there is none."""
        asset = self.get(relative)
        if asset is None:
            return None
        out = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        out.update(headers or {})
        if asset.gzipped is not None:
            out["Vary"] = "Accept-Encoding"
        if asset.etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=out)
        if asset.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding", "")):
            out["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=out)
        return Response(asset.body, media_type=asset.media_type, headers=out)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip;q=0`` refuses it)."""
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            return not (params.strip().startswith("q=") and _is_zero(q))
    return False


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0
    except ValueError:
        return False


class GzipWhereAccepted:
    """Starlette's ``GZipMiddleware`` where the request allows gzip. Starlette takes any mention of gzip in
    ``Accept-Encoding`` as consent, ``gzip;q=0`` (a refusal) included; ``accepts_gzip`` reads the q-value."""

    def __init__(self, app: ASGIApp, minimum_size: int = COMPRESS_MIN_BYTES, compresslevel: int = 6) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and accepts_gzip(Headers(scope=scope).get("accept-encoding", "")):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
