"""The adapter over the official ``ollama`` client: the only module that imports it.

Every call goes through ``_call`` (or ``_stream`` for pulls), which turns the client's and httpx's
exceptions into ours once, at this boundary. Two underlying clients are kept because their timeouts
differ: quick metadata calls fail fast, while a model load may legitimately take minutes and a pull's
timeout is on *silence* (httpx's read timeout is per read), never on total length.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import httpx
import ollama
import pydantic
from ollama._client import _parse_host

from .errors import (
    DownloadFailedError,
    InsufficientVramError,
    InvalidModelNameError,
    ModelManagerError,
    ModelNotFoundError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from .types import InstalledModel, ModelFacts, PullProgress, RunningModel

log = logging.getLogger(__name__)
T = TypeVar("T")
ProgressCallback = Callable[[str, int, int], None]

_MEMORY_ERROR_PREFIXES = ("model requires more system memory", "unable to load full model")


def parse_host(value: str | None) -> str:
    """Base URL for ``value`` parsed as the official client parses ``OLLAMA_HOST``."""
    return str(_parse_host(value))


def _iso(value: datetime | str | None) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return value or ""


def _translate(exc: Exception, host: str, name: str | None) -> ModelManagerError:
    """Map one low-level exception to ours."""
    if isinstance(exc, ollama.ResponseError):
        text, status = str(exc.error), exc.status_code
        if status == 404 or "not found" in text:
            return ModelNotInstalledError(name or text, ollama_message=text)
        if "invalid model name" in text or (status == 400 and " is invalid" in text):
            return InvalidModelNameError(f"{name!r}: {text}" if name else text)
        if text.startswith(_MEMORY_ERROR_PREFIXES) or "out of memory" in text:
            return InsufficientVramError(f"{name}: {text}" if name else text, ollama_message=text)
        return OllamaError(f"{text} (HTTP {status})" if status > 0 else text, status_code=status)
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
    return OllamaError(f"{type(exc).__name__}: {exc}")


_TRANSLATED = (
    ollama.ResponseError,
    ConnectionError,
    httpx.HTTPError,
    json.JSONDecodeError,
    pydantic.ValidationError,
)


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
        connect = min(timeout_s, 10.0)
        # Plain-HTTP hosts (the usual local Ollama) use no TLS, so skip loading the CA bundle: that
        # costs tens of milliseconds per client, three times over, on every start-up.
        tls: dict[str, Any] = {}
        if not self.host.startswith("https://"):
            tls["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._quick = ollama.Client(self.host, timeout=httpx.Timeout(timeout_s, connect=connect), **tls)
        self._slow = ollama.Client(self.host, timeout=httpx.Timeout(load_timeout_s, connect=connect), **tls)
        self._pull = ollama.Client(
            self.host,
            timeout=httpx.Timeout(connect=connect, read=pull_silence_timeout_s, write=30.0, pool=30.0),
            **tls,
        )

    def close(self) -> None:
        for client in (self._quick, self._slow, self._pull):
            client._client.close()

    @contextmanager
    def _boundary(self, name: str | None = None) -> Iterator[None]:
        try:
            yield
        except _TRANSLATED as exc:
            raise _translate(exc, self.host, name) from exc

    def version(self) -> str:
        """Ollama's version string; the cheapest call that proves it answers."""
        with self._boundary():
            response = self._quick._request_raw("GET", "/api/version")  # type: ignore[no-untyped-call]
            return str(response.json().get("version", ""))

    def is_alive(self) -> bool:
        try:
            self.version()
        except ModelManagerError:
            return False
        return True

    def list_models(self) -> list[InstalledModel]:
        """``/api/tags``: what Ollama has on disk."""
        with self._boundary():
            response = self._quick.list()
        out = []
        for m in response.models:
            details = m.details
            out.append(
                InstalledModel(
                    name=m.model or "",
                    size_bytes=int(m.size or 0),
                    digest=m.digest or "",
                    modified_at=_iso(m.modified_at),
                    family=(details.family or "") if details else "",
                    parameter_size=(details.parameter_size or "") if details else "",
                    quantization_level=(details.quantization_level or "") if details else "",
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
