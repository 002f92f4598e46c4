"""The adapter over Ollama's HTTP API: the only module that speaks to Ollama.

Every call goes through one request path (``_exchange``) on one ``httpx.Client`` and one error
translation (``_translated``): connection failures and silence become ``OllamaUnavailableError``,
Ollama's ``{"error": …}`` answers (with a status, or in-band in a stream) become the error table's
classes, and an answer that does not parse becomes ``OllamaError``. Each endpoint method maps arguments
to JSON and the answer to a typed record (the readers of errors and answers are in ``ollama_answers``).

The official ``ollama`` Python client is not used: its public API drops fields this package depends on
(``/api/show`` ``tensors`` and ``projector_info``, ``capabilities`` in ``/api/tags``), has no
``/api/version``, and offers no public way to read the raw answer. httpx is what it is built on; a
``transport`` argument takes ``httpx.MockTransport`` in unit tests, while integration tests use the
real loopback Ollama double (``model_manager.testing``).

Timeouts differ per call: quick metadata calls fail fast, a model load may legitimately take minutes
(and sends nothing until it ends), and a pull's limit is on *silence*, never on total length, with a
longer one while Ollama verifies what it fetched (see docs/ollama.md).
httpx is imported on first use, as command-line start-up cannot afford it for ``--help``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from typing import TYPE_CHECKING, Any

from .config import (
    DEFAULT_LOAD_TIMEOUT_S,
    DEFAULT_OLLAMA_PORT,
    DEFAULT_PULL_SILENCE_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_VERIFY_MB_S,
    ollama_base_url,
)
from .errors import (
    DownloadFailedError,
    LoadTimedOutError,
    ModelManagerError,
    ModelNotFoundError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from .ollama_answers import OUT_OF_MEMORY as OUT_OF_MEMORY
from .ollama_answers import (
    VERIFYING,
    Malformed,
    error_text,
    field,
    installed_models,
    json_object,
    model_facts,
    pull_progress,
    response_error,
    running_models,
)
from .ollama_answers import is_out_of_memory as is_out_of_memory
from .types import InstalledModel, ModelFacts, ProgressCallback, PullProgress, RunningModel
from .units import MB

if TYPE_CHECKING:
    import httpx

    from .measured import Generation

log = logging.getLogger(__name__)

DEFAULT_PORT = DEFAULT_OLLAMA_PORT
parse_host = ollama_base_url
"""``OLLAMA_HOST`` → the base URL to dial, as Ollama's own CLI reads it (see ``config.ollama_base_url``)."""


class OllamaClient:
    """Typed calls to one Ollama server. Raises only ModelManagerError subclasses."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
        pull_silence_timeout_s: float = DEFAULT_PULL_SILENCE_S,
        verify_mb_s: float = DEFAULT_VERIFY_MB_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.host = parse_host(host)
        self._timeout_s = timeout_s
        self._load_timeout_s = load_timeout_s
        self._pull_silence_timeout_s = pull_silence_timeout_s
        self._verify_mb_s = verify_mb_s
        self._transport = transport
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            import ssl

            import httpx

            # Plain-HTTP hosts (the usual local Ollama) use no TLS, so skip loading the CA bundle: that
            # costs tens of milliseconds per client.
            verify: ssl.SSLContext | bool = True
            if not self.host.lower().startswith("https://"):
                verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._http = httpx.Client(
                base_url=self.host,
                transport=self._transport,
                verify=verify,
                timeout=self._timeout(self._timeout_s),
                headers={"Accept": "application/json"},
            )
        return self._http

    def _timeout(self, read_s: float | None) -> httpx.Timeout:
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
                f"Ollama at {self.host} did not answer in time ({type(exc).__name__})",
                host=self.host,
                timed_out=isinstance(exc, httpx.ReadTimeout),
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise OllamaUnavailableError(
                f"cannot connect to Ollama at {self.host}: {exc}", host=self.host
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
        except (Malformed, ValueError) as exc:
            raise OllamaError(f"Ollama at {self.host} sent a malformed response: {exc}") from None

    @contextmanager
    def _exchange(
        self, method: str, path: str, body: Mapping[str, Any] | None, read_s: float | None, name: str | None
    ) -> Iterator[httpx.Response]:
        """One request to Ollama, its response open for reading; a status ≥ 400 raises ours."""
        with self._translated(name):
            request = self._client().build_request(method, path, json=body, timeout=self._timeout(read_s))
            response = self._client().send(request, stream=True)
            try:
                if response.status_code >= 400:
                    raise response_error(error_text(response.read()), response.status_code, name)
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
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        limit: Callable[[], float],
        backstop_s: float,
        name: str | None,
    ) -> Generator[Mapping[str, Any]]:
        """A streamed request: one JSON object per line; an in-band ``error`` line raises ours.

        ``limit()`` is the silence allowed before the next line, asked again after each one (httpx's
        read timeout is fixed when the response starts, and a pull's phases need different limits),
        so a reader thread does the I/O and this one waits on it. The reader's own read timeout,
        ``backstop_s``, only ends a reader left behind on a server that never answered at all.
        """
        lines: queue.Queue[tuple[str, Any]] = queue.Queue()
        opened: list[httpx.Response] = []
        stop = threading.Event()

        def read() -> None:
            try:
                with self._exchange("POST", path, body, backstop_s, name) as response, self._translated(name):
                    opened.append(response)
                    if stop.is_set():
                        return
                    for line in response.iter_lines():
                        if stop.is_set():
                            return
                        lines.put(("line", line))
                lines.put(("end", None))
            except BaseException as exc:
                lines.put(("error", exc))

        reader = threading.Thread(target=read, name="ollama-stream", daemon=True)
        reader.start()
        try:
            while True:
                wait = limit()
                try:
                    kind, item = lines.get(timeout=wait)
                except queue.Empty:
                    raise OllamaUnavailableError(
                        f"Ollama at {self.host} did not answer in time (silent for {wait:g} s)",
                        host=self.host,
                        timed_out=True,
                    ) from None
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                with self._translated(name):
                    if not item.strip():
                        continue
                    doc = json_object(json.loads(item), "a stream line")
                if "error" in doc:
                    raise response_error(str(doc["error"]), -1, name)
                yield doc
        finally:
            stop.set()
            _hang_up(opened)

    # --- endpoints ---------------------------------------------------------------------------------

    def version(self) -> str:
        """Ollama's version string; the cheapest call that proves it answers."""
        with self._translated(None):
            answer = json_object(self._call("GET", "/api/version"), "the answer")
            return str(field(answer, "version", str, ""))

    def is_alive(self) -> bool:
        try:
            self.version()
        except ModelManagerError:
            return False
        return True

    def list_models(self) -> list[InstalledModel]:
        """``/api/tags``: what Ollama has on disk."""
        with self._translated(None):
            return installed_models(self._call("GET", "/api/tags"))

    def running(self) -> list[RunningModel]:
        """``/api/ps``: what Ollama has loaded, with how much of it is in VRAM."""
        with self._translated(None):
            return running_models(self._call("GET", "/api/ps"))

    def show(self, name: str) -> ModelFacts:
        """``/api/show``. Raises ModelNotInstalledError when Ollama lacks the model.

        The token-embedding tensor's shape gives the vocabulary size the memory estimate needs
        (non-verbose ``model_info`` sends the token list as null).
        """
        with self._translated(name):
            return model_facts(name, self._call("POST", "/api/show", {"model": name}, name=name))

    def pull(self, name: str, on_progress: ProgressCallback | None = None) -> None:
        """Stream ``/api/pull`` to the end, reporting (status, completed, total) for each line.

        Raises ModelNotFoundError when the registry has no such model, DownloadFailedError with
        Ollama's own text for any other failure (including a stream that ends without "success").
        """
        last = ""
        try:
            # closing(): a callback that raises (a cancelled job) hangs up now, so Ollama stops fetching.
            with closing(self._pull_lines(name)) as lines:
                for line in lines:
                    last = line.status
                    if on_progress is not None:
                        on_progress(line.status, line.completed, line.total)
        except ModelNotInstalledError as exc:
            raise ModelNotFoundError(name, ollama_message=str(exc)) from exc
        except OllamaError as exc:
            text = exc.detail
            # Only the manifest's 404 means "no such model" (server/images.go PullModel wraps it as
            # "pull model manifest: …"); a blob's 404 mid-pull is a bare "file does not exist".
            if text.startswith("pull model manifest: file does not exist"):
                raise ModelNotFoundError(f"{name} (Ollama: {text})", ollama_message=text) from exc
            raise DownloadFailedError(f"{name}: {text}", ollama_message=text) from exc
        except OllamaUnavailableError as exc:
            raise DownloadFailedError(f"{name}: {exc.detail}", cause="ollama_unavailable") from exc
        if last != "success":
            raise DownloadFailedError(f"{name}: the pull stream ended before success (last status {last!r})")

    def verify_limit_s(self, verified_bytes: int) -> float:
        """Silence allowed after ``verifying sha256 digest``: Ollama re-reads every fetched blob to hash
        it and sends nothing until ``writing manifest`` (server/images.go ``PullModel``)."""
        return self._pull_silence_timeout_s + verified_bytes / (self._verify_mb_s * MB)

    def _pull_lines(self, name: str) -> Generator[PullProgress]:
        """The pull's lines, with the silence limit of the phase Ollama is in: while it verifies, one
        scaled to the bytes it fetched (the blobs whose first line was not already complete, as the
        one line of a blob already on disk is)."""
        fetched: dict[str, int] = {}
        seen: set[str] = set()
        verifying = False

        def limit() -> float:
            return self.verify_limit_s(sum(fetched.values())) if verifying else self._pull_silence_timeout_s

        body = {"model": name, "stream": True}
        backstop = self.verify_limit_s(1 << 40)
        with closing(self._lines("/api/pull", body, limit=limit, backstop_s=backstop, name=name)) as docs:
            for doc in docs:
                line = pull_progress(doc)
                if line.digest and line.digest not in seen:
                    seen.add(line.digest)
                    if line.completed < line.total:
                        fetched[line.digest] = line.total
                verifying = line.status == VERIFYING
                yield line

    def delete(self, name: str) -> None:
        """``/api/delete``. Raises ModelNotInstalledError when Ollama lacks the model."""
        self._call("DELETE", "/api/delete", {"model": name}, name=name)

    def load(
        self, name: str, keep_alive: int | float | str | None = None, *, capabilities: tuple[str, ...] = ()
    ) -> None:
        """Load ``name`` into memory; blocks until loaded.

        A model with the ``completion`` capability (or none known) loads with an empty generate; any
        other (an embedding model) with an empty ``/api/embed``, since Ollama refuses generate for a
        model without ``completion`` (server/routes.go ``GenerateHandler``: 400 ``"<name>" does not
        support generate``) and checks no capability for embed (``EmbedHandler``).

        Raises LoadTimedOutError when Ollama says nothing within the load timeout (having hung up,
        the load is aborted there: llm/llama_server.go ``WaitUntilRunning``), InsufficientVramError for
        an out-of-memory load, ModelNotInstalledError, OllamaUnavailableError, OllamaError.
        """
        embed = bool(capabilities) and "completion" not in capabilities
        try:
            try:
                self._load(name, keep_alive, embed=embed)
            except OllamaError as exc:
                if embed or "does not support generate" not in exc.detail:
                    raise
                self._load(name, keep_alive, embed=True)  # the facts were stale: it embeds
        except OllamaUnavailableError as exc:
            if not exc.fields.get("timed_out"):
                raise
            raise LoadTimedOutError(
                f"{name}: Ollama sent nothing for {self._load_timeout_s:g} s (MODEL_MANAGER_LOAD_TIMEOUT); "
                "the load was abandoned, and Ollama stops a load its client hangs up on",
                host=self.host,
            ) from None

    def _load(self, name: str, keep_alive: int | float | str | None, *, embed: bool) -> None:
        body: dict[str, Any] = {"model": name, "input": []} if embed else {"model": name, "prompt": ""}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        path = "/api/embed" if embed else "/api/generate"
        self._call("POST", path, body | {"stream": False}, name=name, read_s=self._load_timeout_s)

    def unload(self, name: str) -> None:
        """Ask Ollama to unload ``name`` now (keep_alive 0); 200 even when it was not loaded, and for any
        model (GenerateHandler unloads before it checks capabilities)."""
        self._call(
            "POST",
            "/api/generate",
            {"model": name, "prompt": "", "keep_alive": 0, "stream": False},
            name=name,
        )

    def generate(
        self,
        name: str,
        prompt: str,
        *,
        images: tuple[str, ...] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Generation:
        """One non-streaming ``/api/generate`` (``images`` base64-encoded) and Ollama's timing of it. Nothing
        comes back until the answer is whole, so it may take the load timeout and as long again to generate.
        Raises as ``load`` does."""
        from .measured import Generation

        body: dict[str, Any] = {
            "model": name,
            "prompt": prompt,
            "stream": False,
            "options": dict(options or {}),
        }
        body |= {"images": list(images)} if images else {}
        doc = self._call("POST", "/api/generate", body, name=name, read_s=2 * self._load_timeout_s)
        with self._translated(name):
            return Generation.from_answer(json_object(doc, "the answer"))


def _hang_up(opened: list[httpx.Response]) -> None:
    """Shut the stream's socket so a reader blocked on it wakes up (closing alone may not wake it)."""
    import socket

    for response in opened:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
