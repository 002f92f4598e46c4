"""Background jobs: each pull (or benchmark) runs on a background thread, so no HTTP request outlives it.

Pulling a 40 GB model takes longer than any HTTP timeout, so the REST API starts a job and answers at
once. ``Jobs`` holds the machinery; ``DownloadJobs`` pulls, and ``api.benchmarks.BenchmarkJobs``
benchmarks (each kind names its errors in a ``JobKind``, and its rows carry the kind). The rules:

* One job per model and host at a time: starting a model whose job is queued or running there joins
  that job. A job pulls on its host (the server's own unless ``host`` names another; ``auto`` lets
  placement choose, and resumes an interrupted job of the model on the host it was pulling to).
* At most ``max_parallel`` pulls run at once; the others wait as "queued".
* Progress comes from ``manager.download(name, progress)``. Cancelling raises from that callback; the
  exception unwinds through the Ollama adapter's stream, which closes the pull connection, and Ollama
  keeps the partial blobs. A cancel therefore takes effect at the next progress line.
* Jobs belong to this object, not to requests: a client that goes away cancels nothing.
* Every change of state is written to the store at once, progress at most every
  ``persist_interval_s``. Each row names its owner: the process (``liveness.process_token``: pid and
  start time, so a reused pid is not taken for the dead process) and the jobs object in it. A job
  left queued or running by an owner that is gone shows as "interrupted", in any process that reads,
  cancels or starts it (several servers may share one home); starting the same model again resumes
  that job under the same id (Ollama continues from the partial blobs). A pull to another host that
  stops answering mid-way is interrupted too, and resumes on that host in the same way (on the server's
  own host it fails, as it always has: that Ollama is the server's own to restart).
* Watchers (the SSE stream) wait on an asyncio event set from the worker thread through their own
  loop, so a waiting stream holds no thread of the server's pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import (
    DownloadFailedError,
    InternalError,
    ModelManagerError,
    OllamaUnavailableError,
)
from ..fleet import Fleet
from ..liveness import is_alive, process_token
from ..names import name_key
from ..store import utc_now
from .job_record import DOWNLOAD, Job, JobKind

if TYPE_CHECKING:
    from ..manager import ManagerCore
    from ..types import ProgressCallback

log = logging.getLogger(__name__)

ACTIVE = frozenset({"queued", "running"})
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
KEEP_FINISHED = 500
"""Finished jobs kept in the store (older ones are pruned when a job ends)."""
KEEP_IN_MEMORY = 100

# Owners ("<pid>:<start>/<instance>") of the Jobs objects alive in this process: a job whose
# owner is this process but not one of these was left behind by an object that is gone.
_LIVE_OWNERS: set[str] = set()


class _Cancelled(Exception):
    """Raised from the progress callback to stop a pull that was cancelled."""


class _Stopping(Exception):
    """Raised from the progress callback to stop a pull because the jobs are closing."""


Watcher = tuple[asyncio.AbstractEventLoop, asyncio.Event]


@dataclass(eq=False)
class _Live:
    """A job run by this process, with what its worker and watchers share (guarded by the jobs lock)."""

    job: Job
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    version: int = 0
    layers: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    persisted_at: float = 0.0
    watchers: set[Watcher] = field(default_factory=set)


class Jobs:
    """The jobs of one kind in one server process over one manager (and its store); a subclass names the
    kind and does the work (``_work``)."""

    kind: ClassVar[JobKind] = DOWNLOAD

    def __init__(
        self,
        manager: ManagerCore,
        *,
        max_parallel: int = 2,
        persist_interval_s: float = 0.5,
        on_bytes: Callable[[str, int], None] | None = None,
        on_finish: Callable[[dict[str, Any]], None] | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self.manager = manager
        self.fleet = fleet or Fleet(manager)
        self.store = manager.store
        self.owner = f"{process_token()}/{uuid.uuid4().hex[:8]}"
        self.persist_interval_s = persist_interval_s
        self._on_bytes = on_bytes
        self._on_finish = on_finish
        self._lock = threading.RLock()
        self._slots = threading.Semaphore(max(1, max_parallel))
        self._closing = threading.Event()
        self._live: dict[str, _Live] = {}
        self._active: dict[tuple[str, str], _Live] = {}  # by (host, model key)
        self._threads: dict[str, threading.Thread] = {}
        _LIVE_OWNERS.add(self.owner)
        self._interrupt_orphans()

    def _interrupt_orphans(self) -> None:
        """Mark the active jobs of owners that are gone as interrupted (checked again under the store's
        write lock, so two processes doing this at once agree)."""
        interrupted = self.store.interrupt_jobs(_orphaned, utc_now())
        if interrupted:
            log.info("jobs whose server is gone, now interrupted: %s", ", ".join(interrupted))

    def _row(
        self, row: dict[str, Any] | None, reread: Callable[[], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """``row`` as it stands once a dead owner's active job is marked interrupted."""
        if row is not None and row["status"] in ACTIVE and _orphaned(row["owner"] or ""):
            self._interrupt_orphans()
            return reread()
        return row

    # --- starting, reading, cancelling ------------------------------------------------------------

    def start(self, name: str, host: str | None = None) -> tuple[dict[str, Any], bool]:
        """Start the job for ``name`` on ``host`` (see the module's rules), or join its queued or running
        job there. Returns (job, started).

        An interrupted job of the same model on that host is resumed under its id. Raises
        InvalidModelNameError, UnknownHostError, the placement's errors for ``auto``, the kind's
        ``interrupted`` error when the jobs are closing.
        """
        model = self.manager.canonical_name(name)
        key = name_key(model)
        where = self._host_for(model, key, host)
        with self._lock:
            if self._closing.is_set():
                raise self.kind.interrupted("the server is stopping")
            live = self._active.get((where, key))
            if live is not None:
                return live.job.to_dict(), False
            live = _Live(self._new_or_resumed(model, key, where))
            self._live[live.job.id] = live
            self._active[(where, key)] = live
            self._persist(live)
            thread = threading.Thread(
                target=self._run, args=(live,), name=f"{self.kind.name}-{live.job.id}", daemon=True
            )
            self._threads[live.job.id] = thread
            thread.start()
            return live.job.to_dict(), True

    def _host_for(self, model: str, key: str, host: str | None) -> str:
        """The host a job of ``model`` runs on: the server's own, the one named, or for ``auto`` the one
        with the model's interrupted or running job, else the one placement chooses."""
        if host is None:
            return self.manager.settings.host_name
        if host.strip().lower() != "auto":
            return self.fleet.manager(host).settings.host_name
        with self._lock:
            running = next((h for h, k in self._active if k == key), None)
        if running is not None:
            return running
        kind = self.kind.name
        latest = self._row(
            self.store.latest_job(key, kind, None), lambda: self.store.latest_job(key, kind, None)
        )
        if latest is not None and latest["status"] == "interrupted":
            return str(latest["host"])
        from ..placement import place

        return place(self.fleet, model).host.name

    def _new_or_resumed(self, model: str, key: str, host: str) -> Job:
        now = utc_now()
        kind = self.kind.name
        previous = self._row(
            self.store.latest_job(key, kind, host), lambda: self.store.latest_job(key, kind, host)
        )
        if previous is not None and previous["status"] == "interrupted":
            job = Job.from_row(previous)
            # Progress restarts with this attempt's lines (the first ones report what is already on disk).
            return replace(
                job,
                status="queued",
                completed=0,
                total=0,
                detail="",
                error=None,
                finished_at=None,
                attempts=job.attempts + 1,
                updated_at=now,
            )
        return Job(
            id=uuid.uuid4().hex[:16],
            model=model,
            key=key,
            host=host,
            created_at=now,
            updated_at=now,
            kind=kind,
        )

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's current state. Raises the kind's ``not_found`` error."""
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                return live.job.to_dict()
        return self._stored(job_id).to_dict()

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest jobs first, live state for the ones running here."""
        rows = self.store.list_jobs(limit, self.kind.name)
        with self._lock:
            foreign = [r for r in rows if r["status"] in ACTIVE and r["id"] not in self._live]
        if any(_orphaned(r["owner"] or "") for r in foreign):
            self._interrupt_orphans()
            rows = self.store.list_jobs(limit, self.kind.name)
        with self._lock:
            return [
                self._live[r["id"]].job.to_dict() if r["id"] in self._live else Job.from_row(r).to_dict()
                for r in rows
            ]

    def cancel(self, job_id: str, wait_s: float = 2.0) -> dict[str, Any]:
        """Cancel a queued, running or interrupted job; wait up to ``wait_s`` for it to stop.

        Returns the job (still "running" if the work has not reached its next progress line). Raises
        the kind's ``not_found``, or ``conflict`` when the job has ended or another process runs it.
        """
        with self._lock:
            live = self._live.get(job_id)
            active = live is not None and live.job.status in ACTIVE
            if live is not None and active:
                live.cancel.set()
        if live is not None and active:
            live.done.wait(wait_s)
            return self.get(job_id)
        job = live.job if live is not None else self._stored(job_id)
        if job.status == "interrupted":
            now = utc_now()
            error = self.kind.cancelled(job.model).to_dict()
            cancelled = replace(job, status="cancelled", error=error, updated_at=now, finished_at=now)
            self.store.save_job(cancelled.to_row(self.owner))
            if live is not None:
                with self._lock:
                    live.job = cancelled
            return cancelled.to_dict()
        why = "runs in another server process" if job.status in ACTIVE else f"has already {job.status}"
        raise self.kind.conflict(f"job {job_id} ({job.model}) {why}")

    def _stored(self, job_id: str) -> Job:
        row = self._row(self.store.get_job(job_id), lambda: self.store.get_job(job_id))
        if row is None or row["kind"] != self.kind.name:
            raise self.kind.not_found(job_id)
        return Job.from_row(row)

    def active_count(self) -> int:
        """Jobs queued or running in this process."""
        with self._lock:
            return len(self._active)

    def wait(self, job_id: str, timeout_s: float | None = None) -> dict[str, Any]:
        """Block until the job ends (or ``timeout_s`` passes); return its state. Raises ``not_found``."""
        with self._lock:
            live = self._live.get(job_id)
        if live is not None:
            live.done.wait(timeout_s)
        return self.get(job_id)

    async def follow(self, job_id: str, keepalive_s: float = 15.0) -> AsyncIterator[dict[str, Any] | None]:
        """Yield the job on every change until it ends; None after ``keepalive_s`` without one.

        A job not run by this process is yielded once. Raises the kind's ``not_found`` error.
        """
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                watcher: Watcher = (asyncio.get_running_loop(), asyncio.Event())
                live.watchers.add(watcher)
        if live is None:
            yield await asyncio.to_thread(self.get, job_id)
            return
        try:
            seen = -1
            while True:
                watcher[1].clear()
                with self._lock:
                    version, snapshot = live.version, live.job.to_dict()
                if version != seen:
                    seen = version
                    yield snapshot
                if snapshot["status"] not in ACTIVE:
                    return
                try:
                    await asyncio.wait_for(watcher[1].wait(), keepalive_s)
                except TimeoutError:
                    yield None
        finally:
            with self._lock:
                live.watchers.discard(watcher)

    async def ended(self, job_id: str) -> dict[str, Any]:
        """Wait, without holding a thread, until the job ends; return its final state (raises ``not_found``)."""
        last: dict[str, Any] | None = None
        async for update in self.follow(job_id, keepalive_s=3600.0):
            last = update or last
        assert last is not None
        return last

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop every job (they become "interrupted", resumable by the next process) and wait for them."""
        self._closing.set()
        with self._lock:
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for live in list(self._active.values()):
                # Still inside silent work: record it as interrupted now; the worker may yet finish it.
                live.job = replace(live.job, status="interrupted", updated_at=utc_now())
                self._persist(live)
        _LIVE_OWNERS.discard(self.owner)

    # --- the worker ---------------------------------------------------------------------------

    def _work(
        self, manager: ManagerCore, model: str, progress: ProgressCallback
    ) -> tuple[str, dict[str, Any] | None]:
        """Do the job's work for ``model`` through its host's ``manager``, calling ``progress`` as it goes;
        (message, result)."""
        raise NotImplementedError

    def _run(self, live: _Live) -> None:
        if not self._take_slot(live):
            return
        model, kind = live.job.model, self.kind
        try:
            self._update(live, status="running", persist=True)
            manager = self.manager
            try:
                manager = self.fleet.manager(live.job.host)
                message, result = self._work(manager, model, functools.partial(self._progress, live))
            except _Cancelled:
                self._finish(live, "cancelled", error=kind.cancelled(model).to_dict())
            except _Stopping:
                self._finish(live, "interrupted", error=kind.interrupted(model).to_dict())
            except ModelManagerError as exc:
                if manager is not self.manager and _host_gone(exc, manager):
                    # Another host stopped answering: the job resumes there when started again.
                    gone = kind.interrupted(f"{live.job.model} on {live.job.host}: {exc.message}")
                    self._finish(live, "interrupted", error=gone.to_dict())
                else:
                    self._finish(live, "failed", error=exc.to_dict())
            except Exception as exc:
                log.exception("%s job %s failed", kind.name, live.job.id)
                self._finish(live, "failed", error=InternalError(f"{type(exc).__name__}: {exc}").to_dict())
            else:
                self._finish(live, "succeeded", message=message, result=result)
        finally:
            self._slots.release()

    def _take_slot(self, live: _Live) -> bool:
        """Wait for a free slot; False (and the job ended) when cancelled or closing meanwhile."""
        while not self._slots.acquire(timeout=0.1):
            if live.cancel.is_set():
                self._finish(live, "cancelled", error=self.kind.cancelled(live.job.model).to_dict())
                return False
            if self._closing.is_set():
                self._finish(live, "interrupted", error=self.kind.interrupted(live.job.model).to_dict())
                return False
        return True

    def _progress(self, live: _Live, status: str, completed: int, total: int) -> None:
        if live.cancel.is_set():
            raise _Cancelled()
        if self._closing.is_set():
            raise _Stopping()
        fetched = 0
        with self._lock:
            if total > 0:
                # Bytes count from a layer's first line on: what it reports first was already on disk.
                before = live.layers.get(status)
                fetched = max(0, completed - before) if before is not None else 0
                live.layers[status] = completed
                live.totals[status] = total
                live.job.completed = sum(live.layers.values())
                live.job.total = sum(live.totals.values())
            live.job.detail = status
            due = time.monotonic() - live.persisted_at >= self.persist_interval_s
        if fetched and self._on_bytes is not None:
            self._on_bytes(live.job.model, fetched)
        self._update(live, persist=due)

    def _update(self, live: _Live, *, persist: bool, **changes: Any) -> None:
        with self._lock:
            live.job = replace(live.job, updated_at=utc_now(), **changes)
            live.version += 1
            watchers = list(live.watchers)
            if persist:
                self._persist(live)
        for loop, event in watchers:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the watcher's loop has closed
                with self._lock:
                    live.watchers.discard((loop, event))

    def _finish(
        self,
        live: _Live,
        status: str,
        *,
        error: dict[str, str] | None = None,
        message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        ended: dict[str, Any] = {
            "status": status,
            "error": error,
            "message": message,
            "result": result,
            "finished_at": utc_now(),
        }
        if self._on_finish is not None:
            # Counted before anyone can see the job end: a client that waited on it then reads metrics
            # that include it.
            with self._lock:
                final = replace(live.job, **ended)
            self._on_finish(final.to_dict())
        self._update(live, persist=True, **ended)
        with self._lock:
            if self._active.get((live.job.host, live.job.key)) is live:
                del self._active[(live.job.host, live.job.key)]
            self._threads.pop(live.job.id, None)
            finished = [i for i, x in self._live.items() if x.job.status not in ACTIVE]
            for stale in finished[: max(0, len(finished) - KEEP_IN_MEMORY)]:
                del self._live[stale]
        live.done.set()
        try:
            self.store.prune_jobs(KEEP_FINISHED)
        except ModelManagerError as exc:
            log.warning("could not prune old jobs: %s", exc.message)

    def _persist(self, live: _Live) -> None:
        """Write the job row (caller holds the lock); a store failure is logged, never fatal to the work."""
        live.persisted_at = time.monotonic()
        try:
            self.store.save_job(live.job.to_row(self.owner))
        except ModelManagerError as exc:
            log.warning("could not record %s job %s: %s", self.kind.name, live.job.id, exc.message)


def _host_gone(exc: ModelManagerError, manager: ManagerCore) -> bool:
    """Whether a failed job failed because its host's Ollama went away (it does not answer now)."""
    if not isinstance(exc, DownloadFailedError | OllamaUnavailableError):
        return False
    try:
        manager.ollama.version()
    except ModelManagerError:
        return True
    return False


def _orphaned(owner: str) -> bool:
    """Whether the process (or the jobs object in it) that ran a job with this owner is gone."""
    process, slash, _instance = owner.rpartition("/")
    if not slash:
        # Written as "<pid>:<random>" by an earlier version: only the pid is known.
        pid_text, _, _random = owner.partition(":")
        return not is_alive(f"{pid_text}:")
    if not is_alive(process):
        return True
    return process == process_token() and owner not in _LIVE_OWNERS


class DownloadJobs(Jobs):
    """The download jobs: each pulls its model through ``manager.download``."""

    kind = DOWNLOAD

    def _work(
        self, manager: ManagerCore, model: str, progress: ProgressCallback
    ) -> tuple[str, dict[str, Any] | None]:
        return manager.download(model, progress), None
