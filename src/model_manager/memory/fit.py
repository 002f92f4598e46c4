"""Does a model fit here? The memory estimate at Ollama's settings, and a fit level against the memory
the machine has.

Levels:

* ``full``    — the whole estimate fits in GPU memory;
* ``partial`` — it runs with some transformer blocks on the CPU (``layers_on_gpu`` of ``layers_total``);
* ``none``    — it does not fit even with the CPU's free RAM taking the rest.

Pure: the caller brings the facts (``ModelSizing``), the runtime settings and the memory figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ollama_defaults import RuntimeSettings
from ..units import GIB
from .estimator import MemoryEstimate, estimate_memory, layers_on_gpu, max_context_for

FULL, PARTIAL, NONE = "full", "partial", "none"


@dataclass(frozen=True)
class ModelSizing:
    """What sizes one model in memory: its architecture facts (``/api/show`` ``model_info`` shape) and the
    bytes of its weights and of a separate vision projector."""

    model_info: Mapping[str, Any]
    weights_bytes: int
    projector_bytes: int = 0
    source: str = "catalog"

    @property
    def architecture(self) -> str:
        return str(self.model_info.get("general.architecture") or "")

    @property
    def native_context(self) -> int:
        value = self.model_info.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) and value > 0 else 0


@dataclass(frozen=True)
class RunSettings:
    """The settings one model would run with."""

    context_length: int
    kv_cache_type: str
    num_parallel: int
    flash_attention: bool


def run_settings(
    sizing: ModelSizing,
    runtime: RuntimeSettings,
    *,
    context_length: int | None = None,
    kv_cache_type: str | None = None,
    num_parallel: int | None = None,
) -> RunSettings:
    """Ollama's settings for this model, with the caller's overrides.

    The context is capped at the model's trained length, as Ollama does. Asking for a quantised KV cache
    implies flash attention, without which Ollama would run the cache as f16.
    """
    context = context_length or runtime.context_length
    if sizing.native_context:
        context = min(context, sizing.native_context)
    flash = runtime.flash_attention_for(sizing.architecture)
    if kv_cache_type is not None:
        kv = kv_cache_type.strip().lower()
        flash = flash or kv != "f16"
    else:
        kv = runtime.kv_cache_type_for(sizing.architecture)
    return RunSettings(context, kv, num_parallel or runtime.num_parallel, flash)


def estimate(sizing: ModelSizing, run: RunSettings) -> MemoryEstimate:
    """The estimate for ``sizing`` at ``run``. Raises ValueError for settings the estimator refuses."""
    return estimate_memory(
        sizing.model_info,
        weights_bytes=sizing.weights_bytes,
        context_length=run.context_length,
        kv_cache_type=run.kv_cache_type,
        num_parallel=run.num_parallel,
        flash_attention=run.flash_attention,
        projector_bytes=sizing.projector_bytes,
    )


@dataclass(frozen=True)
class Fit:
    """How ``estimate`` fits in ``vram_bytes`` of GPU memory plus ``ram_bytes`` of host RAM."""

    level: str
    layers_on_gpu: int
    layers_total: int
    estimate: MemoryEstimate
    vram_bytes: int
    ram_bytes: int
    max_context: int

    def describe(self) -> str:
        """One line, e.g. "fits fully: needs 5.2 GiB of 8.0 at 4,096 context"."""
        needs = f"needs {self.estimate.total_gib:.1f} GiB of {self.vram_bytes / GIB:.1f}"
        at = f"at {self.estimate.context_length:,} context"
        if self.level == FULL:
            return f"fits fully: {needs} {at}"
        if self.level == PARTIAL:
            return (
                f"fits partially: {needs} {at}; runs with {self.layers_on_gpu} of {self.layers_total} "
                f"layers on the GPU, the rest on the CPU"
            )
        return (
            f"does not fit: {needs} {at}, and {self.ram_bytes / GIB:.1f} GiB of free RAM cannot take the rest"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fit": self.level,
            "layers_on_gpu": self.layers_on_gpu,
            "layers_total": self.layers_total,
            "max_context": self.max_context,
            "estimate": self.estimate.to_dict(),
            "summary": self.describe(),
        }


def max_context(sizing: ModelSizing, run: RunSettings, vram_bytes: int) -> int:
    """The largest context (multiple of 256, at most the trained length) that fits fully in ``vram_bytes``."""
    return max_context_for(
        sizing.model_info,
        weights_bytes=sizing.weights_bytes,
        memory_bytes=vram_bytes,
        kv_cache_type=run.kv_cache_type,
        num_parallel=run.num_parallel,
        flash_attention=run.flash_attention,
        projector_bytes=sizing.projector_bytes,
    )


def assess(sizing: ModelSizing, run: RunSettings, *, vram_bytes: int, ram_bytes: int) -> Fit:
    """The fit level of ``sizing`` at ``run`` given the memory there is."""
    est = estimate(sizing, run)
    kwargs: dict[str, Any] = {
        "kv_cache_type": run.kv_cache_type,
        "num_parallel": run.num_parallel,
        "flash_attention": run.flash_attention,
        "projector_bytes": sizing.projector_bytes,
    }
    on_gpu, total = layers_on_gpu(
        sizing.model_info, sizing.weights_bytes, vram_bytes, context_length=run.context_length, **kwargs
    )
    max_ctx = max_context_for(
        sizing.model_info, weights_bytes=sizing.weights_bytes, memory_bytes=vram_bytes, **kwargs
    )
    if est.total_bytes <= vram_bytes:
        level = FULL
    elif est.total_bytes <= vram_bytes + ram_bytes:
        level = PARTIAL
    else:
        level = NONE
    return Fit(level, on_gpu if level != NONE else 0, total, est, vram_bytes, ram_bytes, max_ctx)
