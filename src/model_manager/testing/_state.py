"""The double's state: library, installed models, blobs, partial downloads and the runner table.

Everything here is guarded by one re-entrant lock (with a condition for download progress), because
the HTTP server answers each connection on its own thread and tests change state while it runs.

Pulls are modelled per blob, as Ollama's downloader works: a blob already on disk is reported once
with ``completed == total``; a missing one is fetched in ``chunks`` steps. Bytes done survive a cut
stream (they are kept as "partial"), so the next pull resumes from them. Concurrent pulls of the same
blob share one ``BlobDownload``: whichever subscriber holds the lead advances it one step at a time and
the others report what they observe; when the leader's client goes away the lead passes on. Because
the leader advances only after writing its previous line, a cut stream's last ``completed`` is exactly
what the next pull starts from. The small blobs (template, license, params, config) arrive in one step
and are reported with one line each.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._go import go_time, local_now
from ._models import MODEL_MEDIA, Layer, LibraryModel
from ._names import Name, fold_key, parse_name

Key = tuple[str, str, str, str]

OOM_MESSAGES = (
    "llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory",
    "llama-server reported out-of-memory during startup: "
    "llama_init_from_model: failed to allocate compute buffers",
    "llama-server reported out-of-memory during startup: error: not enough memory for the KV cache",
    "llama-server reported out-of-memory during startup: "
    "ggml_vulkan: Device memory allocation failed: ErrorOutOfDeviceMemory",
)
"""How current Ollama reports a load that ran out of memory (llm/llama_server.go ``WaitUntilRunning``: the
prefix; llm/status.go: the captured line starts at one of ``errorPrefixes`` or matches
``outOfMemorySubstrings``, e.g. ``cudaMalloc failed``, ``failed to allocate``, ``not enough memory``,
``erroroutofmemory``). The first is what the double's memory budget answers."""

Emit = Callable[[dict[str, Any]], None]


class LoadError(Exception):
    """A model could not be loaded; ``message`` is Ollama's text."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PullFailed(Exception):
    """A pull failed after its stream started; the text goes into an ``{"error": ...}`` line."""


class Closing(Exception):
    """The double is stopping; abandon the request."""


@dataclass
class Installed:
    model: LibraryModel
    modified_at: datetime

    def tags_entry(self) -> dict[str, Any]:
        """api/types.go ``ListModelResponse``, with v0.30's ``capabilities`` and detail lengths."""
        return {
            "name": self.model.name,
            "model": self.model.name,
            "modified_at": go_time(self.modified_at),
            "size": self.model.size,
            "digest": self.model.digest,
            "details": self.model.details(lengths=True),
            "capabilities": self.model.tags_capabilities(),
        }


@dataclass
class Runner:
    """One loaded model, as ``/api/ps`` shows it."""

    model: LibraryModel
    size: int
    size_vram: int
    context_length: int
    keep_alive_ns: int
    expires_at: datetime
    busy: int = 0
    loading: bool = False
    """Still starting: not in ``/api/ps`` yet, and it is not evicted."""

    def ps_entry(self) -> dict[str, Any]:
        """api/types.go ``ProcessModelResponse``, in its field order."""
        return {
            "name": self.model.name,
            "model": self.model.name,
            "size": self.size,
            "digest": self.model.digest,
            "details": self.model.details(),
            "expires_at": go_time(self.expires_at),
            "size_vram": self.size_vram,
            "context_length": self.context_length,
        }


@dataclass
class BlobDownload:
    layer: Layer
    completed: int
    leader: object | None = None
    subscribers: int = 0
    done: bool = False
    error: str | None = None
    version: int = 0


def expiry(keep_alive_ns: int) -> datetime:
    """now + keep_alive in local time; "forever" lands about 292 years ahead, as in Go."""
    return local_now() + timedelta(microseconds=keep_alive_ns // 1000)


def progress_line(layer: Layer, completed: int) -> dict[str, Any]:
    """A ``pulling <12hex>`` line; ``completed`` is left out while it is 0 (Go omitempty)."""
    line: dict[str, Any] = {"status": f"pulling {layer.short}", "digest": layer.digest, "total": layer.size}
    if completed:
        line["completed"] = completed
    return line


@dataclass
class PullSettings:
    chunks: int = 4
    delay_s: float = 0.0
    error: str | None = None
    """An error to raise once the first blob being downloaded has taken a step."""
    verify_delay_s: float = 0.0
    """Silence between ``verifying sha256 digest`` and ``writing manifest`` when a blob was fetched."""
    missing_blob: bool = False
    """The registry answers 404 for the model blob: the pull fails before its first line."""


@dataclass
class State:
    """All of the double's mutable state; every method takes the lock.

    Models are keyed by their name's case-folded parts (``_names.Name.fold``), as Ollama compares names
    with ``EqualFold``.
    """

    default_keep_alive_ns: int = 300 * 1_000_000_000
    default_context: int = 4096
    vram_bytes: int | None = None
    ram_bytes: int | None = None
    max_loaded_models: int | None = None
    library: dict[Key, LibraryModel] = field(default_factory=dict)
    installed: dict[Key, Installed] = field(default_factory=dict)
    runners: dict[Key, Runner] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)
    partial: dict[str, int] = field(default_factory=dict)
    downloads: dict[str, BlobDownload] = field(default_factory=dict)
    aborted_loads: list[str] = field(default_factory=list)
    """Models whose load was abandoned because the client hung up (Ollama answers 499)."""

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.closing = threading.Event()

    # -- installed models -------------------------------------------------------------------------

    def add_library(self, model: LibraryModel) -> None:
        with self.lock:
            self.library[model.key] = model

    def find(self, raw: str) -> Installed | None:
        """The installed model with this plain name in any case; raises ``_names.NameError_``."""
        return self.find_key(fold_key(raw))

    def find_key(self, key: Key) -> Installed | None:
        with self.lock:
            return self.installed.get(key)

    def existing_name(self, name: Name) -> Name:
        """server/routes.go ``getExistingName``: each part takes the stored spelling of any installed
        name whose same part matches it case-insensitively (the last match wins)."""
        with self.lock:
            stored = [parse_name(i.model.name) for i in self.installed.values()]
        host, namespace, model, tag = name.host, name.namespace, name.model, name.tag
        for e in stored:
            host = e.host if e.host.lower() == host.lower() else host
            namespace = e.namespace if e.namespace.lower() == namespace.lower() else namespace
            model = e.model if e.model.lower() == model.lower() else model
            tag = e.tag if e.tag.lower() == tag.lower() else tag
        return Name(host, namespace, model, tag, name.scheme)

    def install(self, model: LibraryModel, modified_at: datetime | None = None) -> list[str]:
        """Record ``model`` as installed with all its blobs; returns digests an older manifest
        under the same name used that nothing uses now (they are removed)."""
        with self.lock:
            old = self.installed.get(model.key)
            self.installed[model.key] = Installed(model, modified_at or local_now())
            for layer in model.layers():
                self.blobs.add(layer.digest)
                self.partial.pop(layer.digest, None)
            unused = self._unused(old.model.layers()) if old else []
            self.blobs.difference_update(unused)
            return unused

    def _unused(self, layers: Iterable[Layer]) -> list[str]:
        used = {x.digest for i in self.installed.values() for x in i.model.layers()}
        return [x.digest for x in layers if x.digest not in used]

    def uninstall(self, raw: str | Key) -> bool:
        """Remove the manifest, then every blob no other manifest uses. Runners are left alone."""
        key = fold_key(raw) if isinstance(raw, str) else raw
        with self.lock:
            gone = self.installed.pop(key, None)
            if gone is None:
                return False
            self.blobs.difference_update(self._unused(gone.model.layers()))
            return True

    def copy(self, source: Installed, destination: str) -> None:
        """Install ``source`` again as ``destination`` (an existing one keeps its spelling)."""
        with self.lock:
            existing = self.installed.get(fold_key(destination))
            name = existing.model.name if existing else destination
            self.install(source.model.renamed(name))

    def tags(self) -> list[dict[str, Any]]:
        """Newest first at whole-second resolution, ties by name (a stable sort, as Ollama's)."""
        with self.lock:
            items = sorted(self.installed.values(), key=lambda i: i.model.name)
        items.sort(key=lambda i: int(i.modified_at.timestamp()), reverse=True)
        return [i.tags_entry() for i in items]

    # -- runners ----------------------------------------------------------------------------------

    def _purge_expired(self) -> None:
        now = local_now()
        for key in [k for k, r in self.runners.items() if r.busy == 0 and r.expires_at <= now]:
            del self.runners[key]

    def ps(self) -> list[dict[str, Any]]:
        """Loaded runners, latest expiry first (server/routes.go ``PsHandler``)."""
        with self.lock:
            self._purge_expired()
            runners = [r for r in self.runners.values() if not r.loading]
            runners.sort(key=lambda r: r.expires_at, reverse=True)
            return [r.ps_entry() for r in runners]

    def unload(self, model: LibraryModel) -> None:
        with self.lock:
            self.runners.pop(model.key, None)

    def load(
        self, model: LibraryModel, keep_alive_ns: int | None, num_ctx: int | None, *, oom: str | None = None
    ) -> tuple[Runner, bool]:
        """Load ``model`` (or reuse its runner) and mark it busy; returns (runner, cold load?).

        Idle runners are evicted (shortest keep-alive first, then by name) while the new one does not
        fit in free VRAM or the loaded-model limit is reached. What does not fit in VRAM goes to RAM.
        A load that runs out of memory (past the RAM budget, or ``oom`` given) is retried once after
        evicting every other idle model, as server/sched.go ``load`` does, then raises LoadError with
        Ollama's out-of-memory text. A cold runner starts ``loading`` (see ``loaded``).
        """
        with self.lock:
            self._purge_expired()
            context = min(num_ctx or self.default_context, model.context_length)
            runner = self.runners.get(model.key)
            if runner is not None and runner.context_length == context and oom is None:
                if keep_alive_ns is not None:
                    runner.keep_alive_ns = keep_alive_ns
                runner.expires_at = expiry(runner.keep_alive_ns)
                runner.busy += 1
                return runner, False
            self.runners.pop(model.key, None)
            size = model.size + model.kv_cache_bytes(context)
            self._make_room(size)
            size_vram = self._fit(size)
            if size_vram is None or oom is not None:
                self._evict_idle()
                size_vram = self._fit(size)
                if size_vram is None or oom is not None:
                    raise LoadError(oom or OOM_MESSAGES[0])
            keep = self.default_keep_alive_ns if keep_alive_ns is None else keep_alive_ns
            runner = Runner(model, size, size_vram, context, keep, expiry(keep), busy=1, loading=True)
            self.runners[model.key] = runner
            return runner, True

    def loaded(self, runner: Runner) -> None:
        """The runner finished starting: it shows in ``/api/ps``."""
        with self.lock:
            runner.loading = False

    def abort(self, runner: Runner) -> None:
        """The client hung up while ``runner`` was starting: Ollama kills it (llm/llama_server.go
        ``WaitUntilRunning``: "client connection closed before llama-server finished loading, aborting
        load") and answers 499 ``request canceled``; what was evicted for it stays evicted."""
        with self.lock:
            if self.runners.get(runner.model.key) is runner:
                del self.runners[runner.model.key]
            self.aborted_loads.append(runner.model.name)

    def _fit(self, size: int) -> int | None:
        """Bytes of a ``size``-byte model that go to VRAM, or None when the rest does not fit in RAM."""
        free_vram = None if self.vram_bytes is None else self._free_vram()
        size_vram = size if free_vram is None else max(0, min(size, free_vram))
        if self.ram_bytes is not None:
            used_ram = sum(r.size - r.size_vram for r in self.runners.values())
            if size - size_vram > max(0, self.ram_bytes - used_ram):
                return None
        return size_vram

    def _free_vram(self) -> int:
        assert self.vram_bytes is not None
        return max(0, self.vram_bytes - sum(r.size_vram for r in self.runners.values()))

    def _evict_idle(self) -> None:
        for key in [k for k, r in self.runners.items() if r.busy == 0]:
            del self.runners[key]

    def _make_room(self, size: int) -> None:
        while self.runners:
            over_limit = self.max_loaded_models is not None and len(self.runners) >= self.max_loaded_models
            too_big = self.vram_bytes is not None and size > self._free_vram()
            idle = [r for r in self.runners.values() if r.busy == 0]
            if not (over_limit or too_big) or not idle:
                return
            victim = min(idle, key=lambda r: (r.keep_alive_ns, r.model.name))
            del self.runners[victim.model.key]

    def finish(self, runner: Runner, keep_alive_ns: int | None) -> None:
        """A request on ``runner`` ended: restart its keep-alive clock, or unload it for 0."""
        with self.lock:
            runner.busy = max(0, runner.busy - 1)
            runner.loading = False
            if keep_alive_ns is not None:
                runner.keep_alive_ns = keep_alive_ns
            runner.expires_at = expiry(runner.keep_alive_ns)
            if (
                runner.keep_alive_ns == 0
                and runner.busy == 0
                and self.runners.get(runner.model.key) is runner
            ):
                del self.runners[runner.model.key]

    # -- pulls ------------------------------------------------------------------------------------

    def pull(self, name: Name, emit: Emit, settings: PullSettings) -> None:
        """Run one pull (server/images.go ``PullModel``), emitting Ollama's status lines; raises
        PullFailed for an in-stream error.

        ``emit`` may raise (the client went away, or a fault cut the stream); the bytes done are kept.
        """
        emit({"status": "pulling manifest"})
        display = name.display_shortest()
        with self.lock:
            published = self.library.get(name.fold())
            existing = self.installed.get(name.fold())
        if published is None:
            raise PullFailed("pull model manifest: file does not exist")
        spelled = existing.model.name if existing else display
        model = published.renamed(spelled) if spelled != published.name else published
        with self.lock:
            fetched = any(layer.digest not in self.blobs for layer in model.layers())
        pending = settings.error
        for layer in model.layers():
            if settings.missing_blob and layer.media_type == MODEL_MEDIA and layer.digest not in self.blobs:
                # server/download.go Prepare: the registry's 404 on the blob's HEAD, before any line.
                raise PullFailed("file does not exist")
            pending = self._pull_blob(layer, emit, settings, pending)
        if pending:
            raise PullFailed(pending)
        emit({"status": "verifying sha256 digest"})
        # Every blob that was not already on disk is hashed again, with nothing sent meanwhile.
        if fetched and settings.verify_delay_s > 0 and self.closing.wait(settings.verify_delay_s):
            raise Closing()
        emit({"status": "writing manifest"})
        if self.install(model):
            emit({"status": "removing unused layers"})
        emit({"status": "success"})

    def _pull_blob(self, layer: Layer, emit: Emit, settings: PullSettings, pending: str | None) -> str | None:
        with self.cond:
            download = None
            if layer.digest in self.blobs or layer.media_type != MODEL_MEDIA:
                self.blobs.add(layer.digest)
            else:
                download = self.downloads.get(layer.digest)
                if download is None:
                    download = BlobDownload(layer, self.partial.get(layer.digest, 0))
                    self.downloads[layer.digest] = download
                download.subscribers += 1
        if download is None:
            emit(progress_line(layer, layer.size))
            return pending
        me = object()
        try:
            return self._follow(download, me, emit, settings, pending)
        finally:
            with self.cond:
                download.subscribers -= 1
                if download.leader is me:
                    download.leader = None
                if download.subscribers == 0 and self.downloads.get(layer.digest) is download:
                    del self.downloads[layer.digest]
                self.cond.notify_all()

    def _follow(
        self, download: BlobDownload, me: object, emit: Emit, settings: PullSettings, pending: str | None
    ) -> str | None:
        seen = -1
        while True:
            with self.cond:
                while download.version == seen and not download.done and download.error is None:
                    if self.closing.is_set():
                        raise Closing()
                    if download.leader is None:
                        download.leader = me
                    if download.leader is me:
                        break
                    self.cond.wait(0.2)
                completed, version = download.completed, download.version
                done, error, leading = download.done, download.error, download.leader is me
            if version != seen:
                seen = version
                emit(progress_line(download.layer, completed))
            if error is not None:
                raise PullFailed(error)
            if done:
                return pending
            if leading:
                if self.closing.wait(settings.delay_s):
                    raise Closing()
                if self._advance(download, settings, pending):
                    pending = None

    def _advance(self, download: BlobDownload, settings: PullSettings, error: str | None) -> bool:
        """Take one step; fail the download with ``error`` if it is not finished. True if it failed."""
        with self.cond:
            layer = download.layer
            step = max(1, math.ceil(layer.size / max(1, settings.chunks)))
            download.completed = min(layer.size, download.completed + step)
            self.partial[layer.digest] = download.completed
            if download.completed >= layer.size:
                download.done = True
                self.blobs.add(layer.digest)
                self.partial.pop(layer.digest, None)
            elif error is not None:
                download.error = error
                if self.downloads.get(layer.digest) is download:
                    del self.downloads[layer.digest]
            download.version += 1
            self.cond.notify_all()
            return download.error is not None
