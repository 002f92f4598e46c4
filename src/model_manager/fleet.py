"""The fleet: every host sharing the store, asked at once.

``Fleet(core)`` sits above the manager of one host (``core``, the manager beside its own Ollama) and
keeps one manager per other host, each with its own Ollama adapter, inventory and GPU figure
(``hosts.HostGPU``) over the one shared store and catalog; ``ManagerCore`` stays a single-host manager.
A fleet-wide answer asks every host from a thread of its own, so it takes as long as the slowest host,
not the sum. A host that is down or answers garbage is marked unreachable in the answer while the others
are served; any other failure (the store, bad input) is raised as it is.

Placement (``pull``/``use`` with ``--host auto``) is in ``placement``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from .config import FLEET_WORDS, parse_gb
from .errors import (
    HostUnreachableError,
    InvalidRequestError,
    ModelManagerError,
    OllamaError,
    OllamaUnavailableError,
)
from .hosts import Host, HostGPU
from .inventory import SyncResult
from .manager import ManagerCore
from .names import stored_name_key
from .recommend import Recommendation
from .types import LoadedModel, ModelInfo, ModelPurpose, ModelStats, Statistics

log = logging.getLogger(__name__)
T = TypeVar("T")

HOST_FAULTS = (OllamaUnavailableError, OllamaError)
"""What marks a host unreachable in a fleet-wide answer: it did not answer, or answered garbage."""


@dataclass(frozen=True)
class Answer(Generic[T]):
    """One host's answer to a fleet-wide question, or why it gave none."""

    host: Host
    value: T | None = None
    error: ModelManagerError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def host_dict(self) -> dict[str, Any]:
        """The host, with whether it answered."""
        error = self.error.to_dict() if self.error is not None else None
        return {**self.host.to_dict(), "reachable": self.error is None, "error": error}


@dataclass(frozen=True)
class HostListing:
    """What one host has: its records, the fit level of each in the host's memory, what is loaded, and
    whether its Ollama answered (``failure`` says why not; the records are then as last seen)."""

    manager: ManagerCore
    models: tuple[ModelInfo, ...]
    levels: dict[str, str | None]
    loaded: frozenset[str]
    failure: ModelManagerError | None = None
    as_of: str | None = None


@dataclass
class FleetModel:
    """One model across the fleet: its record on the first host that has it, and each host's view."""

    info: ModelInfo
    manager: ManagerCore
    on: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self, memory_of: Callable[[ManagerCore], Any]) -> dict[str, Any]:
        meta = self.manager.metadata(self.info, memory=memory_of(self.manager))
        installed = [h for h, v in self.on.items() if v["installed"]]
        return {
            **meta,
            "installed": bool(installed),
            "installed_on": installed,
            "loaded_on": [h for h, v in self.on.items() if v["loaded"]],
            "hosts": self.on,
        }


class Fleet:
    """Every host in the store, as the manager ``core`` (of its own host) sees them."""

    def __init__(self, core: ManagerCore) -> None:
        self.core = core
        self.registry = core.hosts
        self._contexts: dict[str, ManagerCore] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the Ollama adapters of the other hosts (``core`` stays with whoever made it)."""
        with self._lock:
            contexts, self._contexts = list(self._contexts.values()), {}
        for manager in contexts:
            manager.ollama.close()

    # --- hosts ------------------------------------------------------------------------------------

    def hosts(self) -> list[Host]:
        """This manager's own host first, then every host in the store."""
        return self.registry.all()

    def add_host(self, name: object, url: object, vram_gb: object = None) -> tuple[Host, bool]:
        """Add a host, or change its URL and ``--vram``; returns it and whether it is new. Raises
        InvalidRequestError (nothing stored)."""
        return self.registry.add(name, url, vram_gb)

    def remove_host(self, name: str) -> Host:
        """Remove a host from the store (its usage and jobs stay). Raises UnknownHostError."""
        host = self.registry.remove(name)
        with self._lock:
            gone = self._contexts.pop(host.name, None)
        if gone is not None:
            gone.ollama.close()
        return host

    def check(self) -> list[Answer[str]]:
        """Every host's Ollama version, asked at once (an unreachable host's answer says why)."""
        return self.ask(self.hosts(), lambda m: m.ollama.version())

    # --- one manager per host ---------------------------------------------------------------------

    def manager(self, host: str | None) -> ManagerCore:
        """The manager of the host named ``host`` (None or ``local``: ``core``). Raises
        InvalidRequestError, UnknownHostError."""
        if host is None:
            return self.core
        if host.strip().lower() in FLEET_WORDS:
            raise InvalidRequestError(f"--host {host.strip().lower()} names several hosts, not one")
        return self.context(self.registry.get(host))

    def context(self, host: Host) -> ManagerCore:
        """The manager of ``host``: ``core`` for the own host, else one over the shared store and catalog
        with an Ollama adapter for the host's URL (built again when the URL changes)."""
        if host.own:
            return self.core
        with self._lock:
            found = self._contexts.get(host.name)
            if found is not None and found.ollama.host == host.url:
                return found
            built = self._build(host)
            self._contexts[host.name] = built
        if found is not None:
            found.ollama.close()
        return built

    def _build(self, host: Host) -> ManagerCore:
        from .ollama_client import OllamaClient

        base = self.core.settings
        settings = replace(base, ollama_host=host.url, host_name=host.name, vram_gb=None)
        ollama = OllamaClient(
            host.url,
            timeout_s=base.request_timeout_s,
            load_timeout_s=base.load_timeout_s,
            pull_silence_timeout_s=base.pull_silence_timeout_s,
            verify_mb_s=base.verify_mb_s,
        )
        name = host.name
        return ManagerCore(
            settings=settings,
            store=self.core.store,
            ollama=ollama,
            catalog=self.core.catalog,
            gpu=HostGPU(lambda: self.registry.get(name)),
            installed_max_age_s=self.core.inventory.max_age_s,
        )

    def select(self, host: str) -> list[Host]:
        """The hosts ``host`` names: ``all`` is every one. Raises InvalidRequestError, UnknownHostError."""
        if host.strip().lower() == "all":
            return self.hosts()
        if host.strip().lower() == "auto":
            raise InvalidRequestError("--host auto places one model (pull, use); use all or a host's name")
        return [self.registry.get(host)]

    def ask(self, hosts: Iterable[Host], call: Callable[[ManagerCore], T]) -> list[Answer[T]]:
        """``call`` on each host's manager, every host from a thread of its own; answers in host order.
        A host fault becomes that host's answer; any other failure is raised."""
        targets = [(h, self.context(h)) for h in hosts]

        def one(host: Host, manager: ManagerCore) -> Answer[T]:
            try:
                return Answer(host, call(manager))
            except HOST_FAULTS as exc:
                log.info("host %s: %s", host.name, exc.message)
                return Answer(host, error=exc)

        if len(targets) <= 1:
            return [one(h, m) for h, m in targets]
        with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="fleet") as pool:
            futures = [pool.submit(one, h, m) for h, m in targets]
            return [f.result() for f in futures]

    # --- listings ---------------------------------------------------------------------------------

    def listing(
        self,
        host: str = "all",
        installed_only: bool = False,
        purpose: ModelPurpose | str | None = None,
        max_vram_gb: float | None = None,
    ) -> tuple[list[FleetModel], list[Answer[HostListing]]]:
        """Every model known on the hosts ``host`` names, with where it is installed and loaded and how it
        fits on each; and each host's answer (unreachable ones show their models as last seen).
        Raises InvalidRequestError for a bad filter."""
        _check_filters(purpose, max_vram_gb)  # before any host is asked
        asked = self.ask(self.select(host), lambda m: _host_listing(m, purpose, max_vram_gb))
        # A host that did not answer is listed as last seen, and marked unreachable.
        answers = [replace(a, error=a.value.failure) if a.value and a.value.failure else a for a in asked]
        rows: dict[str, FleetModel] = {}
        for answer in answers:
            listing = answer.value
            if listing is None:
                continue
            for info in listing.models:
                row = rows.get(info.key)
                if row is None or (info.installed and not row.info.installed):
                    rows[info.key] = row = FleetModel(info, listing.manager, row.on if row else {})
                row.on[answer.host.name] = {
                    "installed": info.installed,
                    "loaded": info.key in listing.loaded
                    or stored_name_key(info.ollama_tag) in listing.loaded,
                    "fit": listing.levels.get(info.key),
                    "installed_state_known": listing.failure is None,
                }
        found = [r for r in rows.values() if not installed_only or any(v["installed"] for v in r.on.values())]
        return found, answers

    def running(self, host: str = "all") -> list[Answer[list[LoadedModel]]]:
        """What each host has loaded (``/api/ps``)."""
        return self.ask(self.select(host), lambda m: m.running_models())

    def sync(self, host: str = "all") -> list[Answer[SyncResult]]:
        """Read each host's installed models into the store."""
        return self.ask(self.select(host), lambda m: m.sync())

    def recommend(
        self,
        host: str = "all",
        vram_gb: float | None = None,
        priority: str = "balanced",
        *,
        capability: str | None = None,
    ) -> list[Answer[Recommendation]]:
        """Each host's recommendation in its own memory (``vram_gb`` when given), from stored state."""
        return self.ask(self.select(host), lambda m: m.recommend(vram_gb, priority, capability=capability))

    def reachable(self, answers: list[Answer[T]]) -> list[Answer[T]]:
        """The answers that came; raises HostUnreachableError naming each host when none did."""
        found = [a for a in answers if a.ok]
        if answers and not found:
            why = "; ".join(f"{a.host.name}: {a.error.message}" for a in answers if a.error is not None)
            raise HostUnreachableError(why)
        return found

    # --- usage ------------------------------------------------------------------------------------

    def statistics(self, host: str, name: str | None = None) -> dict[str, Statistics]:
        """Usage recorded on one host (its share of each model's totals), from the store."""
        manager = self.manager(host)
        where = manager.settings.host_name
        canonical = manager.canonical_name(name) if name is not None else None
        mine = self.core.store.stats_by_host(canonical).get(where, {})
        if canonical is not None:
            manager.statistics(canonical)  # ModelNotFoundError when nothing is known of it
            mine = {canonical: mine.get(canonical, ModelStats(canonical))}
        installed = {i.key: i.installed for i in manager.inventory.snapshot()}
        return {
            model: Statistics(model, s, installed.get(stored_name_key(model), False))
            for model, s in mine.items()
        }

    def all_statistics(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """Every model's totals with each host's share (``hosts``; ``imported`` for figures an import
        brought, which belong to no host). Totals are the sum of the shares."""
        if name is not None:
            one = self.core.statistics(name)  # ModelNotFoundError when nothing is known of it
            totals = {one.name: one}
        else:
            totals = self.core.all_statistics()
        shares: dict[str, dict[str, dict[str, Any]]] = {}
        for host, models in self.core.store.stats_by_host(
            None if name is None else next(iter(totals))
        ).items():
            for model, stats in models.items():
                shares.setdefault(stored_name_key(model), {})[host or "imported"] = _share(stats)
        return {
            model: {**total.to_dict(), "hosts": shares.get(stored_name_key(model), {})}
            for model, total in totals.items()
        }


def _check_filters(purpose: ModelPurpose | str | None, max_vram_gb: float | None) -> None:
    """Raise InvalidRequestError for a filter ``ManagerCore.models`` would refuse."""
    if max_vram_gb is not None:
        parse_gb(max_vram_gb, "max_vram_gb")
    if purpose is not None:
        try:
            ModelPurpose.parse(purpose)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None


def _share(stats: ModelStats) -> dict[str, Any]:
    return {
        "usage_count": stats.usage_count,
        "success_rate": stats.success_rate,
        "avg_inference_time": stats.avg_inference_time,
        "last_used": stats.last_used,
    }


def _host_listing(
    manager: ManagerCore, purpose: ModelPurpose | str | None, max_vram_gb: float | None
) -> HostListing:
    """One host's part of a listing: its records (refreshed from its Ollama when stale) and what it has
    loaded. A host that does not answer is listed as last seen, with why."""
    models = tuple(manager.models(False, purpose, max_vram_gb))
    inventory = manager.inventory
    failure = None if inventory.ollama_answered else inventory.last_failure
    loaded: set[str] = set()
    if failure is None:
        try:
            loaded = {stored_name_key(r.name) for r in manager.ollama.running()}
        except HOST_FAULTS as exc:
            failure = exc
    memory = manager.memory()
    levels = {info.key: manager.planner.verdict(info, memory).level for info in models}
    return HostListing(manager, models, levels, frozenset(loaded), failure, inventory.installed_as_of())


def fleet_models_dicts(models: list[FleetModel]) -> list[dict[str, Any]]:
    """The listing's rows as the dicts every face shows (each judged in its record's host's memory)."""
    memories: dict[int, Any] = {}

    def memory_of(manager: ManagerCore) -> Any:
        if id(manager) not in memories:
            memories[id(manager)] = manager.memory()
        return memories[id(manager)]

    return [m.to_dict(memory_of) for m in models]


def unreachable(answers: list[Answer[Any]]) -> list[Answer[Any]]:
    """The hosts that did not answer, for the faces' notes."""
    return [a for a in answers if not a.ok]
