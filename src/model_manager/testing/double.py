"""``OllamaDouble``: a real HTTP server on 127.0.0.1 that behaves like Ollama, for tests.

It keeps installed models, a runner table and a "remote library" of pullable models (by default
every ``ollama_tag`` of the built-in catalog), streams pulls as NDJSON with per-blob byte counts,
resumes cut pulls, enforces an optional memory budget, and has fault switches (``faults``) and a
request log (``requests``). Library code, the REST API and CLI subprocesses talk to it over real
HTTP exactly as they would talk to Ollama, so nothing of ours is mocked.

It answers as Ollama ``DEFAULT_VERSION`` does (docs/ollama.md lists what that means), and reads model
names with its own port of Ollama's rules (``_names``), never the manager's.

    with OllamaDouble() as ollama:
        ollama.install("llama3.2:1b-instruct-q8_0")
        client = ollama_lib.Client(host=ollama.url)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from ..catalog import load_catalog
from ._api import Api, Responder
from ._faults import Faults, RequestRecord
from ._go import MAX_DURATION_NS, parse_go_duration, parse_keep_alive
from ._models import MODEL_MEDIA, LibraryModel
from ._names import display, fold_key
from ._server import DoubleHTTPServer
from ._state import State

DEFAULT_VERSION = "0.32.15"
"""The Ollama release whose behaviour the double follows (llama-server loads and their out-of-memory
wording, ``capabilities`` in ``/api/tags``, ``:cloud``/``:local`` markers, the unload and load replies)."""


class OllamaDouble:
    """An Ollama protocol double on a loopback port; start/stop it or use it as a context manager.

    ``vram_bytes``/``ram_bytes`` set a memory budget (None: unlimited): a load that does not fit in
    VRAM spills to RAM (``size_vram < size``); one that does not fit in both fails with Ollama's
    500. ``keep_alive`` is the server default (``OLLAMA_KEEP_ALIVE``). ``catalog=False`` starts with
    an empty library. ``pull_chunks`` steps (``pull_delay_s`` each) fetch a model blob. Generations are
    timed as if each token read the model's weights at ``memory_bandwidth_gbps`` (``generation_rate``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        catalog: bool = True,
        library: Iterable[LibraryModel] = (),
        vram_bytes: int | None = None,
        ram_bytes: int | None = None,
        max_loaded_models: int | None = None,
        keep_alive: str = "5m",
        context_length: int = 4096,
        pull_chunks: int = 4,
        pull_delay_s: float = 0.0,
        version: str = DEFAULT_VERSION,
        responder: Responder | None = None,
        memory_bandwidth_gbps: float = 100.0,
    ) -> None:
        self._host = host
        self._port = port
        self._state = State(
            default_keep_alive_ns=_server_keep_alive(keep_alive),
            default_context=context_length,
            vram_bytes=vram_bytes,
            ram_bytes=ram_bytes,
            max_loaded_models=max_loaded_models,
        )
        self.faults = Faults(on_down=self._set_down)
        self._api = Api(self._state, self.faults, version=version, responder=responder)
        self._api.pull_chunks = pull_chunks
        self._api.pull_delay_s = pull_delay_s
        self.memory_bandwidth_gbps = memory_bandwidth_gbps
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._server: DoubleHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._server_lock = threading.Lock()
        if catalog:
            for entry in load_catalog():
                self._state.add_library(LibraryModel.from_catalog(entry))
        for model in library:
            self._state.add_library(model)

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (0 until first started with an ephemeral port)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what a client's host / OLLAMA_HOST should be."""
        return f"http://{self._host}:{self._port}"

    def start(self) -> Self:
        """Listen and serve on a background thread; returns self."""
        self._state.closing.clear()
        self._listen()
        return self

    def stop(self) -> None:
        """Stop listening, hang up on every client and end waits (hangs, slow answers, pull delays)."""
        self._state.closing.set()
        self._unlisten()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _listen(self) -> None:
        with self._server_lock:
            if self._server is not None:
                return
            server = self._bind()
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="ollama-double", daemon=True
            )
            self._thread.start()

    def _bind(self) -> DoubleHTTPServer:
        """Bind the configured port (the old one when coming back up), retrying briefly if busy."""
        deadline = time.monotonic() + 2.0
        while True:
            try:
                return DoubleHTTPServer(
                    (self._host, self._port),
                    self._api.routes(),
                    self.faults,
                    self._record,
                    self._state.closing,
                )
            except OSError:
                if self._port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _unlisten(self) -> None:
        with self._server_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    def _set_down(self, down: bool) -> None:
        if down:
            self._unlisten()
        else:
            self._listen()

    @property
    def down(self) -> bool:
        """True while the double refuses connections (same switch as ``faults.down``)."""
        return self.faults.down

    @down.setter
    def down(self, value: bool) -> None:
        self.faults.down = value

    # -- request log ------------------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far, oldest first (a copy)."""
        with self._log_lock:
            return list(self._log)

    def requests_to(self, path: str, method: str | None = None) -> list[RequestRecord]:
        """The logged requests for one path (and method)."""
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    # -- settings that may change while running ---------------------------------------------------

    @property
    def vram_bytes(self) -> int | None:
        return self._state.vram_bytes

    @vram_bytes.setter
    def vram_bytes(self, value: int | None) -> None:
        with self._state.lock:
            self._state.vram_bytes = value

    @property
    def ram_bytes(self) -> int | None:
        return self._state.ram_bytes

    @ram_bytes.setter
    def ram_bytes(self, value: int | None) -> None:
        with self._state.lock:
            self._state.ram_bytes = value

    @property
    def max_loaded_models(self) -> int | None:
        return self._state.max_loaded_models

    @max_loaded_models.setter
    def max_loaded_models(self, value: int | None) -> None:
        with self._state.lock:
            self._state.max_loaded_models = value

    @property
    def pull_chunks(self) -> int:
        return self._api.pull_chunks

    @pull_chunks.setter
    def pull_chunks(self, value: int) -> None:
        self._api.pull_chunks = max(1, value)

    @property
    def pull_delay_s(self) -> float:
        return self._api.pull_delay_s

    @pull_delay_s.setter
    def pull_delay_s(self, value: float) -> None:
        self._api.pull_delay_s = value

    @property
    def token_delay_s(self) -> float:
        """Pause between streamed generate/chat chunks."""
        return self._api.token_delay_s

    @token_delay_s.setter
    def token_delay_s(self, value: float) -> None:
        self._api.token_delay_s = value

    @property
    def verify_delay_s(self) -> float:
        """Silence between ``verifying sha256 digest`` and ``writing manifest`` on a pull that fetched
        something (Ollama hashes every fetched blob again and says nothing meanwhile)."""
        return self._api.verify_delay_s

    @verify_delay_s.setter
    def verify_delay_s(self, value: float) -> None:
        self._api.verify_delay_s = value

    @property
    def memory_bandwidth_gbps(self) -> float:
        """The timing model of generations: each token reads the model's weights once at this many GB/s
        (``generation_rate``), so ``eval_duration`` grows with the model's size; prompts run
        ``prompt_speedup`` times faster. Deterministic, so tests can predict every figure."""
        return self._api.memory_bandwidth_gbps

    @memory_bandwidth_gbps.setter
    def memory_bandwidth_gbps(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"memory_bandwidth_gbps must be > 0, got {value}")
        self._api.memory_bandwidth_gbps = value

    @property
    def prompt_speedup(self) -> float:
        return self._api.prompt_speedup

    @prompt_speedup.setter
    def prompt_speedup(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"prompt_speedup must be > 0, got {value}")
        self._api.prompt_speedup = value

    def generation_rate(self, name: str) -> float:
        """Tokens per second generate and chat report for the library or installed model ``name``.
        Raises KeyError for a model the double does not know."""
        model = self.library_model(name)
        installed = self._state.find(name)
        if installed is not None:
            model = installed.model
        if model is None:
            raise KeyError(f"{name!r} is neither installed nor in the double's library")
        return self._api.generation_rate(model)

    @property
    def load_delay_s(self) -> float:
        """Extra time a cold model load takes (it shows in ``load_duration``)."""
        return self._api.load_delay_s

    @load_delay_s.setter
    def load_delay_s(self, value: float) -> None:
        self._api.load_delay_s = value

    # -- models -----------------------------------------------------------------------------------

    def add_library_model(
        self,
        name: str,
        *,
        size: int,
        model_info: Mapping[str, Any] | None = None,
        capabilities: Iterable[str] = ("completion",),
        family: str = "",
        quantization: str = "Q4_K_M",
    ) -> LibraryModel:
        """Make ``name`` pullable with these facts (missing ``model_info`` is synthesised)."""
        model = LibraryModel.build(
            name,
            size=size,
            model_info=model_info,
            capabilities=capabilities,
            family=family,
            quantization=quantization,
        )
        self._state.add_library(model)
        return model

    def library(self) -> list[str]:
        """Display names of every pullable model."""
        with self._state.lock:
            return sorted(m.name for m in self._state.library.values())

    def library_model(self, name: str) -> LibraryModel | None:
        with self._state.lock:
            return self._state.library.get(fold_key(name))

    def install(
        self,
        name: str,
        *,
        size: int | None = None,
        model_info: Mapping[str, Any] | None = None,
        capabilities: Iterable[str] | None = None,
        family: str = "",
        quantization: str = "",
        modified_at: datetime | None = None,
    ) -> LibraryModel:
        """Install ``name`` directly, as if pulled: from the library, or from the facts given.

        With ``size`` the model is built from the arguments (and is not pullable unless it is
        also in the library). Without it the library's model is used under the spelling given.
        Raises KeyError when ``size`` is missing and the library has no such model.
        """
        shown = display(name)
        if size is None:
            published = self.library_model(name)
            if published is None:
                raise KeyError(f"{name!r} is not in the double's library; pass size= to install it anyway")
            model = published.renamed(shown) if published.name != shown else published
        else:
            model = LibraryModel.build(
                shown,
                size=size,
                model_info=model_info,
                capabilities=capabilities or ("completion",),
                family=family,
                quantization=quantization,
            )
        self._state.install(model, modified_at)
        return model

    def uninstall(self, name: str) -> bool:
        """Remove an installed model; False when it was not installed."""
        return self._state.uninstall(name)

    def installed(self) -> list[str]:
        """Installed display names, in ``/api/tags`` order (newest first)."""
        return [m["name"] for m in self._state.tags()]

    def loaded(self) -> list[str]:
        """Names of the loaded models (runners), in ``/api/ps`` order."""
        return [m["name"] for m in self._state.ps()]

    def load(self, name: str, *, keep_alive: str | float | None = None, num_ctx: int | None = None) -> None:
        """Load an installed model as a preload request would. Raises KeyError if not installed."""
        installed = self._state.find(name)
        if installed is None:
            raise KeyError(f"{name!r} is not installed")
        keep = parse_keep_alive(keep_alive)
        runner, _ = self._state.load(installed.model, keep, num_ctx)
        self._state.finish(runner, keep)

    @property
    def aborted_loads(self) -> list[str]:
        """Models whose load was abandoned because the client hung up (Ollama's 499), oldest first."""
        with self._state.lock:
            return list(self._state.aborted_loads)

    def unload(self, name: str) -> None:
        installed = self._state.find(name)
        if installed is not None:
            self._state.unload(installed.model)

    def partial_bytes(self, name: str) -> int:
        """Bytes of ``name``'s model blob fetched by unfinished pulls (0 when none or complete)."""
        model = self.library_model(name)
        if model is None:
            return 0
        blob = next(x for x in model.layers() if x.media_type == MODEL_MEDIA)
        with self._state.lock:
            return self._state.partial.get(blob.digest, 0)


def _server_keep_alive(value: str) -> int:
    """``OLLAMA_KEEP_ALIVE``: a Go duration or whole seconds; negative means forever."""
    text = value.strip()
    ns = int(text) * 1_000_000_000 if text.lstrip("-").isdigit() else parse_go_duration(text)
    return MAX_DURATION_NS if ns < 0 else ns
