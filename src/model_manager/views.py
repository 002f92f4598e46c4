"""The dicts the outside world sees: the quick reference's "Model Metadata Fields" and ours, built from
one ``ModelInfo`` record. The REST API, the CLI's ``--json`` and the quick-reference methods all call
``model_dict``, so the three faces show the same fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import ModelInfo

if TYPE_CHECKING:
    from .memory.verdict import Verdict
    from .speed import Speed


_NOT_IN_FIT = frozenset({"estimate", "estimated_vram_gb", "required_vram_gb", "required_source"})


def model_dict(info: ModelInfo, verdict: Verdict, speed: Speed | None = None, **extra: Any) -> dict[str, Any]:
    """The metadata dict of ``info`` with its verdict (``min_vram_gb``: the quick reference's figure, else
    computed; the estimate at the settings Ollama would use; how it fits in the memory judged) and its
    generation speed here (measured, or estimated from memory bandwidth; None for embedding models)."""
    s = info.stats
    estimate = verdict.estimate
    judged = verdict.to_dict()
    return {
        "name": info.name,
        "size": info.size,
        "purpose": info.purpose.value,
        "description": info.description,
        "recommended_use": info.recommended_use,
        "min_vram_gb": verdict.requirement.gb,
        "min_vram_source": verdict.requirement.source,
        "required_vram_gb": verdict.requirement.gb,
        "quantization_support": list(info.quantization_support),
        "download_size_mb": info.download_size_mb,
        "installed": info.installed,
        "ollama_tag": info.ollama_tag,
        "capabilities": list(info.capabilities),
        "family": info.family,
        "quantization": info.quantization,
        "parameter_count": info.parameter_count,
        "source": info.source,
        "last_used": s.last_used,
        "usage_count": s.usage_count,
        "avg_inference_time": s.avg_inference_time,
        "success_rate": s.success_rate,
        "estimated_vram_gb": judged["estimated_vram_gb"],
        "memory_estimate": estimate.to_dict() if estimate else None,
        "quality_score": info.quality_score,
        "quality_source": info.quality_source,
        "quality_benchmark": info.quality_benchmark,
        "tokens_per_second": speed.tokens_per_second if speed else None,
        "speed_source": speed.source if speed else None,
        "speed_basis": speed.basis if speed else None,
        "fit": {k: v for k, v in judged.items() if k not in _NOT_IN_FIT},
        **extra,
    }
