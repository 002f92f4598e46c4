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

from .errors import ModelManagerError
from .manager import ManagerCore
from .types import ModelPurpose, ProgressCallback

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelManager(ManagerCore):
    """Catalog, installed state, switching, downloads and usage statistics for one Ollama server, with
    the quick reference's methods on top of the raising ones."""

    _local: threading.local
    _local_lock = threading.Lock()

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
    ) -> list[dict[str, Any]]:
        """Every known model (catalog and installed) as a metadata dict, filtered.

        Raises InvalidRequestError for an unknown purpose or a bad VRAM figure: a wrong argument is a
        bug in the caller, not an empty list.
        """
        return [
            self.metadata(info, max_vram_gb) for info in self.models(installed_only, purpose, max_vram_gb)
        ]

    def get_model_info(self, name: str) -> dict[str, Any] | None:
        """The metadata dict for ``name``, or None when no such model is known."""
        return self._answer(lambda: self.metadata(self.model_info(name)), None)

    def get_current_model(self) -> str | None:
        """The selected model; None when none is selected or Ollama no longer has it."""
        return self._answer(self.current_model, None)

    def check_model_compatibility(self, name: str, vram_gb: float | None = None) -> tuple[bool, str]:
        """(fits, message) for ``name`` in ``vram_gb`` GB (detected when None)."""
        result = self._answer(lambda: self.compatibility(name, vram_gb), None)
        if result is None:
            assert self.last_error is not None
            return False, self.last_error.message
        return result.compatible, result.message

    def switch_model(self, name: str) -> bool:
        """Load ``name`` in Ollama, unload the previous model and remember the choice."""
        return self._answer(lambda: self.switch(name) is not None, False)

    def download_model(self, name: str, progress: ProgressCallback | None = None) -> tuple[bool, str]:
        """Pull ``name`` through Ollama; ``progress(status, completed, total)`` sees each stream line."""
        return self._answer_message(lambda: self.download(name, progress))

    def delete_model(self, name: str) -> tuple[bool, str]:
        """Remove ``name`` from Ollama; refuses the current model."""
        return self._answer_message(lambda: self.delete(name))

    def recommend_model(
        self, vram_gb: float | None = None, priority: str = "balanced", *, capability: str | None = None
    ) -> str | None:
        """The best catalog model of ``priority`` (with ``capability``, e.g. "vision") that fits in
        ``vram_gb``, or None. See ``recommend``."""
        result = self._answer(lambda: self.recommend(vram_gb, priority, capability=capability), None)
        return result.model if result else None

    def get_model_statistics(self, name: str) -> dict[str, Any] | None:
        """The quick reference's statistics fields for ``name``; None when the model is unknown."""
        return self._answer(lambda: self.statistics(name).to_dict(), None)

    def get_all_statistics(self) -> dict[str, dict[str, Any]]:
        """Statistics of every known model and of every model with recorded usage."""
        return self._answer(lambda: {k: v.to_dict() for k, v in self.all_statistics().items()}, {})

    def export_metadata(self, path: str | os.PathLike[str]) -> tuple[bool, str]:
        """Write the export document to ``path`` atomically."""
        return self._answer_message(lambda: self.export_document(path))

    def import_metadata(self, path: str | os.PathLike[str]) -> tuple[bool, str]:
        """Validate the document at ``path`` whole, then apply it in one transaction."""
        return self._answer_message(lambda: self.import_document(path))

    def _sync_with_ollama(self) -> dict[str, list[str]]:
        """The quick reference's name for :meth:`sync` (raises OllamaUnavailableError like it)."""
        return self.sync().to_dict()
