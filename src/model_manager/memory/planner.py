"""Memory planning for the manager: the one verdict of a ``ModelInfo`` record in some memory, at the settings
Ollama would use there, and everything built from it (``min_vram_gb``, plans).

Between the manager and the pure parts: it finds each model's facts (``sizing.sizing_of``), reads the memory
(GPU detection, or a figure given), resolves Ollama's settings for it, and caches estimates until the
inventory reports that installed models or their facts changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import InvalidRequestError
from ..ollama_defaults import (
    COMMON_KV_CACHE_TYPES,
    FIT_TARGET_BYTES,
    KV_CACHE_TYPES,
    Device,
    RuntimeSettings,
    gpu_overhead,
    runtime_settings,
)
from ..types import ModelInfo
from ..units import GIB, MB, gib_bytes
from .estimator import FALLBACK_MAX_CONTEXT, MemoryEstimate
from .fit import (
    ARGUMENT,
    DETECTED,
    OVERRIDE,
    Memory,
    ModelSizing,
    RunSettings,
    estimate,
    layers,
    run_settings,
)
from .sizing import sizing_of
from .verdict import MIN_VRAM_CONTEXT, Requirement, Verdict, judge, round_up_half

if TYPE_CHECKING:
    from ..gpu import GPUManager
    from .plan import Plan

CACHE_LIMIT = 4096
PLANNING_GPU = Memory(0, ARGUMENT, "gpu")
"""The GPU ``min_vram_gb`` is worked out for: one that supports flash attention, of any size."""
DOWNLOAD_HEADROOM = 1.2
"""Without architecture facts: the download plus a fifth for cache and buffers."""


class MemoryPlanner:
    """Verdicts, estimates and plans for model records."""

    def __init__(self, ollama_env: Mapping[str, str], gpu: Callable[[], GPUManager]) -> None:
        self._env, self._gpu = ollama_env, gpu
        self._runtimes: dict[int, RuntimeSettings] = {}
        self._estimates: dict[tuple[str, str, bool, RunSettings], MemoryEstimate] = {}
        self._requirements: dict[tuple[str, str, bool], Requirement] = {}
        self._sizings: dict[tuple[str, str, bool], ModelSizing | None] = {}

    def invalidate(self) -> None:
        """Forget cached estimates (installed models or their facts changed)."""
        self._estimates.clear()
        self._requirements.clear()
        self._sizings.clear()

    def sizing(self, info: ModelInfo) -> ModelSizing | None:
        """What sizes ``info`` (``sizing.sizing_of``), kept until invalidated."""
        key = (info.key, info.ollama_tag, info.installed)
        if key not in self._sizings:
            self._sizings[key] = sizing_of(info)
        return self._sizings[key]

    # --- memory -------------------------------------------------------------------------------

    def memory(self, vram_gb: float | None = None) -> Memory:
        """The memory to judge against: ``vram_gb`` as given (a GPU of that size), else what GPU detection
        reports (``MODEL_MANAGER_VRAM_GB`` as an override)."""
        if vram_gb is not None:  # GPU detection is not even built unless host RAM is needed
            figure = gib_bytes(vram_gb)
            return Memory(figure, ARGUMENT, "gpu", figure, host_reader=self._host_ram)
        gpu = self._gpu()
        if gpu.override_gb is not None:
            figure = gib_bytes(gpu.override_gb)
            origin = gpu.override_source if gpu.override_source != ARGUMENT else "settings"
            return Memory(figure, OVERRIDE, "gpu", figure, origin=origin, host_reader=self._host_ram)
        return self._detect(gpu)

    def _host_ram(self) -> int:
        return gib_bytes(self._gpu().get_host_available_gb())

    def _detect(self, gpu: GPUManager) -> Memory:
        backend = gpu.get_backend()
        available = gib_bytes(gpu.get_available_memory_gb())
        if backend == "cpu":
            return Memory(available, DETECTED, "cpu", 0, 0)
        devices = tuple(
            Device(d.backend, d.compute_capability, d.free_bytes, d.total_bytes)
            for d in gpu.get_devices()
            if d.backend == backend and not d.problem
        )
        # Ollama's tier reads each GPU's total less OLLAMA_GPU_OVERHEAD (routes.go Serve).
        total = gib_bytes(gpu.get_total_memory_gb()) - gpu_overhead(self._env) * max(len(devices), 1)
        return Memory(available, DETECTED, backend, max(total, 0), None, devices, host_reader=self._host_ram)

    def runtime(self, memory: Memory) -> RuntimeSettings:
        """Ollama's settings from its environment on a machine with ``memory`` (its default context
        depends on the GPUs' total; none without a GPU)."""
        total = 0 if memory.cpu_only else memory.total_bytes
        if total not in self._runtimes:
            self._runtimes[total] = runtime_settings(self._env, total or None)
        return self._runtimes[total]

    # --- verdicts -----------------------------------------------------------------------------

    def requirement(self, info: ModelInfo) -> Requirement:
        """``min_vram_gb``: the catalog's figure (the quick reference's, or one the user set), else the memory
        to run fully on a GPU at 4,096 context plus the margin kept free, rounded up to 0.5 GB."""
        if info.min_vram_gb is not None:
            return Requirement(float(info.min_vram_gb), "catalog")
        key = (info.key, info.ollama_tag, info.installed)
        if key not in self._requirements:
            sizing = self.sizing(info)
            found = None
            if sizing is not None:
                run = run_settings(
                    sizing, self.runtime(PLANNING_GPU), PLANNING_GPU, context_length=MIN_VRAM_CONTEXT
                )
                found = self._estimate_or_none(info, sizing, run)
            if found is not None:
                self._requirements[key] = Requirement(
                    round_up_half((found.total_bytes + found.margin_bytes) / GIB), "estimate"
                )
            else:
                download = info.download_size_mb * MB * DOWNLOAD_HEADROOM + FIT_TARGET_BYTES
                self._requirements[key] = Requirement(round_up_half(download / GIB), "download size")
        return self._requirements[key]

    def verdict(
        self,
        info: ModelInfo,
        memory: Memory | None = None,
        *,
        context_length: int | None = None,
        kv_cache_type: str | None = None,
        num_parallel: int | None = None,
        detail: bool = False,
    ) -> Verdict:
        """How ``info`` fits in ``memory`` (detected when None) at the given settings, Ollama's for the rest.
        ``detail`` also works out the layers on the GPU and the largest context that fits fully."""
        memory = memory or self.memory()
        runtime = self.runtime(memory)
        sizing = self.sizing(info)
        requirement = self.requirement(info)

        def run_at(context: int | None) -> RunSettings:
            assert sizing is not None
            return run_settings(
                sizing,
                runtime,
                memory,
                context_length=context,
                kv_cache_type=kv_cache_type,
                num_parallel=num_parallel,
            )

        run = run_at(context_length) if sizing is not None else None
        if sizing is None or run is None or self._estimate_or_none(info, sizing, run) is None:
            return Verdict(info.name, memory, requirement, None, None, None, runtime.context_length)
        default = run_settings(sizing, runtime, memory, kv_cache_type=kv_cache_type).context_length
        return judge(
            info.name,
            memory,
            requirement,
            run,
            estimate_at=lambda r: self._estimate(info, sizing, r),
            run_at=run_at,
            layers_at=lambda r, room: layers(sizing, r, room),
            context_limit=sizing.native_context or FALLBACK_MAX_CONTEXT,
            default_context=default,
            layers_total=_block_count(sizing),
            detail=detail,
        )

    def estimate(
        self,
        info: ModelInfo,
        context_length: int | None,
        kv_cache_type: str | None,
        num_parallel: int | None,
        memory: Memory | None = None,
    ) -> MemoryEstimate:
        """The estimate at the given settings on ``memory``'s machine (detected when None), Ollama's for the
        rest. Raises InvalidRequestError (no architecture facts, or settings Ollama cannot load)."""
        sizing = self.sizing(info)
        if sizing is None:
            raise InvalidRequestError(f"no architecture facts for {info.name}: run sync once Ollama answers")
        memory = memory or self.memory()
        run = run_settings(
            sizing,
            self.runtime(memory),
            memory,
            context_length=context_length,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
        )
        if run.problem:
            raise InvalidRequestError(f"{info.name}: {run.problem}")
        try:
            return self._estimate(info, sizing, run)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None

    def plan(
        self,
        info: ModelInfo,
        memory: Memory | None = None,
        *,
        context_length: int | None = None,
        kv_cache_type: str | None = None,
        num_parallel: int | None = None,
    ) -> Plan:
        """Memory at each context from 2,048 to the model's maximum, for each KV cache type (the one asked for,
        else f16, q8_0 and q4_0), with the largest context that fits ``memory`` fully for each type."""
        from .plan import Plan, PlanRow, plan_contexts  # only plan mode needs it

        memory = memory or self.memory()
        verdict = self.verdict(
            info,
            memory,
            context_length=context_length,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
            detail=True,
        )
        if verdict.run is None:
            return Plan(info.name, memory, verdict, (), (), (), {})
        kinds = (verdict.run.requested_kv_cache_type,) if kv_cache_type else COMMON_KV_CACHE_TYPES
        sizing = self.sizing(info)
        native = sizing.native_context if sizing is not None else 0
        contexts = plan_contexts(native or FALLBACK_MAX_CONTEXT, context_length)
        largest: dict[str, int] = {}
        rows: list[PlanRow] = []
        for kind in kinds:
            best = self.verdict(info, memory, kv_cache_type=kind, num_parallel=num_parallel, detail=True)
            largest[kind] = best.max_context or 0
            for context in contexts:
                one = self.verdict(
                    info, memory, context_length=context, kv_cache_type=kind, num_parallel=num_parallel
                )
                if one.level == "partial":
                    one = self.verdict(
                        info,
                        memory,
                        context_length=context,
                        kv_cache_type=kind,
                        num_parallel=num_parallel,
                        detail=True,
                    )
                rows.append(PlanRow.of(one))
        return Plan(info.name, memory, verdict, tuple(kinds), tuple(contexts), tuple(rows), largest)

    # --- estimates ------------------------------------------------------------------------------

    def _estimate(self, info: ModelInfo, sizing: ModelSizing, run: RunSettings) -> MemoryEstimate:
        run = replace(run, automatic_context=False)  # the same buffers either way
        key = (info.key, info.ollama_tag, info.installed, run)
        found = self._estimates.get(key)
        if found is None:
            if len(self._estimates) >= CACHE_LIMIT:
                self._estimates.clear()
            found = self._estimates[key] = estimate(sizing, run)
        return found

    def _estimate_or_none(
        self, info: ModelInfo, sizing: ModelSizing, run: RunSettings
    ) -> MemoryEstimate | None:
        """The estimate, or None when the facts cannot size the model (no block count, no width)."""
        try:
            return self._estimate(info, sizing, run)
        except ValueError:
            return None


def _block_count(sizing: ModelSizing) -> int:
    value = sizing.model_info.get(f"{sizing.architecture}.block_count")
    return int(value) if isinstance(value, int) else 0


def check_settings(context_length: object, kv_cache_type: object, num_parallel: object) -> None:
    """Raise InvalidRequestError for a context or parallelism that is not a whole number ≥ 1, or a KV cache
    type llama.cpp does not accept."""
    for label, value in (("context_length", context_length), ("num_parallel", num_parallel)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidRequestError(f"{label} must be a whole number ≥ 1, got {value!r}")
    if kv_cache_type is not None and (
        not isinstance(kv_cache_type, str) or kv_cache_type.strip().lower() not in KV_CACHE_TYPES
    ):
        raise InvalidRequestError(
            f"kv_cache_type must be one of {', '.join(KV_CACHE_TYPES)}, got {kv_cache_type!r}"
        )
