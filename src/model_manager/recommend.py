"""Recommendation ranking: pure functions over metadata dicts that carry ``required_vram_gb``."""

from __future__ import annotations

from typing import Any

PRIORITIES = ("speed", "balanced", "quality")


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
