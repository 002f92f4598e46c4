"""The core behind the Python API, the REST API and the CLI: every operation, raising typed errors.

``ManagerCore`` composes the parts and holds no data of its own:

* the inventory (installed state, names, ``ModelInfo`` records; ``inventory.py``),
* the memory planner (estimates and fits; ``memory/planner.py``), the speed planner (tokens per second
  here; ``speed_planner.py``) and the benchmarks that measure it (``benchmark.py``),
* recommendations (candidates and answers; ``recommender.py``, its rules in ``recommend.py``),
* the store (SQLite, or PostgreSQL for a ``database_url``; ``store/``), the Ollama adapter
  (``ollama_client.py``) and GPU detection (``gpu/``),
* the current model, switches and deletes (``switching.py``),
* export and import (``transfer.py``).

Its methods raise the errors of :mod:`model_manager.errors` and return typed records; the faces turn
those into dicts (``views`` and each record's ``to_dict``). ``quick_reference.ModelManager`` adds the
quick reference's bool/tuple/None methods on top.

Constructing a manager opens the store but never contacts Ollama.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Self, TypeVar

from .benchmark import Benchmarks
from .catalog import Catalog, load_catalog
from .config import Settings, load_settings, parse_gb, parse_seconds
from .errors import (
    InvalidRequestError,
    ModelManagerError,
    ModelNotFoundError,
    StoreError,
)
from .hosts import HostRegistry
from .inventory import INSTALLED_TTL_S, Inventory, Snapshot, SyncResult
from .memory.planner import MemoryPlanner, check_settings
from .names import name_key, stored_name_key
from .recommend import Compatibility, Recommendation
from .recommender import Recommender
from .speed_planner import SpeedPlanner
from .store import Store
from .switching import Switching, SwitchResult
from .transfer import Transfer
from .types import (
    Capability,
    CurrentModel,
    Health,
    LoadedModel,
    ModelInfo,
    ModelPurpose,
    ModelStats,
    Priority,
    ProgressCallback,
    Statistics,
)
from .views import model_dict

if TYPE_CHECKING:
    from .gpu import GPUManager
    from .measured import BenchmarkRun
    from .memory.estimator import MemoryEstimate
    from .memory.fit import Memory
    from .memory.plan import Plan
    from .memory.verdict import Verdict
    from .ollama_client import OllamaClient

log = logging.getLogger(__name__)
_W = TypeVar("_W", ModelPurpose, Priority, Capability)


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
        gpu: GPUManager | None = None,
        installed_max_age_s: float = INSTALLED_TTL_S,
        database_url: str | None = None,
    ) -> None:
        self.settings = settings or load_settings(host=host, data_dir=data_dir, database_url=database_url)
        self.store = store or Store(self.settings.store_location)
        self._ollama = ollama
        self.catalog = catalog or load_catalog(self.settings.user_catalog_path)
        self._gpu: GPUManager | None = gpu
        self.planner = MemoryPlanner(self.settings.ollama_env, lambda: self.gpu)
        self.benchmarks = Benchmarks(self.store, lambda: self.ollama, self.settings.host_name)
        self.speeds = SpeedPlanner(lambda: self.gpu, measured=self.benchmarks.speed_of)
        self.inventory = Inventory(
            self.catalog,
            self.store,
            lambda: self.ollama,
            max_age_s=installed_max_age_s,
            on_change=self.planner.invalidate,
            host=self.settings.host_name,
        )
        #: The fleet's hosts in this store (``fleet.Fleet`` asks them; this manager is one of them).
        self.hosts = HostRegistry(self.store, self.settings)
        self.switching = Switching(
            self.settings, self.store, self.inventory, self.planner, lambda: self.ollama
        )
        self.transfer = Transfer(
            self.store, self.inventory, self.settings.home, backups_keep=self.settings.backups_keep
        )
        self.recommender = Recommender(self.inventory, self.planner, self.speeds)

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
                verify_mb_s=self.settings.verify_mb_s,
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

    def __enter__(self) -> Self:
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
            and (limit is None or self.planner.requirement(info).gb <= limit)
        ]

    def metadata(
        self, info: ModelInfo, vram_gb: float | None = None, *, memory: Memory | None = None, **extra: Any
    ) -> dict[str, Any]:
        """``info`` as the metadata dict every face shows, with its verdict in ``memory`` (else ``vram_gb``,
        else detected): ``min_vram_gb``, the estimate at the settings Ollama would use and its fit level.
        A listing reads the memory once and passes it to each model. The speed here is the one at that verdict."""
        memory = memory or self.memory(vram_gb)
        verdict = self.planner.verdict(info, memory)
        return model_dict(info, verdict, self.speeds.speed(info, verdict), **extra)

    def verdict(
        self,
        info: ModelInfo,
        vram_gb: object = None,
        *,
        context_length: int | None = None,
        kv_cache_type: str | None = None,
        num_parallel: int | None = None,
        detail: bool = False,
    ) -> Verdict:
        """The one fit verdict every face shows: ``info`` in ``vram_gb`` (detected when None) at the given
        settings, Ollama's for the rest. Raises InvalidRequestError for a bad figure or setting."""
        check_settings(context_length, kv_cache_type, num_parallel)
        return self.planner.verdict(
            info,
            self.memory(vram_gb),
            context_length=context_length,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
            detail=detail,
        )

    def memory(self, vram_gb: object = None) -> Memory:
        """The memory a verdict is reached in: ``vram_gb`` (an argument), else GPU detection (or its override).
        Raises InvalidRequestError for a bad figure."""
        return self.planner.memory(None if vram_gb is None else parse_gb(vram_gb))

    def model_info(self, name: str) -> ModelInfo:
        """The record of ``name``. Raises ModelNotFoundError, InvalidModelNameError."""
        return self.resolve(name)

    def required_vram_gb(self, info: ModelInfo) -> float:
        """``min_vram_gb``: the catalog's Min VRAM, else computed at 4,096 context (see ``MemoryPlanner``)."""
        return self.planner.requirement(info).gb

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
        check_settings(context_length, kv_cache_type, num_parallel)
        return self.planner.estimate(self.resolve(name), context_length, kv_cache_type, num_parallel)

    def plan(
        self,
        name: str,
        vram_gb: float | None = None,
        context_length: int | None = None,
        kv_cache_type: str | None = None,
        num_parallel: int | None = None,
    ) -> Plan:
        """The memory ``name`` needs at each context from 2,048 to its maximum (for each KV cache type), the
        largest context that fits ``vram_gb`` (detected when None) and the layers on the GPU where it does
        not fit. Raises ModelNotFoundError, InvalidRequestError."""
        check_settings(context_length, kv_cache_type, num_parallel)
        memory = self.memory(vram_gb)
        info = self.resolve(name)
        return self.planner.plan(
            info,
            memory,
            context_length=context_length,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
        )

    # --- current model, switching and deleting (see switching.py) --------------------------------

    def current_model(self) -> str | None:
        """The persisted current model, checked against Ollama when it answers.

        Raises ModelNotInstalledError when Ollama answers and no longer has it.
        """
        return self.switching.current_model()

    def current_state(self) -> CurrentModel:
        """The current model beside what Ollama has loaded now (``/api/ps``). Raises
        ModelNotInstalledError as ``current_model`` does."""
        return self.switching.current_state()

    def switch(self, name: str, *, wait_s: float | None = None) -> SwitchResult:
        """Load ``name``, unload the previous current model, persist the choice; waits at most ``wait_s``
        (default: the ``switch_wait_s`` setting) while another switch or delete runs.

        Raises InvalidModelNameError, ModelNotFoundError, ModelNotInstalledError, InsufficientVramError
        (it cannot fit, or Ollama could not load it), OllamaUnavailableError, LoadTimedOutError,
        SwitchInProgressError.
        """
        return self.switching.switch(name, wait_s=wait_s)

    def delete(self, name: str, *, wait_s: float | None = None) -> str:
        """Delete ``name`` from Ollama; return a success message. Waits for another switch or delete as
        ``switch`` does. Raises ModelNotFoundError, ModelNotInstalledError, CannotDeleteCurrentError,
        SwitchInProgressError."""
        return self.switching.delete(name, wait_s=wait_s)

    # --- downloads --------------------------------------------------------------------------------

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
        version = None
        try:
            version = self.ollama.version()
            self.ollama.list_models()  # an answer listings can use, not just one that says hello
        except ModelManagerError as exc:
            return Health(self.store.path, self.ollama.host, version, store_failure, exc)
        return Health(self.store.path, self.ollama.host, version, store_failure)

    # --- compatibility and recommendation ---------------------------------------------------------

    def compatibility(self, name: str, vram_gb: float | None = None) -> Compatibility:
        """Whether ``name`` fits in ``vram_gb`` (detected when None), with its verdict.

        ``compatible`` keeps the quick reference's meaning: ``min_vram_gb`` (the catalog's Min VRAM, else
        computed at 4,096 context) is at most what is available; the verdict adds the fit level at the
        context Ollama would use. Raises ModelNotFoundError, InvalidRequestError.
        """
        memory = self.memory(vram_gb)
        verdict = self.planner.verdict(self.resolve(name), memory, detail=True)
        return Compatibility(
            verdict.model,
            verdict.compatible,
            verdict.requirement.gb,
            memory.available_gb,
            verdict.message(),
            verdict,
        )

    def recommend(
        self,
        vram_gb: float | None = None,
        priority: Priority | str = "balanced",
        *,
        capability: Capability | str | None = None,
    ) -> Recommendation:
        """Pick a catalog model for ``priority`` ("speed", "balanced" or "quality") within ``vram_gb``
        (detected when None), with ``capability`` (Ollama's word: vision, tools, thinking, embedding,
        completion) when one is asked for.

        Candidates are catalog models of that purpose (and capability) that ``compatibility`` calls
        compatible in the same memory, each with the same verdict; those that fit fully at Ollama's default
        context come first, then ``recommend.rank``'s rule for the priority (see ``recommender.py``). No
        candidate: ``model`` is None (fall back by calling again with another priority). Raises
        InvalidRequestError for an unknown priority or capability or a bad VRAM figure.
        """
        memory = self.memory(vram_gb)
        wanted = _parse(Priority, priority)
        seeing = _parse(Capability, capability) if capability is not None else None
        return self.recommender.recommend(memory, wanted, seeing)

    def recommend_all(
        self, vram_gb: float | None = None, *, capability: Capability | str | None = None
    ) -> tuple[Recommendation, ...]:
        """``recommend`` for each priority (speed, balanced, quality) in the same memory. Raises as it does."""
        memory = self.memory(vram_gb)
        seeing = _parse(Capability, capability) if capability is not None else None
        return self.recommender.recommend_all(memory, seeing)

    def benchmark(self, name: str, progress: ProgressCallback | None = None) -> BenchmarkRun:
        """Time a fixed prompt on the installed model ``name`` through Ollama (a vision model sees the bundled
        photo) and keep the figures for this Ollama host (see ``benchmark.py``). Raises ModelNotFoundError,
        ModelNotInstalledError, InvalidRequestError (an embedding model), OllamaError, and what a load raises."""
        return self.benchmarks.run(self.resolve(name), progress)

    # --- usage statistics -------------------------------------------------------------------------

    def record_usage(
        self,
        name: str,
        inference_time: float,
        success: bool = True,
        *,
        host: str | None = None,
        eval_count: int | None = None,
        eval_duration_s: float | None = None,
    ) -> None:
        """Record one use of ``name`` on ``host`` (default: this manager's own); durable when it returns,
        safe from several processes. Ollama's ``eval_count`` and ``eval_duration`` (in seconds) of the
        use, given together, add to the speed measured on that host.

        Raises InvalidModelNameError or InvalidRequestError for bad input, UnknownHostError for a host
        not in the store (nothing is recorded).
        """
        seconds = parse_seconds(inference_time, "inference_time")
        if not isinstance(success, bool):
            raise InvalidRequestError(f"success must be true or false, got {success!r}")
        canonical = self.canonical_name(name)
        where = self.settings.host_name if host is None else self.hosts.known(host)
        if eval_count is None and eval_duration_s is None:
            self.store.record_usage(canonical, seconds, success, host=where)
        else:
            self.benchmarks.record(canonical, seconds, success, eval_count, eval_duration_s, host=where)

    def statistics(self, name: str) -> Statistics:
        """The quick reference's statistics fields. Raises ModelNotFoundError when nothing is known of
        ``name``, InvalidModelNameError."""
        canonical = self.canonical_name(name)
        found = self.store.get_stats(canonical)
        known, installed, _ = self.inventory.status(name_key(canonical))
        if found is None and not known:
            raise ModelNotFoundError(name.strip())
        stats = found or ModelStats(canonical)
        shown = canonical if known or found is None else stats.name
        return Statistics(shown, stats, installed, self.benchmarks.measured_of(shown))

    def all_statistics(self) -> dict[str, Statistics]:
        """{name: statistics} for every known model and every model with recorded usage."""
        snapshot = self.inventory.snapshot()
        measured = self.benchmarks.measured_of
        out = {i.name: Statistics(i.name, i.stats, i.installed, measured(i.name)) for i in snapshot}
        keys = {info.key for info in snapshot}
        for name, s in self.store.all_stats().items():
            if stored_name_key(name) not in keys:
                out[name] = Statistics(name, s, False, measured(name))
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
