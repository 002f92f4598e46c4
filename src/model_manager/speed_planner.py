"""Speed estimates for model records on this machine: GPU detection's device names mapped to memory
bandwidth (``speed.lookup_bandwidth``), the memory planner's estimate for the KV cache and the fit, and
``speed.estimate_speed`` for the figure.

A model that does not fit fully is read partly from host RAM, in the share of its layers that Ollama
would leave on the CPU. The KV cache is read as far as ``filled_tokens`` fill it. A memory passed in as a
figure stands for a GPU of that size whose type is unknown (``speed.GIVEN_GPU``). Embedding models
generate no text and get no speed. Where this machine has measured a model (``measured``: a benchmark or
uses recorded with token counts, see ``benchmark.Benchmarks``), the measured figure replaces the estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .memory.estimator import MemoryEstimate
from .memory.fit import ARGUMENT, layers
from .memory.sizing import sizing_of
from .speed import (
    DEFAULT_HOST,
    FILLED_CONTEXT_TOKENS,
    GIVEN_GPU,
    UNKNOWN_GPU,
    MemorySystem,
    Speed,
    bytes_per_token,
    estimate_speed,
    lookup_bandwidth,
    prefer_measured,
)
from .types import ModelInfo
from .units import gib_bytes

if TYPE_CHECKING:
    from .gpu import GPUManager
    from .memory.fit import ModelSizing
    from .memory.verdict import Verdict


@dataclass(frozen=True)
class Machine:
    """Where this machine reads weights from: the GPU's memory (None without one) and host RAM, and the
    GPU memory a model may use."""

    gpu: MemorySystem | None
    host: MemorySystem
    gpu_bytes: int


def machine_of(gpu: GPUManager) -> Machine:
    """The largest usable device of the backend detection chose; an override without a detected GPU
    stands for a GPU of unknown type."""
    backend = gpu.get_backend()
    devices = [d for d in gpu.get_devices() if d.backend == backend and d.usable_bytes > 0]
    usable = gib_bytes(gpu.get_largest_device_gb())
    if backend == "cpu" or not devices:
        if gpu.override_gb is None:
            return Machine(None, DEFAULT_HOST, 0)
        return Machine(UNKNOWN_GPU, DEFAULT_HOST, usable)
    device = max(devices, key=lambda d: d.usable_bytes)
    memory = lookup_bandwidth(device.name)
    if memory is None:
        memory = MemorySystem(f"{device.name} (not in the bandwidth table)", *_unknown(backend))
    # Apple's GPU and CPU read the same unified memory.
    host = memory if memory.kind == "unified" else DEFAULT_HOST
    return Machine(memory, host, usable)


def _unknown(backend: str) -> tuple[float, str, str]:
    if backend == "metal":
        return 100.0, "unified", "assumed: the base Apple M2/M3 chip"
    return UNKNOWN_GPU.bandwidth_gbps, UNKNOWN_GPU.kind, "assumed: an RTX 3070-class card"


class SpeedPlanner:
    """Generation speed of model records: measured here where ``measured`` has a figure, else estimated in
    the memory and at the settings of their fit verdict (this machine's kind of memory either way)."""

    def __init__(
        self,
        gpu: Callable[[], GPUManager],
        *,
        filled_tokens: int = FILLED_CONTEXT_TOKENS,
        measured: Callable[[ModelInfo], Speed | None] = lambda info: None,
    ) -> None:
        self._gpu = gpu
        self.filled_tokens = filled_tokens
        self._measured = measured
        self._machine: Machine | None = None
        self._cache: dict[tuple[str, str, bool, str, int, str | None], tuple[MemoryEstimate, Speed]] = {}

    def machine(self) -> Machine:
        if self._machine is None:
            self._machine = machine_of(self._gpu())
        return self._machine

    def speed(self, info: ModelInfo, verdict: Verdict) -> Speed | None:
        """The measured speed of ``info``, else the estimate as ``verdict`` places it; None for a model that
        generates no text or that nothing describes."""
        if "completion" not in info.capabilities:
            return None
        return prefer_measured(self._measured(info), self.estimate(info, verdict))

    def estimate(self, info: ModelInfo, verdict: Verdict) -> Speed | None:
        """The estimate for ``info`` as ``verdict`` places it; None for a model that generates no text or
        that nothing describes."""
        estimate, sizing = verdict.estimate, sizing_of(info)
        if "completion" not in info.capabilities or estimate is None or sizing is None:
            return None
        memory = verdict.memory
        key = (
            info.key,
            info.ollama_tag,
            info.installed,
            memory.source,
            memory.available_bytes,
            verdict.level,
        )
        cached = self._cache.get(key)
        # The planner's estimate is rebuilt when installed models change; the speed follows it.
        if cached is not None and cached[0] is estimate:
            return cached[1]
        # A figure passed in is a GPU of that size, not necessarily this one: GPU detection is not asked.
        machine = (
            Machine(GIVEN_GPU, DEFAULT_HOST, memory.available_bytes)
            if memory.source == ARGUMENT
            else self.machine()
        )
        read = bytes_per_token(
            sizing.model_info,
            sizing.weights_bytes,
            info.quantization,
            kv_cache_bytes=estimate.kv_cache_bytes,
            cache_tokens=estimate.allocated_context or estimate.context_length,
            context_tokens=min(self.filled_tokens, estimate.context_length),
        )
        share = _gpu_share(sizing, estimate, verdict) if machine.gpu is not None else 0.0
        found = estimate_speed(read, machine.gpu, machine.host, share)
        filled = min(self.filled_tokens, estimate.context_length)
        note = f"; {filled:,} of {estimate.context_length:,} context tokens filled"
        note += "" if share >= 1 else f"; {share:.0%} of the layers on the GPU"
        result = Speed(found.tokens_per_second, found.source, found.basis + note)
        self._cache[key] = (estimate, result)
        return result


def _gpu_share(sizing: ModelSizing, estimate: MemoryEstimate, verdict: Verdict) -> float:
    """The share of the layers on the GPU: all when the verdict is a full fit, none without a GPU or
    when it does not fit, else the layers llama.cpp's ``--fit`` would keep there."""
    if verdict.memory.cpu_only or verdict.level not in ("full", "partial"):
        return 0.0
    if verdict.level == "full":
        return 1.0
    if verdict.layers_on_gpu is not None and verdict.layers_total:
        return verdict.layers_on_gpu / verdict.layers_total
    room = max(verdict.memory.available_bytes - estimate.margin_bytes, 0)
    if verdict.run is None:
        return min(1.0, room / estimate.total_bytes)
    try:
        on_gpu, total = layers(sizing, verdict.run, room)
    except ValueError:
        return min(1.0, room / estimate.total_bytes)
    return on_gpu / total if total else 0.0
