"""Answers to "which model?" and "does it fit?": the records, the ranking rules and the reasons, as pure
functions over candidates that carry their verdict, their speed here and their quality standing
(``recommender.Recommender`` builds them).

The rules (docs/recommendations.md):

* **Fit first.** Candidates that fit fully at the context Ollama would use in this memory come first; a
  partial fit is recommended only when nothing fits fully, and its reason says so.
* **quality** ranks by quality standing (``quality.Standings``: within one benchmark set the same order as
  the score; across sets, the share of the catalog's models on the same set that score lower).
* **balanced** ranks by the standing weighed by speed: times ``min(1, tokens/s ÷ BALANCED_SPEED_TPS)``, so
  only a model slower than that loses, in proportion.
* **speed** ranks by generation speed here (measured when a benchmark or recorded use has timed it, else
  estimated from memory bandwidth), first among the candidates outside the bottom ``SPEED_MIN_STANDING`` of
  their quality set: the very smallest models (SmolLM2 135M, Gemma 3 270M) are made to be fine-tuned for one
  task and answer open requests poorly, so the fastest is the fastest of the usable ones.
* Then parameter counts, then installed models, then the name: they break ties only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .quality import is_estimate
from .types import Capability, ModelInfo, Priority

if TYPE_CHECKING:
    from .memory.fit import Memory
    from .memory.verdict import Verdict
    from .speed import Speed

SPEED_MIN_STANDING = 0.25
"""The quality standing below which ``speed`` ranks a model after every other that fits as well: the bottom
quarter of its benchmark set."""

BALANCED_SPEED_TPS = 20.0
"""Tokens per second below which ``balanced`` discounts a model's standing in proportion (a 200-token
critique of a photo in ten seconds)."""


@dataclass(frozen=True)
class Candidate:
    """A model considered for a recommendation: it is compatible, needing ``required_vram_gb``; ``verdict``
    is the same verdict ``check`` gives it in the same memory, ``speed`` its generation speed here and
    ``standing`` its quality standing (None without a score)."""

    info: ModelInfo
    required_vram_gb: float
    max_context: int | None
    verdict: Verdict | None = None
    speed: Speed | None = None
    standing: float | None = None

    @property
    def fits_at_default(self) -> bool:
        return self.verdict is not None and self.verdict.fits_at_default

    @property
    def tokens_per_second(self) -> float | None:
        return self.speed.tokens_per_second if self.speed is not None else None

    @property
    def usable_for_speed(self) -> bool:
        """Outside the bottom quarter of its quality set (an unknown standing is not counted against it)."""
        return self.standing is None or self.standing >= SPEED_MIN_STANDING

    @property
    def balance(self) -> float | None:
        """The standing weighed by speed (``balanced``); an unknown speed is not counted against it."""
        if self.standing is None:
            return None
        tps = self.tokens_per_second
        return self.standing * (1.0 if tps is None else min(1.0, tps / BALANCED_SPEED_TPS))

    def to_dict(self) -> dict[str, Any]:
        s, info = self.info.stats, self.info
        out: dict[str, Any] = {
            "name": info.name,
            "required_vram_gb": self.required_vram_gb,
            "max_context": self.max_context,
            "installed": info.installed,
            "parameter_count": info.parameter_count,
            "capabilities": list(info.capabilities),
            "quality_score": info.quality_score,
            "quality_benchmark": info.quality_benchmark,
            "quality_estimated": is_estimate(info.quality_source),
            "quality_standing": None if self.standing is None else round(self.standing, 3),
            "tokens_per_second": self.tokens_per_second,
            "speed_source": self.speed.source if self.speed is not None else None,
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
    priority: Priority = Priority.BALANCED
    capability: Capability | None = None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        out: dict[str, Any] = {
            "priority": self.priority.value,
            "model": self.model,
            "reason": self.reason,
            "capability": self.capability.value if self.capability else None,
            "fits_fully": best.fits_at_default if best is not None else None,
            "candidates": [c.to_dict() for c in self.candidates],
        }
        if self.memory is not None:
            out.update(
                available_vram_gb=round(self.memory.available_gb, 2),
                memory_source=self.memory.source,
                memory=self.memory.to_dict(),
            )
        return out


def _low_first(value: float | None) -> float:
    return -value if value is not None else 1.0


def rank(candidates: Iterable[Candidate], priority: Priority) -> list[Candidate]:
    """Best first: those that fit fully at Ollama's default context, then the rest, each group by the
    priority's rule (the module's docstring; for ``speed``, the usable ones first); parameter counts,
    installed models and names break ties."""

    def measure(c: Candidate) -> float | None:
        if priority is Priority.SPEED:
            return c.tokens_per_second
        return c.balance if priority is Priority.BALANCED else c.standing

    return sorted(
        candidates,
        key=lambda c: (
            0 if c.fits_at_default else 1,
            0 if priority is not Priority.SPEED or c.usable_for_speed else 1,
            _low_first(measure(c)),
            _low_first(c.standing),
            -c.info.parameter_count,
            0 if c.info.installed else 1,
            c.info.name,
        ),
    )


# --- reasons ---------------------------------------------------------------------------------------


def gb_text(gb: float) -> str:
    """A memory figure in a sentence: "12", "7.5" (never "-0")."""
    return f"{gb + 0.0:.1f}".removesuffix(".0")


def speed_text(speed: Speed | None) -> str:
    """ "~42.1 tok/s estimated", "38.4 tok/s measured here", or "speed unknown"."""
    if speed is None:
        return "speed unknown"
    if speed.source == "measured":
        return f"{speed.tokens_per_second:g} tok/s measured here"
    return f"~{speed.tokens_per_second:g} tok/s estimated"


def _subject(capability: Capability | None) -> str:
    if capability is None:
        return "quality score"
    return "vision score" if capability is Capability.VISION else f"score with {capability.value}"


def _score(c: Candidate, mixed: bool) -> str:
    """The score, its set, whether it is an estimate, and (when sets were mixed) its standing."""
    info = c.info
    if info.quality_score is None:
        return "no score"
    text = f"{info.quality_score:g}, {info.quality_benchmark}"
    if is_estimate(info.quality_source):
        text += ", an estimate"
    if mixed and c.standing is not None:
        text += f"; above {c.standing:.0%} of the catalog's models on that set"
    return text


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


def reason(
    best: Candidate,
    priority: Priority,
    available_gb: float,
    capability: Capability | None = None,
    *,
    mixed: bool = False,
    passed_over: bool = False,
) -> str:
    """Why ``best`` was picked, in one sentence: its score, its speed, its fit and the context. ``mixed``:
    the candidates were on more than one benchmark set, so their standings were compared; ``passed_over``:
    a faster candidate that fits as well stood in the bottom quarter for quality (``speed``)."""
    subject, speed = _subject(capability), speed_text(best.speed)
    if priority is Priority.SPEED:
        seeing = f" {capability.value}" if capability else ""
        usable = " outside the bottom quarter for quality" if passed_over else ""
        head, tail = f"fastest{seeing} model{usable} ({speed})", f"; {subject} ({_score(best, mixed)})"
    elif priority is Priority.BALANCED:
        head, tail = f"best balance of {subject} ({_score(best, mixed)}) and speed ({speed})", ""
    else:
        head, tail = f"best {subject} ({_score(best, mixed)})", f"; {speed}"
    name, gb, v = best.info.name, gb_text(available_gb), best.verdict
    if v is None or v.level is None:
        return f"{name}: {head}; no architecture facts to judge its fit in {gb} GB{tail}"
    if best.fits_at_default:
        return f"{name}: {head} that fits fully in {gb} GB {v.settings_phrase()}{tail}"
    nothing = f"nothing fits fully in {gb} GB at Ollama's default {v.default_context:,} context"
    return f"{name}: {nothing}; {head} of those that fit partly: {context_clause(best)}{tail}"


def nothing_reason(priority: Priority, capability: Capability | None, available_gb: float) -> str:
    """Why there is no recommendation (the quick reference's answer is then None)."""
    if capability is Capability.EMBEDDING:
        return (
            f"no {priority.value} model has the embedding capability: embedding models are of the "
            "specialized purpose (list them with purpose specialized)"
        )
    what = f"{capability.value} {priority.value}" if capability else priority.value
    return f"no {what} model in the catalog fits in {available_gb:.1f} GB"


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
