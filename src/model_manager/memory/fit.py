"""The settings Ollama would run one model with on one machine, and the memory it is judged against.

Pure: the caller brings the facts (``ModelSizing``), Ollama's settings from its environment
(``ollama_defaults.RuntimeSettings``) and the memory (``Memory``); every rule comes from
``ollama_defaults``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..ollama_defaults import (
    CONSTRAINED_CUDA_BYTES,
    DEFAULT_KV_CACHE_TYPE,
    FA_OFF,
    MIN_CONTEXT_LENGTH,
    VISION_MIN_CONTEXT_LENGTH,
    Device,
    RuntimeSettings,
    automatic_batch,
    flash_attention_enabled,
    flash_attention_mode,
    kv_cache_problem,
    num_parallel_for,
    predicted_server_bytes,
)
from ..units import GIB
from .estimator import MemoryEstimate, estimate_memory, layers_on_gpu
from .hparams import ENCODER_ARCHITECTURES

DETECTED, OVERRIDE, ARGUMENT = "detected", "override", "argument"


@dataclass(frozen=True)
class ModelSizing:
    """What sizes one model in memory: its architecture facts (``/api/show`` ``model_info`` shape), the
    bytes of its weights and of a separate vision projector, and its capabilities."""

    model_info: Mapping[str, Any]
    weights_bytes: int
    projector_bytes: int = 0
    source: str = "catalog"
    capabilities: tuple[str, ...] = ("completion",)

    @property
    def architecture(self) -> str:
        return str(self.model_info.get("general.architecture") or "")

    def _int(self, key: str) -> int:
        value = self.model_info.get(f"{self.architecture}.{key}")
        return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    @property
    def native_context(self) -> int:
        return self._int("context_length")

    @property
    def embedding(self) -> bool:
        """An embedding model (no completion capability, or an encoder architecture)."""
        return "completion" not in self.capabilities or self.architecture in ENCODER_ARCHITECTURES

    @property
    def vision(self) -> bool:
        return "vision" in self.capabilities or self.projector_bytes > 0

    def predicted_bytes(self, context: int) -> int:
        """Ollama's rough prediction of the load (``PredictServerVRAM``) that its batch step-down uses."""
        heads = self._int("attention.head_count")
        return predicted_server_bytes(
            self.weights_bytes + self.projector_bytes,
            self._int("block_count"),
            self._int("attention.head_count_kv") or heads,
            self._int("embedding_length"),
            heads,
            context,
        )


@dataclass(frozen=True)
class Memory:
    """The memory a model is judged against.

    ``available_bytes`` is GPU memory a model can use now (GPU detection's usable figure: free less the
    driver's reserve) or, on a machine without a GPU, available RAM; ``source`` says where it came from
    (``detected``, ``override`` for ``MODEL_MANAGER_VRAM_GB`` or a figure in the settings, ``argument`` for a
    figure passed in). ``total_bytes`` picks Ollama's default context (its GPUs' total less
    ``OLLAMA_GPU_OVERHEAD``; 0 without a GPU). ``devices`` are the detected GPUs, for the flash-attention and
    batch rules; a figure given by hand stands for one GPU that supports flash attention.
    """

    available_bytes: int
    source: str = ARGUMENT
    backend: str = "gpu"
    total_bytes: int = 0
    host_bytes: int | None = None
    devices: tuple[Device, ...] = ()
    origin: str = ""
    """For an override, where it was set (``MODEL_MANAGER_VRAM_GB``, or the settings)."""
    host_reader: Callable[[], int] | None = field(default=None, compare=False, repr=False)
    """Reads free host RAM when ``host_bytes`` is None: only a model that does not fit fully needs it."""

    @cached_property
    def host_available_bytes(self) -> int:
        """Free host RAM, where the layers that do not fit on the GPU run."""
        if self.host_bytes is not None:
            return self.host_bytes
        return self.host_reader() if self.host_reader is not None else 0

    @property
    def cpu_only(self) -> bool:
        return self.backend == "cpu"

    @property
    def word(self) -> str:
        """What the figure is called: "memory" on a machine without a GPU, else "VRAM"."""
        return "memory" if self.cpu_only else "VRAM"

    @property
    def available_gb(self) -> float:
        return self.available_bytes / GIB

    def marker(self) -> tuple[str, str, int]:
        """A key for reusing an answer judged in this memory: it changes when the memory moves by 64 MiB
        (free memory drifts by the megabyte between readings). Free host RAM, which only tells a partial fit
        from none, is left out: reading it on every request would cost more than the answer."""
        return self.source, self.backend, self.available_bytes >> 26

    @property
    def label(self) -> str:
        """How the figure is reported: "VRAM detected", "memory detected", "VRAM override from
        MODEL_MANAGER_VRAM_GB", or "" for an argument (the caller's own figure)."""
        if self.source == DETECTED:
            return f"{self.word} detected"
        if self.source == OVERRIDE:
            return f"{self.word} override" + (f" from {self.origin}" if self.origin else "")
        return ""

    @property
    def host_available_gb(self) -> float:
        return self.host_available_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        return {
            "available_gb": round(self.available_gb, 2),
            "source": self.source,
            "backend": self.backend,
            "kind": self.word,
            "origin": self.origin or None,
            "total_gb": round(self.total_bytes / GIB, 2),
        }


@dataclass(frozen=True)
class RunSettings:
    """The settings one model would run with, and why Ollama could not load it ("" when it can).

    ``automatic_context``: the context is Ollama's default (no ``num_ctx`` asked for, no
    ``OLLAMA_CONTEXT_LENGTH``), so Ollama retries once at a lower tier when it runs out of memory.
    ``requested_kv_cache_type`` is what was asked for; ``kv_cache_type`` what the estimate sizes (f16 when
    llama.cpp would refuse the requested one, which ``problem`` then explains).
    """

    context_length: int
    kv_cache_type: str
    num_parallel: int
    flash_attention: bool
    num_batch: int
    flash_attention_mode: str = "auto"
    automatic_context: bool = False
    requested_kv_cache_type: str = DEFAULT_KV_CACHE_TYPE
    problem: str = ""


def run_settings(
    sizing: ModelSizing,
    runtime: RuntimeSettings,
    memory: Memory,
    *,
    context_length: int | None = None,
    kv_cache_type: str | None = None,
    num_parallel: int | None = None,
) -> RunSettings:
    """Ollama's settings for this model on ``memory``'s machine, with the caller's overrides.

    As Ollama does: the context is capped at the model's trained length and raised to 4 (2,048 for vision
    models); ``num_parallel`` is 1 for embedding models and some architectures; flash attention follows
    ``OLLAMA_FLASH_ATTENTION`` or the GPUs; the batch follows the context, stepped down when memory is tight.
    """
    context = context_length or runtime.context_length
    if sizing.native_context:
        context = min(context, sizing.native_context)
    context = max(context, VISION_MIN_CONTEXT_LENGTH if sizing.vision else MIN_CONTEXT_LENGTH)
    parallel = num_parallel_for(
        num_parallel or runtime.num_parallel, sizing.architecture, embedding=sizing.embedding
    )
    requested = (kv_cache_type or runtime.kv_cache_type).strip().lower()
    mode = flash_attention_mode(runtime.flash_attention, memory.devices)
    flash = flash_attention_enabled(mode, sizing.architecture)
    problem = kv_cache_problem(requested, flash)
    effective = context * parallel
    cuda = [d for d in memory.devices if d.backend == "cuda"]
    batch = automatic_batch(
        effective,
        predicted_bytes=sizing.predicted_bytes(effective),
        available_bytes=0 if memory.cpu_only else memory.available_bytes,
        cuda_without_flash_attention=mode == FA_OFF and bool(cuda),
        small_cuda_gpu=any(_device_memory(d) <= CONSTRAINED_CUDA_BYTES for d in cuda),
        embedding=sizing.embedding,
    )
    return RunSettings(
        context_length=context,
        kv_cache_type=DEFAULT_KV_CACHE_TYPE if problem else requested,
        num_parallel=parallel,
        flash_attention=flash,
        num_batch=batch,
        flash_attention_mode=mode,
        automatic_context=context_length is None and not runtime.context_length_from_env,
        requested_kv_cache_type=requested,
        problem=problem,
    )


def _device_memory(device: Device) -> int:
    """sched.go ``constrainedCUDAWithoutFlashAttention``: free memory, or total when free is 0 or above it."""
    if device.free_bytes == 0 or (device.total_bytes and device.total_bytes < device.free_bytes):
        return device.total_bytes
    return device.free_bytes


def layers(sizing: ModelSizing, run: RunSettings, room: int) -> tuple[int, int]:
    """(layers on the GPU, layers in all) of ``sizing`` at ``run`` with ``room`` bytes of GPU memory, as
    llama.cpp's ``--fit`` would place them. Raises ValueError for settings the estimator refuses."""
    return layers_on_gpu(
        sizing.model_info,
        sizing.weights_bytes,
        room,
        context_length=run.context_length,
        kv_cache_type=run.kv_cache_type,
        num_parallel=run.num_parallel,
        flash_attention=run.flash_attention,
        projector_bytes=sizing.projector_bytes,
        num_batch=run.num_batch,
    )


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
        num_batch=run.num_batch,
    )
