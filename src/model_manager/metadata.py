"""Metadata dicts (the seed's "Model Metadata Fields" and ours) and the facts the estimator needs, built
from a catalog entry or an installed model's record. Pure: the manager brings the inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .catalog import infer_purpose, parameters_from_size
from .exchange import EDITABLE_FIELDS
from .store import ModelRecord
from .types import CatalogEntry, ModelStats

T = TypeVar("T")

if TYPE_CHECKING:
    from .fit import ModelShape


def lookup(mapping: Mapping[str, T], name: str) -> T | None:
    """``mapping[name]`` ignoring case, as model names are compared."""
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    return next((value for key, value in mapping.items() if key.lower() == lowered), None)


def entry_metadata(entry: CatalogEntry, installed_tag: str | None) -> dict[str, Any]:
    """The metadata of a catalog model (without usage figures)."""
    return {
        "name": entry.name,
        "size": entry.size,
        "purpose": entry.purpose.value,
        "description": entry.description,
        "recommended_use": entry.recommended_use,
        "min_vram_gb": entry.min_vram_gb,
        "quantization_support": list(entry.quantization_support),
        "download_size_mb": entry.download_size_mb,
        "installed": installed_tag is not None,
        "ollama_tag": installed_tag or entry.ollama_tag,
        "capabilities": list(entry.capabilities),
        "family": entry.family,
        "quantization": entry.quantization,
        "parameter_count": entry.parameter_count,
        "source": "catalog" if entry.source == "builtin" else "user_catalog",
    }


def record_metadata(record: ModelRecord) -> dict[str, Any]:
    """The metadata of an installed model the catalog lacks, from ``/api/tags`` and ``/api/show``."""
    facts = dict(record.facts or {})
    info = facts.get("model_info") or {}
    capabilities = list(facts.get("capabilities") or ["completion"])
    parameter_size = str(facts.get("parameter_size") or "")
    params = float(info.get("general.parameter_count") or parameters_from_size(parameter_size))
    family = str(facts.get("family") or "")
    quant = str(facts.get("quantization_level") or "")
    return {
        "name": record.name,
        "size": parameter_size,
        "purpose": infer_purpose(params, capabilities).value,
        "description": f"{family or 'Unknown family'} {parameter_size} {quant}".strip()
        + ", installed in Ollama; not in the catalog",
        "recommended_use": "",
        "min_vram_gb": None,
        "quantization_support": [quant] if quant else [],
        "download_size_mb": round(record.size_bytes / 1e6),
        "installed": record.installed,
        "ollama_tag": record.name,
        "capabilities": capabilities,
        "family": family,
        "quantization": quant,
        "parameter_count": int(params),
        "source": "ollama",
    }


def with_usage(
    meta: dict[str, Any], stats: ModelStats | None, override: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``meta`` with the user's overrides applied and the usage figures filled in."""
    meta.update({k: v for k, v in (override or {}).items() if k in EDITABLE_FIELDS})
    s = stats or ModelStats(meta["name"])
    meta.update(
        last_used=s.last_used,
        usage_count=s.usage_count,
        avg_inference_time=s.avg_inference_time,
        success_rate=s.success_rate,
    )
    return meta


def stats_dict(s: ModelStats, installed: bool, name: str | None = None) -> dict[str, Any]:
    """The seed's "Statistics Fields"."""
    return {
        "name": name or s.name,
        "usage_count": s.usage_count,
        "last_used": s.last_used,
        "avg_inference_time": s.avg_inference_time,
        "success_rate": s.success_rate,
        "installed": installed,
    }


def model_shape(entry: CatalogEntry | None, record: ModelRecord | None) -> ModelShape | None:
    """What the estimator needs: ``/api/show`` facts for an installed model, else the catalog's.

    The catalog's file size is preferred for a catalog model (it leaves out a separate vision projector,
    which it counts apart); an installed model the catalog lacks uses its size on disk. None when nothing
    describes the architecture.
    """
    from .fit import ModelShape

    facts = (record.facts or {}) if record is not None else {}
    shown = facts.get("model_info") or {}
    info: dict[str, Any] = dict(entry.model_info) if entry is not None else {}
    info.update({k: v for k, v in shown.items() if v is not None})
    if not info.get("general.architecture"):
        return None
    if entry is not None and entry.file_size_bytes:
        return ModelShape(info, entry.file_size_bytes, entry.projector_bytes, "catalog")
    if record is not None and record.size_bytes:
        return ModelShape(info, record.size_bytes, 0, "ollama")
    if entry is not None and entry.download_size_mb:
        weights = entry.download_size_mb * 1_000_000 - entry.projector_bytes
        return ModelShape(info, max(weights, 1), entry.projector_bytes, "catalog download size")
    return None
