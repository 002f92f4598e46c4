"""ModelManager: the one core behind the Python API, the REST API and the CLI.

Two layers, as the seed asks:

* raising methods (``model_info``, ``switch``, ``download``, ``delete``, ``compatibility``,
  ``recommend``, ``statistics``, ``export_document``/``import_document``…) that raise the typed errors
  of :mod:`model_manager.errors`;
* the seed's methods (``get_model_info``, ``switch_model``, ``download_model``…), thin wrappers that
  return the seed's bools, tuples and Nones. They never lose the reason for a failure: it is logged and
  kept in :attr:`ModelManager.last_error`.

Constructing a manager opens the store but never contacts Ollama. What Ollama has installed is read
from it at most every ``INSTALLED_TTL_S`` seconds and written to the store, so listings stay fast and
still answer (from the last known state) while Ollama is down.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .catalog import Catalog, load_catalog
from .config import Settings, load_settings
from .errors import (
    CannotDeleteCurrentError,
    FileAccessError,
    InsufficientVramError,
    InvalidDocumentError,
    InvalidRequestError,
    ModelManagerError,
    ModelNotFoundError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from .exchange import EDITABLE_FIELDS, build_document, loads_document, parse_document, write_atomically
from .metadata import entry_metadata, lookup, record_metadata, stats_dict, with_usage
from .names import name_key, validate_model_name
from .ollama_defaults import GIB, KV_CACHE_TYPES
from .planner import MemoryPlanner
from .recommend import PRIORITIES, Compatibility, Recommendation, rank, reason
from .store import ModelRecord, Store, utc_now
from .types import CatalogEntry, InstalledModel, ModelPurpose, ModelStats

if TYPE_CHECKING:
    from .fit import Fit
    from .gpu import GPUManager
    from .memory import MemoryEstimate
    from .ollama_client import OllamaClient

ProgressCallback = Callable[[str, int, int], None]

log = logging.getLogger(__name__)
T = TypeVar("T")

INSTALLED_TTL_S = 2.0
CURRENT_MODEL_KEY = "current_model"
SYNCED_AT_KEY = "installed_synced_at"


def parse_vram_gb(value: object, what: str = "available VRAM") -> float:
    """A finite, non-negative number of GB. Raises InvalidRequestError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequestError(f"{what} must be a number of GB, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequestError(f"{what} must be a number of GB, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or number > 1e6:
        raise InvalidRequestError(f"{what} must be a finite number of GB from 0 to 1,000,000, got {value!r}")
    return number


class ModelManager:
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
    ) -> None:
        self.settings = settings or load_settings(host=host, data_dir=data_dir)
        self.store = store or Store(self.settings.db_path)
        self._ollama = ollama
        self.catalog = catalog or load_catalog(self.settings.user_catalog_path)
        self.last_error: ModelManagerError | None = None
        #: How old the installed state may be before Ollama is asked again. ``math.inf`` reads the state
        #: the last sync (of any process) stored, asking Ollama only when there has never been one.
        self.installed_max_age_s = installed_max_age_s
        self._installed_at = -math.inf
        self._ollama_answered = False
        self._installed_lock = threading.RLock()
        self._switch_lock = threading.RLock()
        self._gpu: GPUManager | None = None
        self.planner = MemoryPlanner(self.catalog, self.store, self.settings.ollama_env, lambda: self.gpu)

    @property
    def ollama(self) -> OllamaClient:
        """The Ollama adapter, built on first use (importing the client is the slow part of start-up)."""
        if self._ollama is None:
            from .ollama_client import OllamaClient

            self._ollama = OllamaClient(
                self.settings.ollama_host,
                timeout_s=self.settings.request_timeout_s,
                load_timeout_s=self.settings.load_timeout_s,
                pull_silence_timeout_s=self.settings.pull_silence_timeout_s,
            )
        return self._ollama

    def close(self) -> None:
        if self._ollama is not None:
            self._ollama.close()
        self.store.close()

    def __enter__(self) -> ModelManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the seed layer -----------------------------------------------------------------------

    def _seed(self, call: Callable[[], T], failed: T) -> T:
        try:
            result = call()
        except ModelManagerError as exc:
            self.last_error = exc
            log.warning("%s (solution: %s)", exc.message, exc.solution)
            return failed
        self.last_error = None
        return result

    def list_available_models(
        self,
        installed_only: bool = False,
        purpose: ModelPurpose | str | None = None,
        max_vram_gb: float | None = None,
    ) -> list[dict[str, Any]]:
        """Every known model (catalog and installed) as a metadata dict, filtered.

        Raises InvalidRequestError for an unknown purpose or a bad VRAM figure.
        """
        wanted = _parse_purpose(purpose) if purpose is not None else None
        limit = parse_vram_gb(max_vram_gb, "max_vram_gb") if max_vram_gb is not None else None
        out = []
        for meta in self._all_metadata():
            if installed_only and not meta["installed"]:
                continue
            if wanted is not None and meta["purpose"] != wanted.value:
                continue
            self.planner.with_estimate(meta)
            if limit is not None and self.required_vram_gb(meta, limit) > limit:
                continue
            out.append(meta)
        return out

    def get_model_info(self, name: str) -> dict[str, Any] | None:
        """The metadata dict for ``name``, or None when no such model is known."""
        return self._seed(lambda: self.model_info(name), None)

    def get_current_model(self) -> str | None:
        """The selected model; None when none is selected or Ollama no longer has it."""
        return self._seed(self.current_model, None)

    def check_model_compatibility(self, name: str, vram_gb: float | None = None) -> tuple[bool, str]:
        """(fits, message) for ``name`` in ``vram_gb`` GB (detected when None)."""
        result = self._seed(lambda: self.compatibility(name, vram_gb), None)
        if result is None:
            assert self.last_error is not None
            return False, self.last_error.message
        return result.compatible, result.message

    def switch_model(self, name: str) -> bool:
        """Load ``name`` in Ollama, unload the previous model and remember the choice."""
        return self._seed(lambda: (self.switch(name), True)[1], False)

    def download_model(self, name: str, progress: ProgressCallback | None = None) -> tuple[bool, str]:
        """Pull ``name`` through Ollama; ``progress(status, completed, total)`` sees each stream line."""
        return self._seed_tuple(lambda: self.download(name, progress))

    def delete_model(self, name: str) -> tuple[bool, str]:
        """Remove ``name`` from Ollama; refuses the current model."""
        return self._seed_tuple(lambda: self.delete(name))

    def recommend_model(self, vram_gb: float | None = None, priority: str = "balanced") -> str | None:
        """The best catalog model of ``priority`` that fits in ``vram_gb``, or None. See ``recommend``."""
        result = self._seed(lambda: self.recommend(vram_gb, priority), None)
        return result.model if result else None

    def get_model_statistics(self, name: str) -> dict[str, Any] | None:
        """The seed's statistics fields for ``name``; None when the model is unknown."""
        return self._seed(lambda: self.statistics(name), None)

    def get_all_statistics(self) -> dict[str, dict[str, Any]]:
        """Statistics of every known model and of every model with recorded usage."""
        return self._seed(self.all_statistics, {})

    def export_metadata(self, path: str | os.PathLike[str]) -> tuple[bool, str]:
        """Write the export document to ``path`` atomically."""
        return self._seed_tuple(lambda: self.export_document(path))

    def import_metadata(self, path: str | os.PathLike[str]) -> tuple[bool, str]:
        """Validate the document at ``path`` whole, then apply it in one transaction."""
        return self._seed_tuple(lambda: self.import_document(path))

    def _sync_with_ollama(self) -> dict[str, list[str]]:
        """The seed's name for :meth:`sync`."""
        return self.sync()

    def _seed_tuple(self, call: Callable[[], str]) -> tuple[bool, str]:
        message = self._seed(call, None)
        if message is None:
            assert self.last_error is not None
            return False, self.last_error.message
        return True, message

    # --- installed state ----------------------------------------------------------------------

    def sync(self) -> dict[str, list[str]]:
        """Read what Ollama has installed into the store, with facts for new models.

        Returns the names ``added`` and ``removed`` since the last sync and all ``installed`` ones.
        Raises OllamaUnavailableError when Ollama does not answer.
        """
        with self._installed_lock:
            installed = self.ollama.list_models()
            known = {r.name.lower(): r for r in self.store.list_models()}
            added, removed = self.store.replace_installed(installed)
            if added or removed:
                self.planner.invalidate()
            for model in installed:
                record = known.get(model.name.lower())
                if record is None or record.facts is None or record.digest != model.digest:
                    self._store_facts(model)
            self._installed_at = time.monotonic()
            self._ollama_answered = True
            self.store.set_state(SYNCED_AT_KEY, utc_now())
        return {"added": added, "removed": removed, "installed": sorted(m.name for m in installed)}

    def _store_facts(self, model: InstalledModel) -> None:
        try:
            facts = self.ollama.show(model.name)
        except ModelManagerError as exc:
            log.info("no facts for %s: %s", model.name, exc.message)
            return
        self.planner.invalidate()
        self.store.upsert_model(
            model,
            facts={
                "model_info": dict(facts.model_info),
                "capabilities": list(facts.capabilities),
                "family": facts.family or model.family,
                "parameter_size": facts.parameter_size or model.parameter_size,
                "quantization_level": facts.quantization_level or model.quantization_level,
                "projector_info": dict(facts.projector_info),
            },
        )

    def _installed(self) -> dict[str, ModelRecord]:
        """Installed models by case-folded name: fresh from Ollama when it answers, else last known."""
        if self._installed_stale():
            with self._installed_lock:
                # Threads that found the state stale together sync once: the first refreshes it.
                if self._installed_stale():
                    self._refresh_installed()
        return {name_key(r.name): r for r in self.store.list_models(installed_only=True)}

    def _refresh_installed(self) -> None:
        try:
            self.sync()
        except (OllamaUnavailableError, OllamaError) as exc:
            # Listings keep answering from the last known state while Ollama is down or failing.
            log.debug("installed state from the store: %s", exc.message)
            self._installed_at = time.monotonic()
            self._ollama_answered = False

    def _installed_stale(self) -> bool:
        if math.isinf(self.installed_max_age_s):
            return self._installed_at == -math.inf and self.installed_as_of() is None
        return time.monotonic() - self._installed_at > self.installed_max_age_s

    def listing_marker(self) -> tuple[int, int]:
        """Changes whenever a listing could: refreshes installed state when stale, then reads the store's
        change marker. Lets a caller (the REST API) reuse a rendered listing until something changes."""
        self._installed()
        return self.store.change_marker()

    def installed_as_of(self) -> str | None:
        """When installed state was last read from Ollama (by any process), or None if never."""
        return self.store.get_state(SYNCED_AT_KEY)

    def installed_state_known(self) -> bool:
        """Whether the last look at Ollama got an answer (so ``installed`` flags are current)."""
        self._installed()
        return self._ollama_answered

    def _installed_tag(self, entry: CatalogEntry, installed: dict[str, ModelRecord]) -> str | None:
        for n in entry.all_names():
            record = installed.get(name_key(n))
            if record is not None:
                return record.name
        return None

    # --- metadata -----------------------------------------------------------------------------

    def _all_metadata(self, *, with_overrides: bool = True) -> list[dict[str, Any]]:
        """Every catalog model, then every installed model the catalog lacks, with usage figures."""
        installed = self._installed()
        stats = self.store.all_stats()
        overrides = self.store.get_overrides() if with_overrides else {}
        out, claimed = [], set()
        for entry in self.catalog:
            tag = self._installed_tag(entry, installed)
            if tag:
                claimed.add(name_key(tag))
            out.append(entry_metadata(entry, tag))
        for key, record in installed.items():
            if key not in claimed and self.catalog.get(record.name) is None:
                out.append(record_metadata(record))
        return [with_usage(m, lookup(stats, m["name"]), lookup(overrides, m["name"])) for m in out]

    def required_vram_gb(self, meta: dict[str, Any], vram_gb: float | None = None) -> float:
        """VRAM a model needs: the catalog's Min VRAM (the seed's threshold), else the memory estimate at
        the settings Ollama would use on a GPU of ``vram_gb`` (default: this machine's)."""
        return self.planner.required_vram_gb(meta, vram_gb)

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
        return self.planner.estimate(self._resolve(name), context_length, kv_cache_type, num_parallel)

    def _resolve(self, name: str) -> dict[str, Any]:
        """Metadata for ``name`` (any of its names, any case). Raises ModelNotFoundError."""
        name = validate_model_name(name)
        key = name_key(name)
        for meta in self._all_metadata():
            if name_key(meta["name"]) == key or name_key(meta["ollama_tag"]) == key:
                return meta
            entry = self.catalog.get(meta["name"])
            if entry is not None and any(name_key(n) == key for n in entry.all_names()):
                return meta
        raise ModelNotFoundError(name)

    def model_info(self, name: str) -> dict[str, Any]:
        """Metadata for ``name``, with its memory estimate. Raises ModelNotFoundError, InvalidModelNameError."""
        return self.planner.with_estimate(self._resolve(name))

    def canonical_name(self, name: str) -> str:
        """The name statistics are kept under: the catalog's name for catalog models, else the name given.

        Statistics keys ignore case (the store compares them NOCASE), as Ollama's names do.
        """
        name = validate_model_name(name)
        entry = self.catalog.get(name)
        return entry.name if entry is not None else name

    def _is_installed(self, name: str) -> tuple[bool, bool]:
        """(known, installed) for ``name`` without building every model's metadata."""
        installed = self._installed()
        entry = self.catalog.get(name)
        if entry is not None:
            return True, self._installed_tag(entry, installed) is not None
        hit = name_key(name) in installed
        return hit, hit

    # --- current model and switching -----------------------------------------------------------

    def current_model(self) -> str | None:
        """The persisted current model, checked against Ollama when it answers.

        Raises ModelNotInstalledError when Ollama answers and no longer has it.
        """
        current = self.store.get_state(CURRENT_MODEL_KEY)
        if current is None:
            return None
        meta = self._resolve_or_none(current)
        if meta is not None and not meta["installed"] and self._ollama_answered:
            raise ModelNotInstalledError(f"{current} (the current model) is no longer installed in Ollama")
        return current

    def _resolve_live(self, name: str) -> dict[str, Any]:
        """Like ``_resolve``, after reading what Ollama has now. Raises OllamaUnavailableError."""
        validate_model_name(name)
        self.sync()
        return self._resolve(name)

    def _resolve_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self._resolve(name)
        except ModelManagerError:
            return None

    def switch(self, name: str) -> dict[str, Any]:
        """Load ``name``, unload the previous current model, persist the choice; return its metadata.

        Raises ModelNotFoundError, ModelNotInstalledError, InsufficientVramError (Ollama could not
        load it), OllamaUnavailableError.
        """
        with self._exclusive():
            meta = self._resolve_live(name)
            if not meta["installed"]:
                raise ModelNotInstalledError(meta["name"])
            previous = self.store.get_state(CURRENT_MODEL_KEY)
            level = self._room_for(meta, previous)
            if level is not None:
                meta["fit"] = level.to_dict()
                if level.level == "none":
                    raise InsufficientVramError(f"{meta['name']} {level.describe()}")
            self.ollama.load(meta["ollama_tag"], keep_alive=self.settings.keep_alive)
            if previous is not None and name_key(previous) != name_key(meta["name"]):
                self._unload_quietly(previous)
            self.store.set_state(CURRENT_MODEL_KEY, meta["name"])
            return meta

    def _room_for(self, meta: dict[str, Any], previous: str | None) -> Fit | None:
        """The fit of ``meta`` in the memory available once the previous model is unloaded: what Ollama
        reports that model holding in VRAM (``/api/ps`` ``size_vram``) counts as free for this switch."""
        prev = self._resolve_or_none(previous) if previous else None
        freed = 0
        if prev is not None and name_key(prev["ollama_tag"]) != name_key(meta["ollama_tag"]):
            freed = sum(
                r.size_vram_bytes
                for r in self.ollama.running()
                if name_key(r.name) == name_key(prev["ollama_tag"])
            )
        return self.planner.fit(meta, self.available_vram_gb() + freed / GIB, detected=True)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Switches and deletes run one at a time across threads and processes sharing this store,
        so that two switches end in one consistent current model and a delete never races a switch."""
        with self._switch_lock, self.store.lease("switch", ttl_s=self.settings.load_timeout_s + 30):
            yield

    def _unload_quietly(self, name: str) -> None:
        meta = self._resolve_or_none(name)
        tag = meta["ollama_tag"] if meta else name
        try:
            self.ollama.unload(tag)
        except ModelManagerError as exc:
            log.info("could not unload previous model %s: %s", tag, exc.message)

    # --- downloads and deletes -----------------------------------------------------------------

    def download(self, name: str, progress: ProgressCallback | None = None) -> str:
        """Pull a catalog model or any valid Ollama name; return a success message.

        Raises InvalidModelNameError, ModelNotFoundError (no such model in the registry),
        DownloadFailedError (with Ollama's text).
        """
        name = validate_model_name(name)
        entry = self.catalog.get(name)
        tag = entry.ollama_tag if entry is not None else name
        self.ollama.pull(tag, progress)
        self._installed_at = -math.inf
        try:
            self.sync()
        except OllamaUnavailableError as exc:
            log.info("pulled %s, but could not re-read installed models: %s", tag, exc.message)
        label = f"{entry.name} ({tag})" if entry is not None and entry.name != tag else tag
        return f"Downloaded {label}"

    def delete(self, name: str) -> str:
        """Delete ``name`` from Ollama; return a success message.

        Raises ModelNotFoundError, ModelNotInstalledError, CannotDeleteCurrentError.
        """
        with self._exclusive():
            meta = self._resolve_live(name)
            current = self.store.get_state(CURRENT_MODEL_KEY)
            if current is not None and name_key(current) == name_key(meta["name"]):
                raise CannotDeleteCurrentError(f"{meta['name']} is the current model")
            if not meta["installed"]:
                raise ModelNotInstalledError(meta["name"])
            self.ollama.delete(meta["ollama_tag"])
            self.store.set_installed(meta["ollama_tag"], False)
            self._installed_at = -math.inf
            return f"Deleted {meta['name']}"

    # --- machine and runtime ----------------------------------------------------------------------

    @property
    def gpu(self) -> GPUManager:
        """GPU detection, built on first use."""
        if self._gpu is None:
            from .gpu import GPUManager

            self._gpu = GPUManager(self.settings.vram_gb)
        return self._gpu

    def available_vram_gb(self) -> float:
        """GB of GPU memory a model can use now (``MODEL_MANAGER_VRAM_GB`` overrides detection)."""
        return float(self.gpu.get_available_memory_gb())

    def running_models(self) -> list[dict[str, Any]]:
        """What Ollama has loaded now (``/api/ps``). Raises OllamaUnavailableError."""
        out = []
        for r in self.ollama.running():
            meta = self._resolve_or_none(r.name)
            out.append(
                {
                    "name": meta["name"] if meta else r.name,
                    "ollama_tag": r.name,
                    "size_bytes": r.size_bytes,
                    "size_vram_bytes": r.size_vram_bytes,
                    "gpu_fraction": r.size_vram_bytes / r.size_bytes if r.size_bytes else 0.0,
                    "expires_at": r.expires_at,
                    "context_length": r.context_length,
                }
            )
        return out

    def health(self) -> dict[str, Any]:
        """Whether the store and Ollama answer, with Ollama's version or the reason it does not."""
        result: dict[str, Any] = {
            "store": {"ok": True, "path": self.store.path},
            "ollama": {"host": self.ollama.host},
        }
        try:
            result["store"]["ok"] = self.store.schema_version() >= 1
        except ModelManagerError as exc:
            result["store"].update(ok=False, error=exc.message)
        try:
            result["ollama"].update(ok=True, version=self.ollama.version())
        except ModelManagerError as exc:
            result["ollama"].update(ok=False, error=exc.message)
        result["ok"] = result["store"]["ok"] and result["ollama"]["ok"]
        return result

    # --- compatibility and recommendation --------------------------------------------------------

    def _vram(self, vram_gb: object) -> tuple[float, bool]:
        """(GB, detected): the given figure validated, or what GPU detection finds when none is given."""
        if vram_gb is None:
            return self.available_vram_gb(), True
        return parse_vram_gb(vram_gb), False

    def compatibility(self, name: str, vram_gb: float | None = None) -> Compatibility:
        """Whether ``name`` fits in ``vram_gb`` (detected when None), with the memory estimate's fit level.

        ``compatible`` keeps the seed's meaning: the required VRAM (the catalog's Min VRAM, else the
        estimate) is at most what is available. Raises ModelNotFoundError, InvalidRequestError.
        """
        available, detected = self._vram(vram_gb)
        meta = self._resolve(name)
        required = self.required_vram_gb(meta, None if detected else available)
        fits = required <= available
        if fits:
            message = f"Compatible: {meta['name']} needs {required:.1f} GB VRAM, {available:.1f} GB available"
        else:
            message = f"Insufficient VRAM: {meta['name']} needs {required:.1f} GB VRAM, only {available:.1f} GB available"
        level = self.planner.fit(meta, available, detected=detected)
        if level is not None:
            message += f"; {level.describe()}"
        return Compatibility(meta["name"], fits, required, available, message, level)

    def recommend(self, vram_gb: float | None = None, priority: str = "balanced") -> Recommendation:
        """Pick a catalog model for ``priority`` ("speed", "balanced" or "quality") within ``vram_gb``
        (detected when None).

        Candidates are catalog models of that purpose whose required VRAM (the catalog's Min VRAM, else the
        estimate) fits. "quality" and "balanced" pick the most capable: the most parameters, then the
        largest requirement. "speed" picks the fastest: the lowest measured average inference time among
        models with recorded usage, else the fewest parameters. Installed models win ties. No candidate:
        ``model`` is None (fall back by calling again with another priority). Each candidate says how much
        context fits in the memory given.

        Raises InvalidRequestError for an unknown priority or a bad VRAM figure.
        """
        available, detected = self._vram(vram_gb)
        wanted = _parse_priority(priority)
        planned = None if detected else available
        catalog_names = {name_key(e.name) for e in self.catalog}
        candidates = []
        for meta in self._all_metadata():
            if meta["purpose"] != wanted or name_key(meta["name"]) not in catalog_names:
                continue
            meta["required_vram_gb"] = self.required_vram_gb(meta, planned)
            if meta["required_vram_gb"] <= available:
                meta["max_context"] = self.planner.max_context(meta, available, detected=detected)
                candidates.append(meta)
        ranked = rank(candidates, wanted)
        listed = [
            {
                k: m.get(k)
                for k in (
                    "name",
                    "required_vram_gb",
                    "max_context",
                    "installed",
                    "parameter_count",
                    "avg_inference_time",
                    "usage_count",
                )
            }
            for m in ranked
        ]
        if not ranked:
            return Recommendation(
                None, f"no {wanted} model in the catalog fits in {available:.1f} GB", listed
            )
        return Recommendation(ranked[0]["name"], reason(ranked[0], wanted, available), listed)

    # --- usage statistics -----------------------------------------------------------------------

    def record_usage(self, name: str, inference_time: float, success: bool = True) -> None:
        """Record one use of ``name``; durable when it returns, safe from several processes.

        Raises InvalidModelNameError or InvalidRequestError for bad input (nothing is recorded).
        """
        if isinstance(inference_time, bool) or not isinstance(inference_time, int | float):
            raise InvalidRequestError(f"inference_time must be a number of seconds, got {inference_time!r}")
        if not math.isfinite(inference_time) or inference_time < 0:
            raise InvalidRequestError(f"inference_time must be a finite number ≥ 0, got {inference_time!r}")
        if not isinstance(success, bool):
            raise InvalidRequestError(f"success must be true or false, got {success!r}")
        self.store.record_usage(self.canonical_name(name), float(inference_time), success)

    def statistics(self, name: str) -> dict[str, Any]:
        """The seed's statistics fields. Raises ModelNotFoundError when nothing is known of ``name``."""
        canonical = self.canonical_name(name)
        s = self.store.get_stats(canonical)
        known, installed = self._is_installed(canonical)
        if s is None and not known:
            raise ModelNotFoundError(name)
        stats = s or ModelStats(canonical)
        return stats_dict(stats, installed, canonical if known or s is None else stats.name)

    def all_statistics(self) -> dict[str, dict[str, Any]]:
        """{name: statistics} for every known model and every model with recorded usage."""
        stats = self.store.all_stats()
        metas = {m["name"].lower(): m for m in self._all_metadata()}
        out = {}
        for meta in metas.values():
            s = lookup(stats, meta["name"]) or ModelStats(meta["name"])
            out[meta["name"]] = stats_dict(s, meta["installed"], meta["name"])
        for name, s in stats.items():
            if name.lower() not in metas:
                out[name] = stats_dict(s, False)
        return out

    # --- export / import -----------------------------------------------------------------------

    def export_data(self) -> dict[str, Any]:
        """The export document as a dict (the REST API returns it as the response body)."""
        stats = self.store.all_stats()
        metadata = {m["name"]: {k: m[k] for k in EDITABLE_FIELDS} for m in self._all_metadata()}
        for name, fields in self.store.get_overrides().items():
            if lookup(metadata, name) is None:
                metadata[name] = fields
        return build_document(
            exported_at=utc_now(),
            current_model=self.store.get_state(CURRENT_MODEL_KEY),
            stats=stats,
            metadata=metadata,
        )

    def export_document(self, path: str | os.PathLike[str]) -> str:
        """Write the export document to ``path`` (temp file + rename). Returns a message."""
        target = Path(path)
        doc = self.export_data()
        try:
            write_atomically(target, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise FileAccessError(f"cannot write {target}: {exc.strerror or exc}") from None
        return f"Exported {len(doc['models'])} models to {target}"

    def import_data(self, doc: Any) -> str:
        """Validate ``doc`` whole, then apply it in one transaction. Returns a message.

        Statistics of the models named in the document replace the local aggregates (raw events stay);
        editable metadata becomes an override where it differs from the catalog. The current model is
        not changed: it is a fact of what Ollama has loaded. Raises InvalidDocumentError.
        """
        if not isinstance(doc, dict):
            raise InvalidDocumentError("$: expected a JSON object")
        plan = parse_document(doc)
        base = {m["name"].lower(): m for m in self._all_metadata(with_overrides=False)}
        overrides: dict[str, dict[str, Any]] = {}
        for name, fields in plan.metadata.items():
            meta = base.get(self.canonical_name(name).lower())
            overrides[self.canonical_name(name)] = {
                k: v for k, v in fields.items() if meta is None or meta.get(k) != v
            }
        stats = [
            ModelStats(self.canonical_name(s.name), s.usage_count, s.success_count, s.total_time, s.last_used)
            for s in plan.stats
        ]
        backup = self._backup_before_import()
        self.store.apply_import(stats, overrides)
        return (
            f"Imported statistics for {len(plan.stats)} and metadata for {len(plan.metadata)} models "
            f"(previous state saved to {backup})"
        )

    def _backup_before_import(self) -> Path:
        """Save the current state first, so an import never loses what was recorded here."""
        stamp = utc_now().replace(":", "").replace("-", "").replace("+0000", "Z")
        target = self.settings.home / "backups" / f"before-import-{stamp}.json"
        write_atomically(target, json.dumps(self.export_data(), indent=2, ensure_ascii=False) + "\n")
        return target

    def import_document(self, path: str | os.PathLike[str]) -> str:
        """Read and import the document at ``path``. Raises InvalidDocumentError."""
        target = Path(path)
        try:
            raw = target.read_bytes()
        except OSError as exc:
            raise FileAccessError(f"cannot read {target}: {exc.strerror or exc}") from None
        return self.import_data(loads_document(raw))


def _parse_purpose(value: object) -> ModelPurpose:
    try:
        return ModelPurpose.parse(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _parse_priority(value: object) -> str:
    if isinstance(value, ModelPurpose):
        value = value.value
    if not isinstance(value, str) or value.strip().lower() not in PRIORITIES:
        raise InvalidRequestError(f"unknown priority {value!r}; expected one of: {', '.join(PRIORITIES)}")
    return value.strip().lower()
