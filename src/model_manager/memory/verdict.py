"""Does a model fit here? One verdict per model, memory and settings, which every face shows.

Levels:

* ``full``    — the footprint fits with llama.cpp's margin kept free (on a machine without a GPU: it fits
  in memory);
* ``partial`` — llama.cpp's ``--fit`` runs some transformer blocks on the CPU (``layers_on_gpu`` of
  ``layers_total``);
* ``none``    — it does not fit even with the CPU's free RAM taking the rest, or Ollama cannot load it.

The verdict says at which context (and KV cache type when not f16) it was reached. When Ollama picked the
context and the model does not fit at all, Ollama retries once at the next lower tier, and so does the
verdict. Pure: the caller brings the estimates (``judge``'s ``estimate_at``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..ollama_defaults import FIT_TARGET_BYTES, fit_target_bytes, next_lower_context
from ..units import GIB
from .estimator import MemoryEstimate, largest_context
from .fit import Memory, RunSettings

FULL, PARTIAL, NONE = "full", "partial", "none"
MIN_VRAM_CONTEXT = 4096
"""``min_vram_gb`` of a model without a catalog figure: memory to run fully on the GPU at this context plus
the margin, rounded up to 0.5 GB."""


def round_up_half(gb: float) -> float:
    """Up to the next 0.5 (a hair of float noise below a step stays on it)."""
    return math.ceil(gb * 2 - 1e-9) / 2


@dataclass(frozen=True)
class Requirement:
    """``min_vram_gb`` of a model and where it comes from: ``catalog`` (the quick reference's figure, or one
    the user set), ``estimate`` (computed at 4,096 context) or ``download size`` (no architecture facts)."""

    gb: float
    source: str


@dataclass(frozen=True)
class Placement:
    """Where the footprint goes on ``memory``: what the GPU must hold, what it keeps free, and the level."""

    level: str
    needed_bytes: int
    margin_bytes: int
    projector_on_cpu: bool = False


def needs(estimate: MemoryEstimate, memory: Memory) -> tuple[int, int, bool]:
    """(bytes the memory must hold, margin kept free beside them, projector on the CPU). Ollama keeps a
    projector on the CPU when a GPU has less free than projector + 1 GiB; the fit target is then llama.cpp's
    own 1 GiB. Without a GPU: the whole footprint, no margin."""
    if memory.cpu_only:
        return estimate.cpu_only_bytes, 0, False
    if estimate.projector_bytes and memory.available_bytes < fit_target_bytes(estimate.projector_bytes):
        return estimate.total_bytes - estimate.projector_bytes, FIT_TARGET_BYTES, True
    return estimate.total_bytes, estimate.margin_bytes, False


def place(estimate: MemoryEstimate, memory: Memory) -> Placement:
    """The level of ``estimate`` on ``memory`` (host RAM is read only when it does not fit fully)."""
    needed, margin, on_cpu = needs(estimate, memory)
    if needed + margin <= memory.available_bytes:
        level = FULL
    elif memory.cpu_only:
        level = NONE
    elif estimate.cpu_only_bytes + margin <= memory.available_bytes + memory.host_available_bytes:
        level = PARTIAL
    else:
        level = NONE
    return Placement(level, needed, margin, on_cpu)


@dataclass(frozen=True)
class Verdict:
    """How one model fits in one memory at one setting: the figure, the level and the context.

    ``requirement`` is the quick reference's threshold (``compatible`` compares it with the memory);
    ``estimate`` the footprint at ``run``; ``default_context`` the context Ollama would choose here.
    ``layers_on_gpu`` and ``max_context`` (the largest context that fits fully) are worked out on request
    (``detail``), else None.
    """

    model: str
    memory: Memory
    requirement: Requirement
    run: RunSettings | None
    estimate: MemoryEstimate | None
    placement: Placement | None
    default_context: int
    layers_on_gpu: int | None = None
    layers_total: int | None = None
    max_context: int | None = None
    retried_from: int | None = None

    @property
    def compatible(self) -> bool:
        return self.requirement.gb <= round(self.memory.available_gb, 2)

    @property
    def level(self) -> str | None:
        if self.run is not None and self.run.problem:
            return NONE
        return self.placement.level if self.placement is not None else None

    @property
    def context_length(self) -> int | None:
        return self.run.context_length if self.run is not None else None

    @property
    def footprint_gb(self) -> float | None:
        """What this memory must hold: the GPU footprint, or the whole footprint without a GPU."""
        return self.placement.needed_bytes / GIB if self.placement is not None else None

    @property
    def fits_at_default(self) -> bool:
        """Fully on the GPU (or in memory) at the context Ollama would choose here."""
        return self.level == FULL and self.context_length == self.default_context

    def settings_phrase(self) -> str:
        """ "at 32,768 context" (with the KV cache type when it is not f16)."""
        if self.run is None:
            return ""
        kv = self.run.requested_kv_cache_type
        return f"at {self.run.context_length:,} context" + (f" with a {kv} KV cache" if kv != "f16" else "")

    def describe(self) -> str:
        """One sentence: the level, the figure and the context, e.g. "fits fully on the GPU at 4,096 context:
        needs 5.1 GB plus 1.0 GB kept free, of 8.0 GB"."""
        if self.run is None or self.estimate is None or self.placement is None:
            return "no architecture facts to estimate its memory from (sync once Ollama answers)"
        at, m, p = self.settings_phrase(), self.memory, self.placement
        if self.run.problem:
            return f"Ollama cannot load it {at}: {self.run.problem}"
        retry = ""
        if self.retried_from:
            retry = f"at Ollama's default {self.retried_from:,} context it runs out of memory, so Ollama retries; "
        needs = f"needs {p.needed_bytes / GIB:.1f} GB"
        if m.cpu_only:
            if p.level == FULL:
                return f"{retry}fits in memory {at} (no GPU: runs on the CPU): {needs} of {m.available_gb:.1f} GB"
            return f"{retry}does not fit {at}: {needs} of memory, {m.available_gb:.1f} GB available"
        needs += f" plus {p.margin_bytes / GIB:.1f} GB kept free, of {m.available_gb:.1f} GB"
        if p.level == FULL:
            text = f"{retry}fits fully on the GPU {at}: {needs}"
        elif p.level == PARTIAL:
            layers = (
                f"; runs with {self.layers_on_gpu} of {self.layers_total} layers on the GPU, the rest on the CPU"
                if self.layers_total
                else "; runs partly on the CPU"
            )
            text = f"{retry}fits partially {at}: {needs}{layers}"
            if self.max_context:
                text += f"; fits fully up to {self.max_context:,} context"
        else:
            text = (
                f"{retry}does not fit {at}: {needs}, and {m.host_available_gb:.1f} GB of free RAM cannot take "
                "the rest"
            )
        if self.estimate.expert_bytes:
            text += f" ({self.estimate.expert_bytes / GIB:.1f} GB of it expert weights, all resident)"
        return text

    def message(self) -> str:
        """The quick reference's compatibility message, with the verdict after it."""
        word, avail = self.memory.word, self.memory.available_gb
        needs = f"{self.model} needs {self.requirement.gb:.1f} GB {word}"
        head = (
            f"Compatible: {needs}, {avail:.1f} GB available"
            if self.compatible
            else f"Insufficient {word}: {needs}, only {avail:.1f} GB available"
        )
        return f"{head}; {self.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "fit": self.level,
            "compatible": self.compatible,
            "required_vram_gb": self.requirement.gb,
            "required_source": self.requirement.source,
            "available_vram_gb": round(self.memory.available_gb, 2),
            "memory": self.memory.to_dict(),
            "memory_source": self.memory.source,
            "context_length": self.context_length,
            "default_context": self.default_context,
            "fits_at_default": self.fits_at_default,
            "kv_cache_type": self.run.requested_kv_cache_type if self.run else None,
            "flash_attention": self.run.flash_attention if self.run else None,
            "num_batch": self.run.num_batch if self.run else None,
            "estimated_vram_gb": None if self.footprint_gb is None else round(self.footprint_gb, 2),
            "margin_gb": round(self.placement.margin_bytes / GIB, 2) if self.placement else None,
            "layers_on_gpu": self.layers_on_gpu,
            "layers_total": self.layers_total,
            "max_context": self.max_context,
            "retried_from": self.retried_from,
            "problem": (self.run.problem or None) if self.run else None,
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "summary": self.describe(),
        }


EstimateAt = Callable[[RunSettings], MemoryEstimate]
LayersAt = Callable[[RunSettings, int], tuple[int, int]]


def judge(
    model: str,
    memory: Memory,
    requirement: Requirement,
    run: RunSettings | None,
    *,
    estimate_at: EstimateAt,
    run_at: Callable[[int], RunSettings],
    layers_at: LayersAt,
    context_limit: int,
    default_context: int,
    layers_total: int = 0,
    detail: bool = False,
) -> Verdict:
    """The verdict for one model. ``run`` is None when nothing describes its architecture; ``run_at(c)``
    gives Ollama's settings at context ``c`` (for the retry and the largest context); ``layers_at(run,
    room)`` the blocks that fit in ``room`` bytes of GPU memory, of ``layers_total``."""
    if run is None:
        return Verdict(model, memory, requirement, None, None, None, default_context)
    est = estimate_at(run)
    placement = place(est, memory)
    retried = None
    lower = next_lower_context(run.context_length) if run.automatic_context else None
    if placement.level == NONE and not run.problem and lower is not None:
        retried, run = run.context_length, replace(run_at(lower), automatic_context=True)
        est = estimate_at(run)
        placement = place(est, memory)
    verdict = Verdict(model, memory, requirement, run, est, placement, default_context, retried_from=retried)
    if not detail or run.problem:
        return verdict
    room = memory.available_bytes - placement.margin_bytes
    on_gpu: int | None = None
    if not memory.cpu_only and layers_total:
        on_gpu = {FULL: layers_total, NONE: 0}.get(placement.level)
        if on_gpu is None:
            on_gpu = layers_at(run, room)[0]

    def footprint(context: int) -> int:
        return needs(estimate_at(run_at(context)), memory)[0]

    best = largest_context(footprint, room, context_limit)
    return replace(
        verdict,
        layers_on_gpu=on_gpu,
        layers_total=layers_total if on_gpu is not None else None,
        max_context=best,
    )
