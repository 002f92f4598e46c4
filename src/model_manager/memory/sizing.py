"""Which facts size a model: ``/api/show`` facts for an installed model, else the catalog's."""

from __future__ import annotations

from typing import Any

from ..types import ModelInfo
from ..units import MB
from .fit import ModelSizing


def sizing_of(info: ModelInfo) -> ModelSizing | None:
    """What the estimator needs for ``info``; None when nothing describes its architecture.

    The catalog's file size is preferred for a catalog model (it leaves out a separate vision projector,
    which it counts apart); an installed model the catalog lacks uses its size on disk.
    """
    entry, record = info.entry, info.record
    facts = (record.facts or {}) if record is not None else {}
    shown = facts.get("model_info") or {}
    model_info: dict[str, Any] = dict(entry.model_info) if entry is not None else {}
    model_info.update({k: v for k, v in shown.items() if v is not None})
    if not model_info.get("general.architecture"):
        return None
    caps = tuple(info.capabilities)
    if entry is not None and entry.file_size_bytes:
        return ModelSizing(model_info, entry.file_size_bytes, entry.projector_bytes, "catalog", caps)
    if record is not None and record.size_bytes:
        return ModelSizing(model_info, record.size_bytes, 0, "ollama", caps)
    if entry is not None and entry.download_size_mb:
        weights = entry.download_size_mb * MB - entry.projector_bytes
        return ModelSizing(model_info, max(weights, 1), entry.projector_bytes, "catalog download size", caps)
    return None
