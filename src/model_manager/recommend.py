"""Answers to "which model?" and "does it fit?": the records, and the ranking rule (pure functions over
candidates that carry the memory each needs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .types import ModelInfo, Priority

if TYPE_CHECKING:
    from .memory.fit import Fit


@dataclass(frozen=True)
class Candidate:
    """A model considered for a recommendation: it fits, needing ``required_vram_gb``."""

    info: ModelInfo
    required_vram_gb: float
    max_context: int | None

    def to_dict(self) -> dict[str, Any]:
        s = self.info.stats
        return {
            "name": self.info.name,
            "required_vram_gb": self.required_vram_gb,
            "max_context": self.max_context,
            "installed": self.info.installed,
            "parameter_count": self.info.parameter_count,
            "avg_inference_time": s.avg_inference_time,
            "usage_count": s.usage_count,
        }


@dataclass(frozen=True)
class Recommendation:
    """The chosen model (or None), why, and every candidate considered, best first."""

    model: str | None
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": self.reason,
            "candidates": [c.to_dict() for c in self.candidates],
        }


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


def reason(best: Candidate, priority: Priority, available_gb: float) -> str:
    """Why ``best`` was picked, in one sentence."""
    stats = best.info.stats
    if priority is Priority.SPEED and stats.usage_count:
        why = f"fastest measured ({stats.avg_inference_time:.2f} s average)"
    else:
        why = "smallest" if priority is Priority.SPEED else "most capable"
    context = f"; up to {best.max_context:,} tokens of context fit" if best.max_context else ""
    return (
        f"{best.info.name}: {why} {priority.value} model that fits in {available_gb:.1f} GB "
        f"(needs {best.required_vram_gb:.1f} GB{context})"
    )


@dataclass(frozen=True)
class Compatibility:
    """The answer to "does this model fit in this much VRAM?", with the estimate's fit level."""

    model: str
    compatible: bool
    required_vram_gb: float
    available_vram_gb: float
    message: str
    fit: Fit | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "compatible": self.compatible,
            "required_vram_gb": self.required_vram_gb,
            "available_vram_gb": self.available_vram_gb,
            "message": self.message,
            "fit": None,
        }
        if self.fit is not None:
            out.update(self.fit.to_dict())
        return out
