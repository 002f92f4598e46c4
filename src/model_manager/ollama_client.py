"""The adapter over Ollama's HTTP API: the only module that speaks to Ollama.

Every call goes through one request path (``_exchange``) on one ``httpx.Client`` and one error
translation (``_translated``): connection failures and silence become ``OllamaUnavailableError``,
Ollama's ``{"error": …}`` answers (with a status, or in-band in a stream) become the error table's
classes, and an answer that does not parse becomes ``OllamaError``. Each endpoint method maps arguments
to JSON and the answer to a typed record.

The official ``ollama`` Python client is not used: its public API drops fields this package depends on
(``/api/show`` ``tensors`` and ``projector_info``, ``capabilities`` in ``/api/tags``), has no
``/api/version``, and offers no public way to read the raw answer. httpx is what it is built on; a
``transport`` argument takes ``httpx.MockTransport`` in unit tests, while integration tests use the
real loopback Ollama double (``model_manager.testing``).

Timeouts differ per call: quick metadata calls fail fast, a model load may legitimately take minutes,
and a pull's limit is on *silence* (httpx's read timeout applies per read), never on total length.
httpx is imported on first use, as command-line start-up cannot afford it for ``--help``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_LOAD_TIMEOUT_S, DEFAULT_PULL_SILENCE_S, DEFAULT_REQUEST_TIMEOUT_S
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
from .types import InstalledModel, ModelFacts, ProgressCallback, PullProgress, RunningModel

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

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


def _response_error(text: str, status: int, name: str | None) -> ModelManagerError:
    """Map an error Ollama answered with (its ``error`` text and HTTP status; -1 in a stream) to ours."""
    if status == 404 or "not found" in text:
        return ModelNotInstalledError(name or text, ollama_message=text)
    if "invalid model name" in text or (status == 400 and " is invalid" in text):
        return InvalidModelNameError(f"{name!r}: {text}" if name else text)
    if text.startswith(_MEMORY_ERROR_PREFIXES) or "out of memory" in text:
        return InsufficientVramError(f"{name}: {text}" if name else text, ollama_message=text)
    return OllamaError(f"{text} (HTTP {status})" if status > 0 else text, status_code=status)


def _error_text(body: bytes) -> str:
    """Ollama's ``{"error": …}`` text, else the body as it came."""
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return text.strip()


class _Malformed(Exception):
    """An answer that is not what the endpoint sends."""


def _field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(key, default)
    if value is None:
        return default
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise _Malformed(f"{key!r} is {type(value).__name__}, expected {getattr(kind, '__name__', kind)}")
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{what} is {type(value).__name__}, expected an object")
    return value


class OllamaClient:
    """Typed calls to one Ollama server. Raises only ModelManagerError subclasses."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
        pull_silence_timeout_s: float = DEFAULT_PULL_SILENCE_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = parse_host(host)
        self._timeout_s = timeout_s
        self._load_timeout_s = load_timeout_s
        self._pull_silence_timeout_s = pull_silence_timeout_s
        self._transport = transport
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            import ssl

            import httpx

            # Plain-HTTP hosts (the usual local Ollama) use no TLS, so skip loading the CA bundle: that
            # costs tens of milliseconds per client.
            verify: ssl.SSLContext | bool = True
            if not self.host.startswith("https://"):
                verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._http = httpx.Client(
                base_url=self.host,
                transport=self._transport,
                verify=verify,
                timeout=self._timeout(self._timeout_s),
                headers={"Accept": "application/json"},
            )
        return self._http

    def _timeout(self, read_s: float) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(read_s, connect=min(self._timeout_s, 10.0), write=30.0, pool=30.0)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # --- the one request path -----------------------------------------------------------------------

    @contextmanager
    def _translated(self, name: str | None) -> Iterator[None]:
        """Every failure below, translated once into the error table's classes."""
        import httpx

        try:
            yield
        except ModelManagerError:
            raise
        except httpx.ConnectError:
            raise OllamaUnavailableError(f"cannot connect to Ollama at {self.host}", host=self.host) from None
        except httpx.TimeoutException as exc:
            raise OllamaUnavailableError(
                f"Ollama at {self.host} did not answer in time ({type(exc).__name__})", host=self.host
            ) from None
        except httpx.NetworkError as exc:
            raise OllamaUnavailableError(
                f"connection to Ollama at {self.host} failed: {exc}", host=self.host
            ) from None
        except httpx.HTTPError as exc:
            # Not HTTP, or an answer cut short: something answered, but not as Ollama does.
            raise OllamaError(
                f"connection to Ollama at {self.host} broke: {type(exc).__name__}: {exc}"
            ) from None
        except (_Malformed, ValueError) as exc:
            raise OllamaError(f"Ollama at {self.host} sent a malformed response: {exc}") from None

    @contextmanager
    def _exchange(
        self, method: str, path: str, body: Mapping[str, Any] | None, read_s: float, name: str | None
    ) -> Iterator[httpx.Response]:
        """One request to Ollama, its response open for reading; a status ≥ 400 raises ours."""
        with self._translated(name):
            request = self._client().build_request(method, path, json=body, timeout=self._timeout(read_s))
            response = self._client().send(request, stream=True)
            try:
                if response.status_code >= 400:
                    raise _response_error(_error_text(response.read()), response.status_code, name)
                yield response
            finally:
                response.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        read_s: float | None = None,
    ) -> Any:
        """A request whose answer is one JSON document (None for an empty body)."""
        with self._exchange(method, path, body, read_s or self._timeout_s, name) as response:
            raw = response.read()
            return json.loads(raw) if raw.strip() else None

    def _lines(
        self, path: str, body: Mapping[str, Any], *, read_s: float, name: str | None
    ) -> Iterator[Mapping[str, Any]]:
        """A streamed request: one JSON object per line; an in-band ``error`` line raises ours."""
        with self._exchange("POST", path, body, read_s, name) as response, self._translated(name):
            for line in response.iter_lines():
                if not line.strip():
                    continue
                doc = _object(json.loads(line), "a stream line")
                if "error" in doc:
                    raise _response_error(str(doc["error"]), -1, name)
                yield doc

    # --- endpoints ---------------------------------------------------------------------------------

    def version(self) -> str:
        """Ollama's version string; the cheapest call that proves it answers."""
        with self._translated(None):
            return str(_field(_object(self._call("GET", "/api/version"), "the answer"), "version", str, ""))

    def is_alive(self) -> bool:
        try:
            self.version()
        except ModelManagerError:
            return False
        return True

    def list_models(self) -> list[InstalledModel]:
        """``/api/tags``: what Ollama has on disk."""
        with self._translated(None):
            doc = _object(self._call("GET", "/api/tags"), "the answer")
            out = []
            for raw in _field(doc, "models", list, []):
                m = _object(raw, "a model entry")
                details = _object(m.get("details") or {}, "details")
                out.append(
                    InstalledModel(
                        name=str(_field(m, "model", str, "") or _field(m, "name", str, "")),
                        size_bytes=_field(m, "size", int, 0),
                        digest=_field(m, "digest", str, ""),
                        modified_at=_field(m, "modified_at", str, ""),
                        family=_field(details, "family", str, ""),
                        parameter_size=_field(details, "parameter_size", str, ""),
                        quantization_level=_field(details, "quantization_level", str, ""),
                    )
                )
            return out

    def running(self) -> list[RunningModel]:
        """``/api/ps``: what Ollama has loaded, with how much of it is in VRAM."""
        with self._translated(None):
            doc = _object(self._call("GET", "/api/ps"), "the answer")
            out = []
            for raw in _field(doc, "models", list, []):
                m = _object(raw, "a model entry")
                out.append(
                    RunningModel(
                        name=str(_field(m, "model", str, "") or _field(m, "name", str, "")),
                        size_bytes=_field(m, "size", int, 0),
                        size_vram_bytes=_field(m, "size_vram", int, 0),
                        expires_at=_field(m, "expires_at", str, ""),
                        context_length=_field(m, "context_length", int, 0),
                    )
                )
            return out

    def show(self, name: str) -> ModelFacts:
        """``/api/show``. Raises ModelNotInstalledError when Ollama lacks the model.

        The token-embedding tensor's shape gives the vocabulary size the memory estimate needs
        (non-verbose ``model_info`` sends the token list as null).
        """
        with self._translated(name):
            raw = _object(self._call("POST", "/api/show", {"model": name}, name=name), "the answer")
            details = _object(raw.get("details") or {}, "details")
            info = dict(_object(raw.get("model_info") or {}, "model_info"))
            arch = str(info.get("general.architecture") or "")
            for tensor in _field(raw, "tensors", list, []):
                shape = tensor.get("shape") if isinstance(tensor, dict) else None
                if tensor.get("name") == "token_embd.weight" and isinstance(shape, list) and len(shape) == 2:
                    info.setdefault(f"{arch}.vocab_size", int(shape[1]))
            return ModelFacts(
                name=name,
                model_info=info,
                capabilities=tuple(str(c) for c in _field(raw, "capabilities", list, [])),
                family=_field(details, "family", str, ""),
                parameter_size=_field(details, "parameter_size", str, ""),
                quantization_level=_field(details, "quantization_level", str, ""),
                projector_info=dict(_object(raw.get("projector_info") or {}, "projector_info")),
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
        body = {"model": name, "stream": True}
        for doc in self._lines("/api/pull", body, read_s=self._pull_silence_timeout_s, name=name):
            yield PullProgress(
                status=_field(doc, "status", str, ""),
                digest=_field(doc, "digest", str, ""),
                total=_field(doc, "total", int, 0),
                completed=_field(doc, "completed", int, 0),
            )

    def delete(self, name: str) -> None:
        """``/api/delete``. Raises ModelNotInstalledError when Ollama lacks the model."""
        self._call("DELETE", "/api/delete", {"model": name}, name=name)

    def load(self, name: str, keep_alive: str | float | None = None) -> None:
        """Load ``name`` into memory with an empty generate request; blocks until loaded."""
        body: dict[str, Any] = {"model": name, "prompt": "", "stream": False}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        self._call("POST", "/api/generate", body, name=name, read_s=self._load_timeout_s)

    def unload(self, name: str) -> None:
        """Ask Ollama to unload ``name`` now (keep_alive 0); 200 even when it was not loaded."""
        self._call(
            "POST",
            "/api/generate",
            {"model": name, "prompt": "", "keep_alive": 0, "stream": False},
            name=name,
        )
