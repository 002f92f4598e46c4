"""Answers to "which model?" and "does it fit?": the records, the ranking rule (pure functions over
candidates that carry the memory each needs), and how a candidate's fit orders and explains it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .types import ModelInfo, Priority

if TYPE_CHECKING:
    from .memory.fit import Memory
    from .memory.verdict import Verdict


@dataclass(frozen=True)
class Candidate:
    """A model considered for a recommendation: it is compatible, needing ``required_vram_gb``; ``verdict``
    is the same verdict ``check`` gives it in the same memory."""

    info: ModelInfo
    required_vram_gb: float
    max_context: int | None
    verdict: Verdict | None = None

    @property
    def fits_at_default(self) -> bool:
        return self.verdict is not None and self.verdict.fits_at_default

    def to_dict(self) -> dict[str, Any]:
        s = self.info.stats
        out: dict[str, Any] = {
            "name": self.info.name,
            "required_vram_gb": self.required_vram_gb,
            "max_context": self.max_context,
            "installed": self.info.installed,
            "parameter_count": self.info.parameter_count,
            "avg_inference_time": s.avg_inference_time,
            "usage_count": s.usage_count,
        }
        if self.verdict is not None:
            v = self.verdict.to_dict()
            out.update({k: v[k] for k in _CANDIDATE_FIT_FIELDS})
        return out


_CANDIDATE_FIT_FIELDS = (
    "fit",
    "context_length",
    "default_context",
    "fits_at_default",
    "kv_cache_type",
    "estimated_vram_gb",
    "layers_on_gpu",
    "layers_total",
    "summary",
)


@dataclass(frozen=True)
class Recommendation:
    """The chosen model (or None), why, and every candidate considered, best first."""

    model: str | None
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())
    memory: Memory | None = None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "reason": self.reason,
            "candidates": [c.to_dict() for c in self.candidates],
        }
        if self.memory is not None:
            out.update(
                available_vram_gb=round(self.memory.available_gb, 2),
                memory_source=self.memory.source,
                memory=self.memory.to_dict(),
            )
        return out


def rank(candidates: Iterable[Candidate], priority: Priority) -> list[Candidate]:
    """Best first.

    ``speed``: measured speed first (lowest average inference time among models with recorded usage),
    then the fewest parameters. ``balanced`` and ``quality``: the most parameters, then the largest
    requirement. Installed models win ties; the name breaks the rest.
    """
    if priority is Priority.SPEED:
        return sorted(
            candidates,
            key=lambda c: (
                0 if c.info.stats.usage_count else 1,
                c.info.stats.avg_inference_time if c.info.stats.usage_count else c.info.parameter_count,
                0 if c.info.installed else 1,
                c.info.name,
            ),
        )
    return sorted(
        candidates,
        key=lambda c: (
            -c.info.parameter_count,
            -c.required_vram_gb,
            0 if c.info.installed else 1,
            c.info.name,
        ),
    )


def prefer_full_fit(ranked: Iterable[Candidate]) -> list[Candidate]:
    """``ranked`` with the candidates that fit fully at Ollama's default context first, each group in its
    ranked order: a model that would run partly on the CPU at the default is offered only after them."""
    return sorted(ranked, key=lambda c: 0 if c.fits_at_default else 1)


def context_clause(candidate: Candidate) -> str:
    """At which context the candidate fits: at Ollama's default, or only below it (and then how far)."""
    v = candidate.verdict
    if v is None or v.level is None or v.context_length is None:
        return ""
    kv = (
        f" with a {v.run.requested_kv_cache_type} KV cache"
        if v.run and v.run.requested_kv_cache_type != "f16"
        else ""
    )
    if v.fits_at_default:
        return f"fits fully at {v.context_length:,} context{kv}, Ollama's default here"
    if v.max_context:
        return (
            f"fits fully only up to {v.max_context:,} context{kv}, below Ollama's default {v.default_context:,} "
            f"here, where it {_level_words(v)}"
        )
    return f"does not fit fully even at 256 context{kv}; at {v.context_length:,} it {_level_words(v)}"


def _level_words(v: Verdict) -> str:
    if v.level == "partial":
        return "runs partly on the CPU"
    return "does not fit" if v.level == "none" else "fits fully"


def reason(best: Candidate, priority: Priority, available_gb: float) -> str:
    """Why ``best`` was picked, in one sentence, with the context it fits at."""
    stats = best.info.stats
    if priority is Priority.SPEED and stats.usage_count:
        why = f"fastest measured ({stats.avg_inference_time:.2f} s average)"
    else:
        why = "smallest" if priority is Priority.SPEED else "most capable"
    clause = context_clause(best)
    context = f"; {clause}" if clause else ""
    return (
        f"{best.info.name}: {why} {priority.value} model that fits in {available_gb:.1f} GB "
        f"(needs {best.required_vram_gb:.1f} GB{context})"
    )


@dataclass(frozen=True)
class Compatibility:
    """The answer to "does this model fit in this much VRAM?": the quick reference's fields, from the
    model's verdict (its fit level, the context and the estimate)."""

    model: str
    compatible: bool
    required_vram_gb: float
    available_vram_gb: float
    message: str
    fit: Verdict | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fit": None}
        if self.fit is not None:
            out.update(self.fit.to_dict())
        out.update(
            model=self.model,
            compatible=self.compatible,
            required_vram_gb=self.required_vram_gb,
            available_vram_gb=self.available_vram_gb,
            message=self.message,
        )
        return out
