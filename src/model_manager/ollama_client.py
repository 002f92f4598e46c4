"""The adapter over the official ``ollama`` client: the only module that imports it.

Every call goes through one boundary (``_boundary``) that turns the client's, httpx's and the standard
library's exceptions into ours, once. Three underlying clients are kept because their timeouts differ:
quick metadata calls fail fast, a model load may legitimately take minutes, and a pull's timeout is on
*silence* (httpx's read timeout is per read), never on total length.

Importing the official client (pydantic models, httpx) costs about a third of a second, which a
command-line start-up cannot afford. So the client is imported on first use, and the two plain reads
every command may need — ``/api/version`` and ``/api/tags`` — go through the standard library. The host
parser mirrors the official client's ``_parse_host``; a test holds the two equal.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import (
    DownloadFailedError,
    InsufficientVramError,
    InvalidModelNameError,
    InvalidRequestError,
    ModelManagerError,
    ModelNotFoundError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from .types import InstalledModel, ModelFacts, PullProgress, RunningModel

if TYPE_CHECKING:
    import ollama

log = logging.getLogger(__name__)
ProgressCallback = Callable[[str, int, int], None]

DEFAULT_PORT = 11434
_MEMORY_ERROR_PREFIXES = ("model requires more system memory", "unable to load full model")


def parse_host(value: str | None) -> str:
    """Base URL for ``value`` (``OLLAMA_HOST``), parsed as the official client parses it:
    default ``http://127.0.0.1:11434``; ``http``/``https`` imply ports 80/443; a path prefix is kept.

    Raises InvalidRequestError for an address that does not parse, or a port outside 0–65535.
    """
    value, port = value or "", DEFAULT_PORT
    scheme, _, hostport = value.partition("://")
    if not hostport:
        scheme, hostport = "http", value
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    try:
        split = urllib.parse.urlsplit(f"{scheme}://{hostport}")
        host = split.hostname or "127.0.0.1"
        port = split.port or port
    except ValueError as exc:
        raise InvalidRequestError(f"OLLAMA_HOST={value!r} is not a valid address: {exc}") from None
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            host = f"[{host}]"  # urlsplit drops the brackets
    except ValueError:
        pass
    path = split.path.strip("/")
    return f"{scheme}://{host}:{port}/{path}" if path else f"{scheme}://{host}:{port}"


def _iso(value: datetime | str | None) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return value or ""


def _response_error(text: str, status: int, name: str | None) -> ModelManagerError:
    """Map an error Ollama answered with (its ``error`` text and HTTP status) to ours."""
    if status == 404 or "not found" in text:
        return ModelNotInstalledError(name or text, ollama_message=text)
    if "invalid model name" in text or (status == 400 and " is invalid" in text):
        return InvalidModelNameError(f"{name!r}: {text}" if name else text)
    if text.startswith(_MEMORY_ERROR_PREFIXES) or "out of memory" in text:
        return InsufficientVramError(f"{name}: {text}" if name else text, ollama_message=text)
    return OllamaError(f"{text} (HTTP {status})" if status > 0 else text, status_code=status)


def _translate(exc: Exception, host: str, name: str | None) -> ModelManagerError | None:
    """Map one low-level exception to ours; None for exceptions that are not this boundary's to map."""
    import httpx
    import ollama
    import pydantic

    if isinstance(exc, ollama.ResponseError):
        return _response_error(str(exc.error), exc.status_code, name)
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        return OllamaUnavailableError(f"cannot connect to Ollama at {host}", host=host)
    if isinstance(exc, httpx.TimeoutException):
        return OllamaUnavailableError(
            f"Ollama at {host} did not answer in time ({type(exc).__name__})", host=host
        )
    if isinstance(exc, httpx.TransportError):
        return OllamaUnavailableError(f"connection to Ollama at {host} failed: {exc}", host=host)
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
        return OllamaError(f"Ollama at {host} sent a malformed response: {exc}")
    if isinstance(exc, httpx.HTTPError):
        return OllamaError(f"{type(exc).__name__}: {exc}")
    return None


class OllamaClient:
    """Typed calls to one Ollama server. Raises only ModelManagerError subclasses."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout_s: float = 30.0,
        load_timeout_s: float = 330.0,
        pull_silence_timeout_s: float = 120.0,
    ) -> None:
        self.host = parse_host(host)
        self._timeout_s = timeout_s
        self._load_timeout_s = load_timeout_s
        self._pull_silence_timeout_s = pull_silence_timeout_s
        self._clients: tuple[ollama.Client, ollama.Client, ollama.Client] | None = None

    def _official(self) -> tuple[ollama.Client, ollama.Client, ollama.Client]:
        """The official clients (quick calls, loads, pulls), built on first use."""
        if self._clients is None:
            import httpx
            import ollama

            connect = min(self._timeout_s, 10.0)
            # Plain-HTTP hosts (the usual local Ollama) use no TLS, so skip loading the CA bundle: that
            # costs tens of milliseconds per client.
            tls: dict[str, Any] = {}
            if not self.host.startswith("https://"):
                tls["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._clients = (
                ollama.Client(self.host, timeout=httpx.Timeout(self._timeout_s, connect=connect), **tls),
                ollama.Client(self.host, timeout=httpx.Timeout(self._load_timeout_s, connect=connect), **tls),
                ollama.Client(
                    self.host,
                    timeout=httpx.Timeout(
                        connect=connect, read=self._pull_silence_timeout_s, write=30.0, pool=30.0
                    ),
                    **tls,
                ),
            )
        return self._clients

    @property
    def _quick(self) -> ollama.Client:
        return self._official()[0]

    @property
    def _slow(self) -> ollama.Client:
        return self._official()[1]

    @property
    def _pull(self) -> ollama.Client:
        return self._official()[2]

    def close(self) -> None:
        if self._clients is not None:
            for client in self._clients:
                client._client.close()

    @contextmanager
    def _boundary(self, name: str | None = None) -> Iterator[None]:
        try:
            yield
        except ModelManagerError:
            raise
        except Exception as exc:
            translated = _translate(exc, self.host, name)
            if translated is None:
                raise
            raise translated from exc

    def _get_json(self, path: str) -> Any:
        """GET ``path`` with the standard library (see the module docstring for why)."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.host + path, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            with suppress(ValueError, AttributeError):
                text = str(json.loads(text).get("error", text))
            raise _response_error(text, exc.code, None) from None
        except TimeoutError as exc:
            raise OllamaUnavailableError(
                f"Ollama at {self.host} did not answer in time ({type(exc).__name__})", host=self.host
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise OllamaUnavailableError(
                    f"Ollama at {self.host} did not answer in time", host=self.host
                ) from None
            raise OllamaUnavailableError(f"cannot connect to Ollama at {self.host}", host=self.host) from None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise OllamaError(f"Ollama at {self.host} sent a malformed response: {exc}") from None

    def version(self) -> str:
        """Ollama's version string; the cheapest call that proves it answers."""
        doc = self._get_json("/api/version")
        return str(doc.get("version", "")) if isinstance(doc, dict) else ""

    def is_alive(self) -> bool:
        try:
            self.version()
        except ModelManagerError:
            return False
        return True

    def list_models(self) -> list[InstalledModel]:
        """``/api/tags``: what Ollama has on disk."""
        doc = self._get_json("/api/tags")
        models = doc.get("models") if isinstance(doc, dict) else None
        if not isinstance(models, list):
            raise OllamaError(f"Ollama at {self.host} sent a malformed /api/tags response")
        out = []
        for m in models:
            if not isinstance(m, dict):
                raise OllamaError(f"Ollama at {self.host} sent a malformed /api/tags entry")
            details = m.get("details") or {}
            out.append(
                InstalledModel(
                    name=str(m.get("model") or m.get("name") or ""),
                    size_bytes=int(m.get("size") or 0),
                    digest=str(m.get("digest") or ""),
                    modified_at=str(m.get("modified_at") or ""),
                    family=str(details.get("family") or ""),
                    parameter_size=str(details.get("parameter_size") or ""),
                    quantization_level=str(details.get("quantization_level") or ""),
                )
            )
        return out

    def running(self) -> list[RunningModel]:
        """``/api/ps``: what Ollama has loaded, with how much of it is in VRAM."""
        with self._boundary():
            response = self._quick.ps()
        return [
            RunningModel(
                name=m.model or m.name or "",
                size_bytes=int(m.size or 0),
                size_vram_bytes=int(m.size_vram or 0),
                expires_at=_iso(m.expires_at),
                context_length=int(m.context_length or 0),
            )
            for m in response.models
        ]

    def show(self, name: str) -> ModelFacts:
        """``/api/show``. Raises ModelNotInstalledError when Ollama lacks the model.

        Read raw rather than through the client's ``ShowResponse``, which drops ``tensors`` and
        ``projector_info``: the token-embedding tensor's shape gives the vocabulary size the memory
        estimate needs (non-verbose ``model_info`` sends the token list as null).
        """
        with self._boundary(name):
            raw = self._quick._request_raw("POST", "/api/show", json={"model": name}).json()  # type: ignore[no-untyped-call]
        if not isinstance(raw, dict):
            raise OllamaError(f"Ollama at {self.host} sent a malformed /api/show response")
        details = raw.get("details") or {}
        info = dict(raw.get("model_info") or {})
        arch = str(info.get("general.architecture") or "")
        for tensor in raw.get("tensors") or ():
            shape = tensor.get("shape") if isinstance(tensor, dict) else None
            if tensor.get("name") == "token_embd.weight" and isinstance(shape, list) and len(shape) == 2:
                info.setdefault(f"{arch}.vocab_size", int(shape[1]))
        return ModelFacts(
            name=name,
            model_info=info,
            capabilities=tuple(raw.get("capabilities") or ()),
            family=str(details.get("family") or ""),
            parameter_size=str(details.get("parameter_size") or ""),
            quantization_level=str(details.get("quantization_level") or ""),
            projector_info=dict(raw.get("projector_info") or {}),
        )

    def pull(self, name: str, on_progress: ProgressCallback | None = None) -> None:
        """Stream ``/api/pull`` to the end, reporting (status, completed, total) for each line.

        Raises ModelNotFoundError when the registry has no such model, DownloadFailedError with
        Ollama's own text for any other failure (including a stream that ends without "success").
        """
        last = ""
        try:
            for line in self._pull_lines(name):
                last = line.status
                if on_progress is not None:
                    on_progress(line.status, line.completed, line.total)
        except ModelNotInstalledError as exc:
            raise ModelNotFoundError(name, ollama_message=str(exc)) from exc
        except OllamaError as exc:
            text = exc.detail
            if "file does not exist" in text:
                raise ModelNotFoundError(f"{name} (Ollama: {text})", ollama_message=text) from exc
            raise DownloadFailedError(f"{name}: {text}", ollama_message=text) from exc
        except OllamaUnavailableError as exc:
            raise DownloadFailedError(f"{name}: {exc.detail}", cause="ollama_unavailable") from exc
        if last != "success":
            raise DownloadFailedError(f"{name}: the pull stream ended before success (last status {last!r})")

    def _pull_lines(self, name: str) -> Iterator[PullProgress]:
        with self._boundary(name):
            for part in self._pull.pull(name, stream=True):
                yield PullProgress(
                    status=part.status or "",
                    digest=part.digest or "",
                    total=int(part.total or 0),
                    completed=int(part.completed or 0),
                )

    def delete(self, name: str) -> None:
        """``/api/delete``. Raises ModelNotInstalledError when Ollama lacks the model."""
        with self._boundary(name):
            self._quick.delete(name)

    def load(self, name: str, keep_alive: str | float | None = None) -> None:
        """Load ``name`` into memory with an empty generate request; blocks until loaded."""
        with self._boundary(name):
            self._slow.generate(model=name, prompt="", keep_alive=keep_alive)

    def unload(self, name: str) -> None:
        """Ask Ollama to unload ``name`` now (keep_alive 0); 200 even when it was not loaded."""
        with self._boundary(name):
            self._quick.generate(model=name, prompt="", keep_alive=0)
