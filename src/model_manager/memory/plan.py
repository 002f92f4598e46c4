"""Plan mode: the inverse question. For one model, the memory at each context from 2k to its maximum (for
each KV cache type), the largest context that fits the memory, and how many layers go to the GPU where the
model does not fit. Pure records; ``MemoryPlanner.plan`` fills them from verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..units import GIB
from .fit import Memory
from .verdict import Verdict

FIRST_PLAN_CONTEXT = 2048


def plan_contexts(limit: int, asked: int | None = None) -> list[int]:
    """2,048, 4,096, 8,192 … up to ``limit`` (the trained context), ``limit`` itself, and ``asked``."""
    contexts = []
    context = FIRST_PLAN_CONTEXT
    while context < limit:
        contexts.append(context)
        context *= 2
    contexts.append(limit)
    if asked and asked not in contexts:
        contexts.append(min(asked, limit))
    return sorted(set(contexts))


@dataclass(frozen=True)
class PlanRow:
    """One context and KV cache type: what the memory must hold there and how it fits."""

    context_length: int
    kv_cache_type: str
    footprint_bytes: int
    level: str | None
    layers_on_gpu: int | None
    layers_total: int | None
    problem: str = ""

    @classmethod
    def of(cls, verdict: Verdict) -> PlanRow:
        run, placement = verdict.run, verdict.placement
        assert run is not None and placement is not None
        return cls(
            run.context_length,
            run.requested_kv_cache_type,
            placement.needed_bytes,
            verdict.level,
            verdict.layers_on_gpu,
            verdict.layers_total,
            run.problem,
        )

    @property
    def footprint_gb(self) -> float:
        return self.footprint_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        return {
            "context_length": self.context_length,
            "kv_cache_type": self.kv_cache_type,
            "footprint_gb": round(self.footprint_gb, 2),
            "footprint_bytes": self.footprint_bytes,
            "fit": self.level,
            "layers_on_gpu": self.layers_on_gpu,
            "layers_total": self.layers_total,
            "problem": self.problem or None,
        }


@dataclass(frozen=True)
class Plan:
    """The plan for one model in one memory: the verdict at the settings asked for (Ollama's otherwise), a row
    per context and KV cache type, and per type the largest context that fits fully (0: not even 256)."""

    model: str
    memory: Memory
    verdict: Verdict
    kv_cache_types: tuple[str, ...]
    contexts: tuple[int, ...]
    rows: tuple[PlanRow, ...]
    largest_context: dict[str, int]

    def row(self, context: int, kv_cache_type: str) -> PlanRow | None:
        return next(
            (r for r in self.rows if r.context_length == context and r.kv_cache_type == kv_cache_type), None
        )

    def summary(self) -> str:
        """E.g. "Largest context that fits fully in 8.0 GB VRAM: f16 20,480 · q8_0 36,864"."""
        if not self.largest_context:
            return self.verdict.describe()
        parts = " · ".join(f"{kind} {context:,}" for kind, context in self.largest_context.items())
        return f"Largest context that fits fully in {self.memory.available_gb:.1f} GB {self.memory.word}: {parts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "memory": self.memory.to_dict(),
            "available_vram_gb": round(self.memory.available_gb, 2),
            "memory_source": self.memory.source,
            "verdict": self.verdict.to_dict(),
            "kv_cache_types": list(self.kv_cache_types),
            "contexts": list(self.contexts),
            "largest_context": dict(self.largest_context),
            "rows": [r.to_dict() for r in self.rows],
            "summary": self.summary(),
        }
