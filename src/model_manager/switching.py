"""The current model, switching and deleting: what the app chose, what Ollama has loaded, and the one
switch or delete at a time that keeps the two consistent across processes.

Ollama has no "current model": the quick reference's current model is the one the app chose (kept in the
store while it stays installed), and ``current_state`` says beside it what Ollama has loaded now.
Switches and deletes run one at a time across threads and processes sharing the store (a lease that dies
with its holder); a switch loads the new model first, then unloads the previous one, then persists the
choice, and after a failed load asks ``/api/ps`` what Ollama has, so what it reports is what Ollama has.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .config import Settings
from .errors import (
    CannotDeleteCurrentError,
    InsufficientVramError,
    ModelManagerError,
    ModelNotInstalledError,
    SwitchInProgressError,
)
from .inventory import Inventory, Snapshot, host_key
from .memory.planner import MemoryPlanner
from .names import name_key, stored_name_key
from .store import Store
from .transfer import CURRENT_MODEL_KEY
from .types import CurrentModel, ModelInfo, RunningModel

if TYPE_CHECKING:
    from .memory.verdict import Verdict
    from .ollama_client import OllamaClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwitchResult:
    """The model now current, and how it fits in the memory it was loaded into."""

    info: ModelInfo
    fit: Verdict


class Switching:
    """The current model, switches and deletes of one manager."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        inventory: Inventory,
        planner: MemoryPlanner,
        ollama: Callable[[], OllamaClient],
    ) -> None:
        self.settings, self.store, self.inventory, self.planner = settings, store, inventory, planner
        self._ollama = ollama
        self._lock = threading.RLock()
        # Each host has its current model and its turn; the default host keeps the names it had.
        self._current_key = host_key(CURRENT_MODEL_KEY, inventory.host)
        self._lease = host_key("switch", inventory.host)

    @property
    def ollama(self) -> OllamaClient:
        return self._ollama()

    def current_model(self) -> str | None:
        """The persisted current model, checked against Ollama when it answers.

        Raises ModelNotInstalledError when Ollama answers and no longer has it.
        """
        current = self.store.get_state(self._current_key)
        if current is None:
            return None
        known, installed, _ = self.inventory.status(stored_name_key(current))
        if known and not installed and self.inventory.ollama_answered:
            raise ModelNotInstalledError(f"{current} (the current model) is no longer installed in Ollama")
        return current

    def current_state(self) -> CurrentModel:
        """The current model beside what Ollama has loaded now (``/api/ps``): Ollama unloads an idle
        model after its keep-alive, so the current model is often not loaded.

        Raises ModelNotInstalledError as ``current_model`` does.
        """
        name = self.current_model()
        if name is None:
            return CurrentModel(None)
        try:
            running = self.ollama.running()
        except ModelManagerError as exc:
            log.info("what Ollama has loaded is unknown: %s", exc.message)
            return CurrentModel(name, loaded_known=False)
        return CurrentModel(name, self._running_entry(name, running))

    def _running_entry(self, name: str, running: list[RunningModel]) -> RunningModel | None:
        info = self.inventory.snapshot().find_key(stored_name_key(name)) if running else None
        keys = {stored_name_key(name)} | ({name_key(info.ollama_tag)} if info else set())
        return next((r for r in running if stored_name_key(r.name) in keys), None)

    def switch(self, name: str, *, wait_s: float | None = None) -> SwitchResult:
        """Load ``name``, unload the previous current model, persist the choice.

        Waits at most ``wait_s`` (default: the ``switch_wait_s`` setting) while another switch or delete
        runs. Raises InvalidModelNameError, ModelNotFoundError, ModelNotInstalledError,
        InsufficientVramError (it cannot fit, or Ollama could not load it), OllamaUnavailableError,
        SwitchInProgressError.
        """
        key = name_key(name)
        with self._exclusive(wait_s):
            snapshot = self._live_snapshot()
            info = snapshot.resolve_key(key, name.strip())
            if not info.installed:
                raise ModelNotInstalledError(info.name)
            previous_name = self.store.get_state(self._current_key)
            previous = snapshot.find_key(stored_name_key(previous_name)) if previous_name else None
            fit = self._room_for(info, previous)
            if fit.level == "none":
                raise InsufficientVramError(f"{info.name} {fit.describe()}")
            try:
                self.ollama.load(info.ollama_tag, self.settings.keep_alive, capabilities=_capabilities(info))
            except ModelManagerError as exc:
                self._reconcile_failed_load(exc, info, previous_name)
            if previous_name is not None and stored_name_key(previous_name) != info.key:
                self._unload_quietly(previous.ollama_tag if previous else previous_name)
            self.store.set_state(self._current_key, info.name)
            return SwitchResult(info, fit)

    def _reconcile_failed_load(self, exc: ModelManagerError, info: ModelInfo, previous: str | None) -> None:
        """After a failed load, ask Ollama what it has (it may have evicted the previous model to make
        room, or finished the load after all). Returns when ``info`` is loaded, so the switch
        completes; otherwise raises ``exc`` saying what is loaded now."""
        try:
            running = self.ollama.running()
        except ModelManagerError:
            raise exc from None
        if self._running_entry(info.name, running) is not None:
            log.info("loading %s failed (%s), but Ollama has it loaded", info.name, exc.message)
            return
        if previous is None or stored_name_key(previous) == info.key:
            raise exc
        if self._running_entry(previous, running) is None:
            note = f"{previous} is still the current model but Ollama no longer has it loaded"
        else:
            note = f"{previous} is still the current model and still loaded"
        raise type(exc)(f"{exc.detail}; {note}", **exc.fields) from exc

    def _live_snapshot(self) -> Snapshot:
        """Records after reading what Ollama has now. Raises OllamaUnavailableError."""
        self.inventory.sync()
        return self.inventory.snapshot()

    def _room_for(self, info: ModelInfo, previous: ModelInfo | None) -> Verdict:
        """The verdict of ``info`` in the memory available once the previous model is unloaded: what Ollama
        reports that model holding in VRAM (``/api/ps`` ``size_vram``) counts as free for this switch."""
        freed = 0
        if previous is not None and previous.key != info.key:
            tag = name_key(previous.ollama_tag)
            freed = sum(r.size_vram_bytes for r in self.ollama.running() if stored_name_key(r.name) == tag)
        memory = self.planner.memory()
        return self.planner.verdict(
            info, replace(memory, available_bytes=memory.available_bytes + freed), detail=True
        )

    @contextmanager
    def _exclusive(self, wait_s: float | None) -> Iterator[None]:
        """Switches and deletes run one at a time across threads and processes sharing this store,
        so that two switches end in one consistent current model and a delete never races a switch.

        A caller waits at most ``wait_s`` for its turn, then gets SwitchInProgressError: the REST API
        passes 0, so that no worker thread of the server ever waits on another's switch.
        """
        wait = self.settings.switch_wait_s if wait_s is None else max(0.0, wait_s)
        started = time.monotonic()
        if not self._lock.acquire(timeout=-1 if math.isinf(wait) else wait):
            holder = self.store.lease_holder(self._lease) or "another thread of this process"
            raise SwitchInProgressError(holder + (f"; waited {wait:.3g} s" if wait > 0 else ""))
        try:
            left = max(0.0, wait - (time.monotonic() - started))
            with self.store.lease(self._lease, ttl_s=self.settings.load_timeout_s + 30, wait_s=left):
                yield
        finally:
            self._lock.release()

    def _unload_quietly(self, tag: str) -> None:
        try:
            self.ollama.unload(tag)
        except ModelManagerError as exc:
            log.info("could not unload previous model %s: %s", tag, exc.message)

    def delete(self, name: str, *, wait_s: float | None = None) -> str:
        """Delete ``name`` from Ollama; return a success message.

        Waits for another switch or delete as ``switch`` does. Raises ModelNotFoundError,
        ModelNotInstalledError, CannotDeleteCurrentError, SwitchInProgressError.
        """
        key = name_key(name)
        with self._exclusive(wait_s):
            info = self._live_snapshot().resolve_key(key, name.strip())
            current = self.store.get_state(self._current_key)
            if current is not None and stored_name_key(current) == info.key:
                raise CannotDeleteCurrentError(f"{info.name} is the current model")
            if not info.installed:
                raise ModelNotInstalledError(info.name)
            self.ollama.delete(info.ollama_tag)
            self.store.set_installed(info.ollama_tag, False, self.inventory.host)
            self.inventory.mark_stale()
            return f"Deleted {info.name}"


def _capabilities(info: ModelInfo) -> tuple[str, ...]:
    """What Ollama's ``/api/show`` said the model can do (stored at sync), else the catalog's word."""
    facts = info.record.facts if info.record is not None else None
    return tuple(str(c) for c in (facts or {}).get("capabilities") or info.capabilities)
