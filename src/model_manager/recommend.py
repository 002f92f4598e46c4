"""Answers to "which model?" and "does it fit?": the records, and the ranking rule (pure functions over
metadata dicts that carry ``required_vram_gb``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fit import Fit

PRIORITIES = ("speed", "balanced", "quality")


@dataclass(frozen=True)
class Recommendation:
    """The chosen model (or None), why, and every candidate considered, best first."""

    model: str | None
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reason": self.reason, "candidates": self.candidates}


def rank(candidates: list[dict[str, Any]], priority: str) -> list[dict[str, Any]]:
    """Best first.

    ``speed``: measured speed first (lowest average inference time among models with recorded usage),
    then the fewest parameters. ``balanced`` and ``quality``: the most parameters, then the largest
    requirement. Installed models win ties; the name breaks the rest.
    """
    if priority == "speed":
        return sorted(
            candidates,
            key=lambda m: (
                0 if m["usage_count"] else 1,
                m["avg_inference_time"] if m["usage_count"] else m["parameter_count"],
                0 if m["installed"] else 1,
                m["name"],
            ),
        )
    return sorted(
        candidates,
        key=lambda m: (-m["parameter_count"], -m["required_vram_gb"], 0 if m["installed"] else 1, m["name"]),
    )


def reason(best: dict[str, Any], priority: str, available_gb: float) -> str:
    """Why ``best`` was picked, in one sentence."""
    if priority == "speed" and best["usage_count"]:
        why = f"fastest measured ({best['avg_inference_time']:.2f} s average)"
    else:
        why = "smallest" if priority == "speed" else "most capable"
    context = f"; up to {best['max_context']:,} tokens of context fit" if best.get("max_context") else ""
    return (
        f"{best['name']}: {why} {priority} model that fits in {available_gb:.1f} GB "
        f"(needs {best['required_vram_gb']:.1f} GB{context})"
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
