"""``ModelManager``: the quick-reference API, a thin layer over the raising core.

The quick reference names methods that answer with bools, tuples, dicts and ``None`` instead of raising
(``switch_model`` → bool, ``download_model`` → ``(success, message)``, ``get_model_info`` → dict or
None …). Each one here calls one method of :class:`~model_manager.manager.ManagerCore` and turns its
typed error into that answer. The reason for a failure is never lost: it is logged and kept in
:attr:`ModelManager.last_error` (per thread, so a server's threads never read each other's). The REST
API and the CLI call the raising core directly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InvalidRequestError, ModelManagerError
from .fleet import Fleet, fleet_models_dicts
from .manager import ManagerCore
from .types import ModelPurpose, ProgressCallback

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelManager(ManagerCore):
    """Catalog, installed state, switching, downloads and usage statistics for one Ollama server, with
    the quick reference's methods on top of the raising ones."""

    _local: threading.local
    _local_lock = threading.Lock()
    _fleet: Fleet | None = None

    # --- hosts (a fleet sharing the store; ``host=`` on the methods below picks one) --------------

    @property
    def fleet(self) -> Fleet:
        """Every host in the store (``fleet.Fleet``): the raising fleet-wide API."""
        if self._fleet is None:
            with self._local_lock:
                if self._fleet is None:
                    self._fleet = Fleet(self)
        return self._fleet

    def close(self) -> None:
        if self._fleet is not None:
            self._fleet.close()
        super().close()

    def _on(self, host: str | None) -> ManagerCore:
        """The manager of ``host`` (None: this one). Raises InvalidRequestError, UnknownHostError."""
        return self if host is None else self.fleet.manager(host)

    def add_host(self, name: str, url: str, vram_gb: float | None = None) -> tuple[bool, str]:
        """Add a host of the fleet (or change its URL and ``vram_gb``): every manager on the store sees it."""

        def add() -> str:
            host, new = self.fleet.add_host(name, url, vram_gb)
            return f"{'Added' if new else 'Updated'} host {host.name} at {host.url}"

        return self._answer_message(add)

    def remove_host(self, name: str) -> tuple[bool, str]:
        """Remove a host from the store (its recorded usage and jobs are kept)."""
        return self._answer_message(lambda: f"Removed host {self.fleet.remove_host(name).name}")

    def list_hosts(self, check: bool = True) -> list[dict[str, Any]]:
        """Every host, this manager's own first, with what is known of its memory; ``check`` also asks
        each one (at once) whether its Ollama answers (``reachable``, ``version``, ``error``)."""
        if not check:
            return self._answer(lambda: [h.to_dict() for h in self.fleet.hosts()], [])
        return self._answer(lambda: [{**a.host_dict(), "version": a.value} for a in self.fleet.check()], [])

    @property
    def last_error(self) -> ModelManagerError | None:
        """Why this thread's last quick-reference call failed (None after a success)."""
        return getattr(self._errors(), "value", None)

    def _errors(self) -> threading.local:
        if "_local" not in self.__dict__:
            with self._local_lock:
                if "_local" not in self.__dict__:
                    self._local = threading.local()
        return self._local

    def _answer(self, call: Callable[[], T], failed: T) -> T:
        try:
            result = call()
        except ModelManagerError as exc:
            self._errors().value = exc
            log.warning("%s (solution: %s)", exc.message, exc.solution)
            return failed
        self._errors().value = None
        return result

    def _answer_message(self, call: Callable[[], str]) -> tuple[bool, str]:
        message = self._answer(call, None)
        if message is None:
            assert self.last_error is not None
            return False, self.last_error.message
        return True, message

    def list_available_models(
        self,
        installed_only: bool = False,
        purpose: ModelPurpose | str | None = None,
        max_vram_gb: float | None = None,
        host: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every known model (catalog and installed) as a metadata dict, filtered; on ``host`` (``all``:
        every host at once, each dict with ``installed_on``, ``loaded_on`` and ``hosts``).

        Raises InvalidRequestError for an unknown purpose or a bad VRAM figure, UnknownHostError: a
        wrong argument is a bug in the caller, not an empty list.
        """
        if host is not None and host.strip().lower() == "all":
            return fleet_models_dicts(self.fleet.listing("all", installed_only, purpose, max_vram_gb)[0])
        target = self._on(host)
        return [
            target.metadata(info, max_vram_gb) for info in target.models(installed_only, purpose, max_vram_gb)
        ]

    def get_model_info(self, name: str, host: str | None = None) -> dict[str, Any] | None:
        """The metadata dict for ``name`` (on ``host``), or None when no such model is known."""
        return self._answer(lambda: (t := self._on(host)).metadata(t.model_info(name)), None)

    def get_current_model(self, host: str | None = None) -> str | None:
        """The selected model (of ``host``); None when none is selected or Ollama no longer has it."""
        return self._answer(lambda: self._on(host).current_model(), None)

    def check_model_compatibility(
        self, name: str, vram_gb: float | None = None, host: str | None = None
    ) -> tuple[bool, str]:
        """(fits, message) for ``name`` in ``vram_gb`` GB (detected when None; ``host``'s memory)."""
        result = self._answer(lambda: self._on(host).compatibility(name, vram_gb), None)
        if result is None:
            assert self.last_error is not None
            return False, self.last_error.message
        return result.compatible, result.message

    def switch_model(self, name: str, host: str | None = None) -> bool:
        """Load ``name`` in Ollama (on ``host``; ``auto``: where placement puts it among the hosts that
        have it), unload the previous model and remember the choice."""
        from .placement import switch

        if host is not None:
            return self._answer(lambda: switch(self.fleet, name, host) is not None, False)
        return self._answer(lambda: self.switch(name) is not None, False)

    def download_model(
        self, name: str, progress: ProgressCallback | None = None, host: str | None = None
    ) -> tuple[bool, str]:
        """Pull ``name`` through Ollama (on ``host``; ``auto``: where placement puts it, named in the
        message); ``progress(status, completed, total)`` sees each stream line."""
        from .placement import download

        def pull() -> str:
            message, placement = download(self.fleet, name, host, progress)
            return f"{message} on {placement.host.name}: {placement.reason}" if placement else message

        return self._answer_message(pull if host is not None else lambda: self.download(name, progress))

    def delete_model(self, name: str, host: str | None = None) -> tuple[bool, str]:
        """Remove ``name`` from Ollama (on ``host``); refuses the current model."""
        return self._answer_message(lambda: self._on(host).delete(name))

    def recommend_model(
        self,
        vram_gb: float | None = None,
        priority: str = "balanced",
        host: str | None = None,
        *,
        capability: str | None = None,
    ) -> str | None:
        """The best catalog model of ``priority`` (with ``capability``, e.g. "vision") that fits in
        ``vram_gb`` (``host``'s memory), or None. See ``recommend``; every host's answer:
        ``fleet.recommend()``."""
        result = self._answer(
            lambda: self._on(host).recommend(vram_gb, priority, capability=capability), None
        )
        return result.model if result else None

    def get_model_statistics(self, name: str, host: str | None = None) -> dict[str, Any] | None:
        """The quick reference's statistics fields for ``name``; None when the model is unknown. With
        ``host``: that host's share; ``all``: the totals with each host's share in ``hosts``."""
        if host is None:
            return self._answer(lambda: self.statistics(name).to_dict(), None)
        if host.strip().lower() == "all":
            return self._answer(lambda: self.fleet.all_statistics(name)[self.canonical_name(name)], None)
        return self._answer(lambda: next(iter(self.fleet.statistics(host, name).values())).to_dict(), None)

    def get_all_statistics(self, host: str | None = None) -> dict[str, dict[str, Any]]:
        """Statistics of every known model and of every model with recorded usage; with ``host`` that
        host's share, with ``all`` the totals with each host's share in ``hosts``."""
        if host is None:
            return self._answer(lambda: {k: v.to_dict() for k, v in self.all_statistics().items()}, {})
        if host.strip().lower() == "all":
            return self._answer(self.fleet.all_statistics, {})
        return self._answer(lambda: {k: v.to_dict() for k, v in self.fleet.statistics(host).items()}, {})

    def export_metadata(self, path: str | os.PathLike[str]) -> tuple[bool, str]:
        """Write the export document to ``path`` atomically."""
        return self._answer_message(lambda: self.export_document(path))

    def import_metadata(self, path: str | os.PathLike[str]) -> tuple[bool, str]:
        """Validate the document at ``path`` whole, then apply it in one transaction."""
        return self._answer_message(lambda: self.import_document(path))

    def _sync_with_ollama(self, host: str | None = None) -> dict[str, Any]:
        """The quick reference's name for :meth:`sync` (raises OllamaUnavailableError like it); with
        ``host`` that host's, with ``all`` {host: its answer, or None where it did not answer}."""
        if host is not None and host.strip().lower() == "all":
            return {a.host.name: a.value.to_dict() if a.value else None for a in self.fleet.sync("all")}
        if host is not None and host.strip().lower() == "auto":
            raise InvalidRequestError("sync takes a host's name or all")
        return self._on(host).sync().to_dict()
