"""The core behind the Python API, the REST API and the CLI: every operation, raising typed errors.

``ManagerCore`` composes the parts and holds no data of its own:

* the inventory (installed state, names, ``ModelInfo`` records; ``inventory.py``),
* the memory planner (estimates and fits; ``memory/planner.py``),
* the store (SQLite, or PostgreSQL for a ``database_url``; ``store/``), the Ollama adapter
  (``ollama_client.py``) and GPU detection (``gpu/``),
* export and import (``transfer.py``).

Its methods raise the errors of :mod:`model_manager.errors` and return typed records; the faces turn
those into dicts (``views`` and each record's ``to_dict``). ``quick_reference.ModelManager`` adds the
quick reference's bool/tuple/None methods on top.

Constructing a manager opens the store but never contacts Ollama.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .catalog import Catalog, load_catalog
from .config import Settings, load_settings, parse_gb, parse_seconds
from .errors import (
    CannotDeleteCurrentError,
    InsufficientVramError,
    InvalidRequestError,
    ModelManagerError,
    ModelNotFoundError,
    ModelNotInstalledError,
    StoreError,
    SwitchInProgressError,
)
from .inventory import INSTALLED_TTL_S, Inventory, Snapshot, SyncResult
from .memory.planner import MemoryPlanner
from .names import name_key, stored_name_key
from .ollama_defaults import KV_CACHE_TYPES
from .recommend import Candidate, Compatibility, Recommendation, rank, reason
from .store import Store
from .transfer import CURRENT_MODEL_KEY, Transfer
from .types import (
    Health,
    LoadedModel,
    ModelInfo,
    ModelPurpose,
    ModelStats,
    Priority,
    ProgressCallback,
    Statistics,
)
from .units import GIB
from .views import model_dict

if TYPE_CHECKING:
    from .gpu import GPUManager
    from .memory.estimator import MemoryEstimate
    from .memory.fit import Fit
    from .ollama_client import OllamaClient

log = logging.getLogger(__name__)
_W = TypeVar("_W", ModelPurpose, Priority)


@dataclass(frozen=True)
class SwitchResult:
    """The model now current, and how it fits in the memory it was loaded into."""

    info: ModelInfo
    fit: Fit | None


class ManagerCore:
    """Catalog, installed state, switching, downloads and usage statistics for one Ollama server."""

    def __init__(
        self,
        host: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        settings: Settings | None = None,
        store: Store | None = None,
        ollama: OllamaClient | None = None,
        catalog: Catalog | None = None,
        installed_max_age_s: float = INSTALLED_TTL_S,
        database_url: str | None = None,
    ) -> None:
        self.settings = settings or load_settings(host=host, data_dir=data_dir, database_url=database_url)
        self.store = store or Store(self.settings.store_location)
        self._ollama = ollama
        self.catalog = catalog or load_catalog(self.settings.user_catalog_path)
        self._gpu: GPUManager | None = None
        self._switch_lock = threading.RLock()
        self.planner = MemoryPlanner(self.settings.ollama_env, lambda: self.gpu)
        self.inventory = Inventory(
            self.catalog,
            self.store,
            lambda: self.ollama,
            max_age_s=installed_max_age_s,
            on_change=self.planner.invalidate,
        )
        self.transfer = Transfer(self.store, self.inventory, self.settings.home)

    @property
    def ollama(self) -> OllamaClient:
        """The Ollama adapter, built on first use."""
        if self._ollama is None:
            from .ollama_client import OllamaClient

            self._ollama = OllamaClient(
                self.settings.ollama_host,
                timeout_s=self.settings.request_timeout_s,
                load_timeout_s=self.settings.load_timeout_s,
                pull_silence_timeout_s=self.settings.pull_silence_timeout_s,
            )
        return self._ollama

    @property
    def gpu(self) -> GPUManager:
        """GPU detection, built on first use."""
        if self._gpu is None:
            from .gpu import VRAM_ENV, GPUManager

            # GPU detection reads MODEL_MANAGER_VRAM_GB itself, so that it reports that variable as the
            # override's source; a figure set on hand-built settings is passed as an argument.
            override = None if self.settings.env.get(VRAM_ENV) else self.settings.vram_gb
            self._gpu = GPUManager(override, env=self.settings.env)
        return self._gpu

    def close(self) -> None:
        if self._ollama is not None:
            self._ollama.close()
        self.store.close()

    def __enter__(self) -> ManagerCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- installed state and names ----------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Read what Ollama has installed into the store. Raises OllamaUnavailableError, OllamaError."""
        return self.inventory.sync()

    def installed_state_known(self) -> bool:
        """Whether the last look at Ollama got an answer (so ``installed`` flags are current)."""
        return self.inventory.state_known()

    def installed_as_of(self) -> str | None:
        """When installed state was last read from Ollama (by any process), or None if never."""
        return self.inventory.installed_as_of()

    def listing_marker(self) -> tuple[int, int]:
        """A value that changes whenever a listing could (see ``Inventory.listing_marker``)."""
        return self.inventory.listing_marker()

    def canonical_name(self, name: str) -> str:
        """The name statistics are kept under. Raises InvalidModelNameError."""
        return self.inventory.canonical_name(name)

    def resolve(self, name: str, snapshot: Snapshot | None = None) -> ModelInfo:
        """The record of ``name`` (any of its names, any case). Raises InvalidModelNameError,
        ModelNotFoundError."""
        key = name_key(name)
        return (snapshot or self.inventory.snapshot()).resolve_key(key, name.strip())

    # --- models -----------------------------------------------------------------------------------

    def models(
        self,
        installed_only: bool = False,
        purpose: ModelPurpose | str | None = None,
        max_vram_gb: float | None = None,
    ) -> list[ModelInfo]:
        """Every known model (catalog and installed), filtered.

        Raises InvalidRequestError for an unknown purpose or a bad VRAM figure.
        """
        wanted = _parse(ModelPurpose, purpose) if purpose is not None else None
        limit = parse_gb(max_vram_gb, "max_vram_gb") if max_vram_gb is not None else None
        return [
            info
            for info in self.inventory.snapshot()
            if (info.installed or not installed_only)
            and (wanted is None or info.purpose is wanted)
            and (limit is None or self.planner.required_vram_gb(info, limit) <= limit)
        ]

    def metadata(self, info: ModelInfo, **extra: Any) -> dict[str, Any]:
        """``info`` as the metadata dict every face shows, with its memory estimate."""
        return model_dict(info, self.planner.default_estimate(info), **extra)

    def model_info(self, name: str) -> ModelInfo:
        """The record of ``name``. Raises ModelNotFoundError, InvalidModelNameError."""
        return self.resolve(name)

    def required_vram_gb(self, info: ModelInfo, vram_gb: float | None = None) -> float:
        """VRAM a model needs: the catalog's Min VRAM, else the estimate (see ``MemoryPlanner``)."""
        return self.planner.required_vram_gb(info, vram_gb)

    def estimate_model_memory(
        self,
        name: str,
        context_length: int | None = None,
        kv_cache_type: str | None = None,
        num_parallel: int | None = None,
    ) -> MemoryEstimate:
        """The memory ``name`` needs at the given settings; unset ones are Ollama's (from the same
        environment variables Ollama reads, else its defaults). Facts come from ``/api/show`` for
        installed models and from the catalog otherwise.

        Raises ModelNotFoundError, InvalidRequestError (bad settings, or no architecture facts).
        """
        for label, value in (("context_length", context_length), ("num_parallel", num_parallel)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidRequestError(f"{label} must be a whole number ≥ 1, got {value!r}")
        if kv_cache_type is not None and (
            not isinstance(kv_cache_type, str) or kv_cache_type.lower() not in KV_CACHE_TYPES
        ):
            raise InvalidRequestError(
                f"kv_cache_type must be one of {', '.join(KV_CACHE_TYPES)}, got {kv_cache_type!r}"
            )
        return self.planner.estimate(self.resolve(name), context_length, kv_cache_type, num_parallel)

    # --- current model and switching --------------------------------------------------------------

    def current_model(self) -> str | None:
        """The persisted current model, checked against Ollama when it answers.

        Raises ModelNotInstalledError when Ollama answers and no longer has it.
        """
        current = self.store.get_state(CURRENT_MODEL_KEY)
        if current is None:
            return None
        known, installed, _ = self.inventory.status(stored_name_key(current))
        if known and not installed and self.inventory.ollama_answered:
            raise ModelNotInstalledError(f"{current} (the current model) is no longer installed in Ollama")
        return current

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
            previous_name = self.store.get_state(CURRENT_MODEL_KEY)
            previous = snapshot.find_key(stored_name_key(previous_name)) if previous_name else None
            fit = self._room_for(info, previous)
            if fit is not None and fit.level == "none":
                raise InsufficientVramError(f"{info.name} {fit.describe()}")
            self.ollama.load(info.ollama_tag, keep_alive=self.settings.keep_alive)
            if previous_name is not None and stored_name_key(previous_name) != info.key:
                self._unload_quietly(previous.ollama_tag if previous else previous_name)
            self.store.set_state(CURRENT_MODEL_KEY, info.name)
            return SwitchResult(info, fit)

    def _live_snapshot(self) -> Snapshot:
        """Records after reading what Ollama has now. Raises OllamaUnavailableError."""
        self.inventory.sync()
        return self.inventory.snapshot()

    def _room_for(self, info: ModelInfo, previous: ModelInfo | None) -> Fit | None:
        """The fit of ``info`` in the memory available once the previous model is unloaded: what Ollama
        reports that model holding in VRAM (``/api/ps`` ``size_vram``) counts as free for this switch."""
        freed = 0
        if previous is not None and previous.key != info.key:
            tag = name_key(previous.ollama_tag)
            freed = sum(r.size_vram_bytes for r in self.ollama.running() if stored_name_key(r.name) == tag)
        return self.planner.fit(info, self.available_vram_gb() + freed / GIB, detected=True)

    @contextmanager
    def _exclusive(self, wait_s: float | None) -> Iterator[None]:
        """Switches and deletes run one at a time across threads and processes sharing this store,
        so that two switches end in one consistent current model and a delete never races a switch.

        A caller waits at most ``wait_s`` for its turn, then gets SwitchInProgressError: the REST API
        passes 0, so that no worker thread of the server ever waits on another's switch.
        """
        wait = self.settings.switch_wait_s if wait_s is None else max(0.0, wait_s)
        started = time.monotonic()
        if not self._switch_lock.acquire(timeout=-1 if math.isinf(wait) else wait):
            holder = self.store.lease_holder("switch") or "another thread of this process"
            raise SwitchInProgressError(holder + (f"; waited {wait:.3g} s" if wait > 0 else ""))
        try:
            left = max(0.0, wait - (time.monotonic() - started))
            with self.store.lease("switch", ttl_s=self.settings.load_timeout_s + 30, wait_s=left):
                yield
        finally:
            self._switch_lock.release()

    def _unload_quietly(self, tag: str) -> None:
        try:
            self.ollama.unload(tag)
        except ModelManagerError as exc:
            log.info("could not unload previous model %s: %s", tag, exc.message)

    # --- downloads and deletes --------------------------------------------------------------------

    def download(self, name: str, progress: ProgressCallback | None = None) -> str:
        """Pull a catalog model or any valid Ollama name; return a success message.

        Raises InvalidModelNameError, ModelNotFoundError (no such model in the registry),
        DownloadFailedError (with Ollama's text).
        """
        entry = self.catalog.by_key(name_key(name))
        tag = entry.ollama_tag if entry is not None else name.strip()
        self.ollama.pull(tag, progress)
        self.inventory.mark_stale()
        try:
            self.inventory.sync()
        except ModelManagerError as exc:
            log.info("pulled %s, but could not re-read installed models: %s", tag, exc.message)
        label = f"{entry.name} ({tag})" if entry is not None and entry.name != tag else tag
        return f"Downloaded {label}"

    def delete(self, name: str, *, wait_s: float | None = None) -> str:
        """Delete ``name`` from Ollama; return a success message.

        Waits for another switch or delete as ``switch`` does. Raises ModelNotFoundError,
        ModelNotInstalledError, CannotDeleteCurrentError, SwitchInProgressError.
        """
        key = name_key(name)
        with self._exclusive(wait_s):
            info = self._live_snapshot().resolve_key(key, name.strip())
            current = self.store.get_state(CURRENT_MODEL_KEY)
            if current is not None and stored_name_key(current) == info.key:
                raise CannotDeleteCurrentError(f"{info.name} is the current model")
            if not info.installed:
                raise ModelNotInstalledError(info.name)
            self.ollama.delete(info.ollama_tag)
            self.store.set_installed(info.ollama_tag, False)
            self.inventory.mark_stale()
            return f"Deleted {info.name}"

    # --- machine and runtime ----------------------------------------------------------------------

    def available_vram_gb(self) -> float:
        """GB of GPU memory a model can use now (``MODEL_MANAGER_VRAM_GB`` overrides detection)."""
        return float(self.gpu.get_available_memory_gb())

    def running_models(self) -> list[LoadedModel]:
        """What Ollama has loaded now (``/api/ps``). Raises OllamaUnavailableError."""
        running = self.ollama.running()
        snapshot = self.inventory.snapshot() if running else None
        out = []
        for r in running:
            info = snapshot.find_key(stored_name_key(r.name)) if snapshot is not None else None
            out.append(LoadedModel(info.name if info else r.name, r))
        return out

    def health(self) -> Health:
        """Whether the store and Ollama answer, with Ollama's version or the reason it does not."""
        store_failure: ModelManagerError | None = None
        try:
            if self.store.schema_version() < 1:
                store_failure = StoreError(f"{self.store.path} has no schema")
        except ModelManagerError as exc:
            store_failure = exc
        try:
            version = self.ollama.version()
        except ModelManagerError as exc:
            return Health(self.store.path, self.ollama.host, None, store_failure, exc)
        return Health(self.store.path, self.ollama.host, version, store_failure)

    # --- compatibility and recommendation ---------------------------------------------------------

    def _vram(self, vram_gb: object) -> tuple[float, bool]:
        """(GB, detected): the given figure validated, or what GPU detection finds when none is given."""
        if vram_gb is None:
            return self.available_vram_gb(), True
        return parse_gb(vram_gb), False

    def compatibility(self, name: str, vram_gb: float | None = None) -> Compatibility:
        """Whether ``name`` fits in ``vram_gb`` (detected when None), with the memory estimate's fit level.

        ``compatible`` keeps the quick reference's meaning: the required VRAM (the catalog's Min VRAM,
        else the estimate) is at most what is available. Raises ModelNotFoundError, InvalidRequestError.
        """
        available, detected = self._vram(vram_gb)
        info = self.resolve(name)
        required = self.planner.required_vram_gb(info, None if detected else available)
        fits = required <= available
        if fits:
            message = f"Compatible: {info.name} needs {required:.1f} GB VRAM, {available:.1f} GB available"
        else:
            message = f"Insufficient VRAM: {info.name} needs {required:.1f} GB VRAM, only {available:.1f} GB available"
        level = self.planner.fit(info, available, detected=detected)
        if level is not None:
            message += f"; {level.describe()}"
        return Compatibility(info.name, fits, required, available, message, level)

    def recommend(
        self, vram_gb: float | None = None, priority: Priority | str = "balanced"
    ) -> Recommendation:
        """Pick a catalog model for ``priority`` ("speed", "balanced" or "quality") within ``vram_gb``
        (detected when None).

        Candidates are catalog models of that purpose whose required VRAM (the catalog's Min VRAM, else
        the estimate) fits; ``recommend.rank`` orders them. No candidate: ``model`` is None (fall back by
        calling again with another priority). Each candidate says how much context fits in the memory
        given. Raises InvalidRequestError for an unknown priority or a bad VRAM figure.
        """
        available, detected = self._vram(vram_gb)
        wanted = _parse(Priority, priority)
        planned = None if detected else available
        candidates = []
        for info in self.inventory.snapshot():
            if info.purpose is not wanted.purpose or not info.in_catalog:
                continue
            required = self.planner.required_vram_gb(info, planned)
            if required <= available:
                context = self.planner.max_context(info, available, detected=detected)
                candidates.append(Candidate(info, required, context))
        ranked = rank(candidates, wanted)
        if not ranked:
            return Recommendation(None, f"no {wanted.value} model in the catalog fits in {available:.1f} GB")
        return Recommendation(ranked[0].info.name, reason(ranked[0], wanted, available), tuple(ranked))

    # --- usage statistics -------------------------------------------------------------------------

    def record_usage(self, name: str, inference_time: float, success: bool = True) -> None:
        """Record one use of ``name``; durable when it returns, safe from several processes.

        Raises InvalidModelNameError or InvalidRequestError for bad input (nothing is recorded).
        """
        seconds = parse_seconds(inference_time, "inference_time")
        if not isinstance(success, bool):
            raise InvalidRequestError(f"success must be true or false, got {success!r}")
        self.store.record_usage(self.canonical_name(name), seconds, success)

    def statistics(self, name: str) -> Statistics:
        """The quick reference's statistics fields. Raises ModelNotFoundError when nothing is known of
        ``name``, InvalidModelNameError."""
        canonical = self.canonical_name(name)
        found = self.store.get_stats(canonical)
        known, installed, _ = self.inventory.status(name_key(canonical))
        if found is None and not known:
            raise ModelNotFoundError(name.strip())
        stats = found or ModelStats(canonical)
        return Statistics(canonical if known or found is None else stats.name, stats, installed)

    def all_statistics(self) -> dict[str, Statistics]:
        """{name: statistics} for every known model and every model with recorded usage."""
        snapshot = self.inventory.snapshot()
        out = {info.name: Statistics(info.name, info.stats, info.installed) for info in snapshot}
        keys = {info.key for info in snapshot}
        for name, s in self.store.all_stats().items():
            if stored_name_key(name) not in keys:
                out[name] = Statistics(name, s, False)
        return out

    # --- export / import (see transfer.py) --------------------------------------------------------

    def export_data(self) -> dict[str, Any]:
        """The export document as a dict (the REST API returns it as the response body)."""
        return self.transfer.export_data()

    def export_document(self, path: str | os.PathLike[str]) -> str:
        """Write the export document to ``path`` atomically. Raises FileAccessError."""
        return self.transfer.export_document(path)

    def import_data(self, doc: Any) -> str:
        """Validate ``doc`` whole, then apply it in one transaction. Raises InvalidDocumentError."""
        return self.transfer.import_data(doc)

    def import_document(self, path: str | os.PathLike[str]) -> str:
        """Read and import the document at ``path``. Raises FileAccessError, InvalidDocumentError."""
        return self.transfer.import_document(path)


def _parse(kind: type[_W], value: object) -> _W:
    try:
        return kind.parse(value)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
