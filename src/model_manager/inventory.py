"""The inventory: what Ollama has installed, the one name key, and the ``ModelInfo`` records.

* **Installed state** is read from Ollama (``/api/tags``, and ``/api/show`` once per new model) at most
  every ``max_age_s`` seconds and kept in the store, so listings stay fast and still answer, from the
  last known state, while Ollama is down. ``math.inf`` reads the state the last sync of any process
  stored, asking Ollama only when there has never been one.
* **Names**: every lookup, statistic, override and import compares names by ``names.name_key``
  (Ollama's case-insensitive display name, so ``MyModel:latest``, ``mymodel`` and
  ``registry.ollama.ai/library/mymodel:latest`` are one model). Catalog models answer to their catalog
  name, Ollama tag and aliases; what is recorded for them is kept under the catalog name.
* **Records**: ``snapshot()`` builds every model's ``ModelInfo`` once (catalog models first, then the
  installed models the catalog lacks) with overrides and usage applied; a request resolves all its
  names against one snapshot.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, infer_purpose, parameters_from_size
from .config import DEFAULT_HOST_NAME
from .errors import ModelManagerError, ModelNotFoundError, OllamaError, OllamaUnavailableError
from .exchange import EDITABLE_FIELDS
from .names import display_name, name_key, stored_name_key
from .quality import estimate_quality
from .store import Store, utc_now
from .types import CatalogEntry, InstalledModel, ModelInfo, ModelPurpose, ModelRecord, ModelStats

if TYPE_CHECKING:
    from .ollama_client import OllamaClient

log = logging.getLogger(__name__)

INSTALLED_TTL_S = 2.0
SYNCED_AT_KEY = "installed_synced_at"


def host_key(key: str, host: str) -> str:
    """A state key of one host: the default host's keeps the plain key it had before hosts existed."""
    return key if host == DEFAULT_HOST_NAME else f"{key}@{host}"


@dataclass(frozen=True)
class SyncResult:
    """What a sync found: names added and removed since the last one, and everything installed."""

    added: list[str]
    removed: list[str]
    installed: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "installed": self.installed}


@dataclass(frozen=True)
class Snapshot:
    """Every known model's record at one moment, with lookup by any of its names."""

    models: tuple[ModelInfo, ...]
    index: Mapping[str, ModelInfo] = field(repr=False)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def find_key(self, key: str) -> ModelInfo | None:
        """The model whose name key (``names.name_key``) is ``key``, or None."""
        return self.index.get(key)

    def resolve_key(self, key: str, name: str) -> ModelInfo:
        """The model for ``key``; raises ModelNotFoundError naming ``name`` as the user wrote it."""
        info = self.index.get(key)
        if info is None:
            raise ModelNotFoundError(name)
        return info


def _keyed(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {stored_name_key(k): v for k, v in mapping.items()}


def _catalog_info(entry: CatalogEntry, record: ModelRecord | None) -> dict[str, Any]:
    return {
        "name": entry.name,
        "ollama_tag": record.name if record is not None else entry.ollama_tag,
        "size": entry.size,
        "purpose": entry.purpose,
        "description": entry.description,
        "recommended_use": entry.recommended_use,
        "min_vram_gb": entry.min_vram_gb,
        "quantization_support": entry.quantization_support,
        "download_size_mb": entry.download_size_mb,
        "installed": record is not None,
        "capabilities": entry.capabilities,
        "family": entry.family,
        "quantization": entry.quantization,
        "parameter_count": entry.parameter_count,
        "source": "catalog" if entry.source == "builtin" else "user_catalog",
        "quality_score": entry.quality_score,
        "quality_source": entry.quality_source,
        "quality_benchmark": entry.quality_benchmark,
        "entry": entry,
        "record": record,
    }


def _installed_info(record: ModelRecord, catalog: Catalog) -> dict[str, Any]:
    """An installed model the catalog lacks, described from ``/api/tags`` and ``/api/show``, with a
    quality estimate placed among the catalog's models of its architecture and size."""
    facts = dict(record.facts or {})
    info = facts.get("model_info") or {}
    capabilities = tuple(facts.get("capabilities") or ("completion",))
    parameter_size = str(facts.get("parameter_size") or "")
    params = float(info.get("general.parameter_count") or parameters_from_size(parameter_size))
    family = str(facts.get("family") or "")
    quant = str(facts.get("quantization_level") or "")
    architecture = str(info.get("general.architecture") or family)
    quality = estimate_quality(catalog, architecture, params, capabilities)
    return {
        "name": record.name,
        "ollama_tag": record.name,
        "size": parameter_size,
        "purpose": infer_purpose(params, capabilities),
        "description": f"{family or 'Unknown family'} {parameter_size} {quant}".strip()
        + ", installed in Ollama; not in the catalog",
        "recommended_use": "",
        "min_vram_gb": None,
        "quantization_support": (quant,) if quant else (),
        "download_size_mb": round(record.size_bytes / 1e6),
        "installed": record.installed,
        "capabilities": capabilities,
        "family": family,
        "quantization": quant,
        "parameter_count": int(params),
        "source": "ollama",
        "quality_score": quality.score if quality else None,
        "quality_source": quality.source if quality else "",
        "quality_benchmark": quality.benchmark if quality else "",
        "entry": None,
        "record": record,
    }


def _finish(
    fields: dict[str, Any], stats: ModelStats | None, override: Mapping[str, Any] | None
) -> ModelInfo:
    for key, value in (override or {}).items():
        if key == "purpose":
            fields[key] = ModelPurpose.parse(value)
        elif key == "quantization_support":
            fields[key] = tuple(value)
        elif key in EDITABLE_FIELDS:
            fields[key] = value
    key = name_key(fields["name"])
    return ModelInfo(key=key, stats=stats or ModelStats(fields["name"]), **fields)


class Inventory:
    """Installed state, names and model records for one manager (of one host: ``host`` names it in the
    store, where each host's installed state is kept apart)."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        ollama: Callable[[], OllamaClient],
        *,
        max_age_s: float = INSTALLED_TTL_S,
        on_change: Callable[[], None] = lambda: None,
        host: str = DEFAULT_HOST_NAME,
    ) -> None:
        self.catalog, self.store, self.host = catalog, store, host
        self._synced_at_key = host_key(SYNCED_AT_KEY, host)
        #: Why the last look at Ollama got no usable answer (None once one did).
        self.last_failure: ModelManagerError | None = None
        self._ollama, self._on_change = ollama, on_change
        self.max_age_s = max_age_s
        self._installed_at = -math.inf
        self._ollama_answered = False
        self._lock = threading.RLock()

    # --- installed state ------------------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Read what Ollama has installed into the store, with facts for new models.

        Raises OllamaUnavailableError when Ollama does not answer, OllamaError when its answer is bad.
        """
        with self._lock:
            ollama = self._ollama()
            installed = ollama.list_models()
            known = {stored_name_key(r.name): r for r in self.store.list_models(host=self.host)}
            added, removed = self.store.replace_installed(installed, self.host)
            changed = bool(added or removed)
            for model in installed:
                record = known.get(stored_name_key(model.name))
                if record is None or record.facts is None or record.digest != model.digest:
                    changed = self._store_facts(ollama, model) or changed
            if changed:
                self._on_change()
            self._installed_at = time.monotonic()
            self._ollama_answered = True
            self.last_failure = None
            self.store.set_state(self._synced_at_key, utc_now())
        return SyncResult(added, removed, sorted(m.name for m in installed))

    def _store_facts(self, ollama: OllamaClient, model: InstalledModel) -> bool:
        try:
            facts = ollama.show(model.name)
        except ModelManagerError as exc:
            log.info("no facts for %s: %s", model.name, exc.message)
            return False
        self.store.upsert_model(
            model,
            host=self.host,
            facts={
                "model_info": dict(facts.model_info),
                "capabilities": list(facts.capabilities),
                "family": facts.family or model.family,
                "parameter_size": facts.parameter_size or model.parameter_size,
                "quantization_level": facts.quantization_level or model.quantization_level,
                "projector_info": dict(facts.projector_info),
            },
        )
        return True

    def installed(self) -> dict[str, ModelRecord]:
        """Installed models by name key: fresh from Ollama when it answers, else the last known state."""
        if self._stale():
            with self._lock:
                # Threads that found the state stale together sync once: the first refreshes it.
                if self._stale():
                    self._refresh()
        return {
            stored_name_key(r.name): r for r in self.store.list_models(installed_only=True, host=self.host)
        }

    def _refresh(self) -> None:
        try:
            self.sync()
        except (OllamaUnavailableError, OllamaError) as exc:
            # Listings keep answering from the last known state while Ollama is down or failing.
            log.debug("installed state from the store: %s", exc.message)
            self._installed_at = time.monotonic()
            self._ollama_answered = False
            self.last_failure = exc

    def _stale(self) -> bool:
        if math.isinf(self.max_age_s):
            return self._installed_at == -math.inf and self.installed_as_of() is None
        return time.monotonic() - self._installed_at > self.max_age_s

    def mark_stale(self) -> None:
        """Ask Ollama again on the next read (after a pull or a delete)."""
        self._installed_at = -math.inf

    def state_known(self) -> bool:
        """Whether the last look at Ollama got an answer (so ``installed`` flags are current)."""
        self.installed()
        return self._ollama_answered

    @property
    def ollama_answered(self) -> bool:
        """Whether the last look at Ollama, if any, got an answer (without looking again)."""
        return self._ollama_answered

    def installed_as_of(self) -> str | None:
        """When installed state was last read from Ollama (by any process), or None if never."""
        return self.store.get_state(self._synced_at_key)

    def listing_marker(self) -> tuple[int, int]:
        """Changes whenever a listing could: refreshes installed state when stale, then reads the store's
        change marker. Lets a caller (the REST API) reuse a rendered listing until something changes."""
        self.installed()
        return self.store.change_marker()

    # --- names ------------------------------------------------------------------------------------

    def canonical_name(self, name: str) -> str:
        """The name statistics are kept under: the catalog's name for catalog models, else Ollama's
        display form of the name. Raises InvalidModelNameError."""
        entry = self.catalog.by_key(name_key(name))
        return entry.name if entry is not None else display_name(name.strip())

    def status(self, key: str) -> tuple[bool, bool, str | None]:
        """(known, installed, catalog name) of the model with name key ``key``, without building every
        model's record (statistics need no more)."""
        installed = self.installed()
        entry = self.catalog.by_key(key)
        if entry is not None:
            return True, self._installed_record(entry, installed) is not None, entry.name
        return key in installed, key in installed, None

    @staticmethod
    def _installed_record(entry: CatalogEntry, installed: Mapping[str, ModelRecord]) -> ModelRecord | None:
        for n in entry.all_names():
            record = installed.get(name_key(n))
            if record is not None:
                return record
        return None

    # --- records ----------------------------------------------------------------------------------

    def snapshot(self, *, with_overrides: bool = True) -> Snapshot:
        """Every catalog model, then every installed model the catalog lacks, with usage and overrides."""
        installed = self.installed()
        stats = _keyed(self.store.all_stats())
        overrides = _keyed(self.store.get_overrides()) if with_overrides else {}
        drafts: list[dict[str, Any]] = []
        claimed: set[str] = set()
        for entry in self.catalog:
            record = self._installed_record(entry, installed)
            if record is not None:
                claimed.add(stored_name_key(record.name))
            drafts.append(_catalog_info(entry, record))
        for key, record in installed.items():
            if key not in claimed and self.catalog.by_key(key) is None:
                drafts.append(_installed_info(record, self.catalog))
        models = tuple(
            _finish(d, stats.get(name_key(d["name"])), overrides.get(name_key(d["name"]))) for d in drafts
        )
        return Snapshot(models, _index(models))


def _index(models: Sequence[ModelInfo]) -> dict[str, ModelInfo]:
    index: dict[str, ModelInfo] = {}
    for info in models:
        names = info.entry.all_names() if info.entry is not None else ()
        for n in (info.name, info.ollama_tag, *names):
            index.setdefault(name_key(n), info)
    return index
