"""Export and import of statistics and editable metadata (the document format is ``exchange``).

An import validates the whole document first, saves the state before it to ``<home>/backups/`` (the
newest ``MODEL_MANAGER_BACKUPS_KEEP`` backups are kept, 10 by default), then applies everything in one
transaction: statistics of the models it names replace the local aggregates
(raw events stay), editable metadata becomes an override where it differs from the catalog. The current
model is never changed by an import: it is a fact of what Ollama has loaded.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .config import DEFAULT_BACKUPS_KEEP
from .errors import FileAccessError, InvalidDocumentError
from .exchange import (
    EDITABLE_FIELDS,
    build_document,
    loads_document,
    parse_document,
    read_document,
    write_atomically,
)
from .inventory import Inventory, host_key
from .names import name_key
from .store import Store, utc_now
from .types import ModelInfo, ModelStats

CURRENT_MODEL_KEY = "current_model"
BACKUP_PREFIX = "before-import-"

log = logging.getLogger(__name__)


class Transfer:
    """Export and import for one store."""

    def __init__(
        self, store: Store, inventory: Inventory, home: Path, *, backups_keep: int = DEFAULT_BACKUPS_KEEP
    ) -> None:
        self.store, self.inventory, self.home = store, inventory, home
        self.backups_keep = backups_keep

    @property
    def backups_dir(self) -> Path:
        return self.home / "backups"

    def export_data(self) -> dict[str, Any]:
        """The export document as a dict (the REST API returns it as the response body)."""
        metadata: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()
        for info in self.inventory.snapshot():
            metadata[info.name] = _editable(info)
            seen.add(info.key)
        for name, fields in self.store.get_overrides().items():
            if name_key(name) not in seen:
                metadata[name] = fields
        return build_document(
            exported_at=utc_now(),
            current_model=self.store.get_state(host_key(CURRENT_MODEL_KEY, self.inventory.host)),
            stats=self.store.all_stats(),
            metadata=metadata,
        )

    def export_document(self, path: str | os.PathLike[str]) -> str:
        """Write the export document to ``path`` (temp file + rename). Returns a message.

        Raises FileAccessError.
        """
        target = Path(path)
        doc = self.export_data()
        try:
            write_atomically(target, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise FileAccessError(f"cannot write {target}: {exc.strerror or exc}") from None
        return f"Exported {len(doc['models'])} models to {target}"

    def import_data(self, doc: Any) -> str:
        """Validate ``doc`` whole, then apply it in one transaction. Returns a message.

        Raises InvalidDocumentError.
        """
        if not isinstance(doc, dict):
            raise InvalidDocumentError("$: expected a JSON object")
        plan = parse_document(doc)
        _one_name_per_model(self.inventory, [*plan.metadata, *(s.name for s in plan.stats)])
        base = {info.key: info for info in self.inventory.snapshot(with_overrides=False)}
        overrides: dict[str, dict[str, Any]] = {}
        for name, fields in plan.metadata.items():
            canonical = self.inventory.canonical_name(name)
            info = base.get(name_key(canonical))
            current = _editable(info) if info is not None else {}
            overrides[canonical] = {k: v for k, v in fields.items() if info is None or current.get(k) != v}
        stats = [
            ModelStats(
                self.inventory.canonical_name(s.name),
                s.usage_count,
                s.success_count,
                s.total_time,
                s.last_used,
            )
            for s in plan.stats
        ]
        backup = self._backup()
        self.store.apply_import(stats, overrides)
        return (
            f"Imported statistics for {len(plan.stats)} and metadata for {len(plan.metadata)} models "
            f"(previous state saved to {backup}; the {self.backups_keep} newest backups are kept in "
            f"{self.backups_dir})"
        )

    def _backup(self) -> Path:
        """Save the current state first, so an import never loses what was recorded here; then drop
        the backups beyond the newest ``backups_keep``."""
        stamp = utc_now().replace(":", "").replace("-", "").replace("+0000", "Z")
        target = self.backups_dir / f"{BACKUP_PREFIX}{stamp}.json"
        write_atomically(target, json.dumps(self.export_data(), indent=2, ensure_ascii=False) + "\n")
        # Stamps have a fixed width (microseconds always shown), so names sort by time.
        backups = sorted(self.backups_dir.glob(f"{BACKUP_PREFIX}*.json"), key=lambda p: p.name)
        for old in backups[: max(0, len(backups) - self.backups_keep)]:
            if old != target:
                try:
                    old.unlink()
                except OSError as exc:
                    log.warning("could not remove old backup %s: %s", old, exc.strerror or exc)
        return target

    def import_document(self, path: str | os.PathLike[str]) -> str:
        """Read and import the document at ``path``. Raises FileAccessError, InvalidDocumentError."""
        target = Path(path)
        try:
            raw = read_document(target)
        except OSError as exc:
            raise FileAccessError(f"cannot read {target}: {exc.strerror or exc}") from None
        return self.import_data(loads_document(raw))


def _editable(info: ModelInfo) -> dict[str, Any]:
    """The fields of ``info`` a document carries, as JSON values."""
    values = {k: getattr(info, k) for k in EDITABLE_FIELDS}
    values["purpose"] = info.purpose.value
    values["quantization_support"] = list(info.quantization_support)
    return values


def _one_name_per_model(inventory: Inventory, names: list[str]) -> None:
    """Two names of one catalog model (its name and an alias) in one document would overwrite each other.

    Raises InvalidDocumentError naming both.
    """
    seen: dict[str, str] = {}
    for name in dict.fromkeys(names):
        canonical = inventory.canonical_name(name)
        other = seen.setdefault(name_key(canonical), name)
        if other != name:
            raise InvalidDocumentError(f"$.models: {other!r} and {name!r} are the same model ({canonical})")
