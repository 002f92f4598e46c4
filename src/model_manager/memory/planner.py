"""Memory planning for the manager: estimates and fit levels of ``ModelInfo`` records, at the settings
Ollama would use on this machine (or on a GPU of a given size).

Between the manager and the pure estimator: it finds each model's facts (``sizing.sizing_of``),
resolves Ollama's settings once per GPU size, and caches the default estimate of each model until the
inventory reports that installed models or their facts changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..errors import InvalidRequestError
from ..ollama_defaults import RuntimeSettings, runtime_settings
from ..types import ModelInfo
from ..units import GIB, MB, gib_bytes
from .estimator import MemoryEstimate
from .fit import Fit, ModelSizing, RunSettings, assess, estimate, max_context, run_settings
from .sizing import sizing_of

if TYPE_CHECKING:
    from ..gpu import GPUManager


class MemoryPlanner:
    """Estimates and fits for model records."""

    def __init__(self, ollama_env: Mapping[str, str], gpu: Callable[[], GPUManager]) -> None:
        self._env, self._gpu = ollama_env, gpu
        self._runtimes: dict[float, RuntimeSettings] = {}
        self._estimates: dict[tuple[str, str, bool, float | None], MemoryEstimate | None] = {}

    def invalidate(self) -> None:
        """Forget cached estimates (installed models or their facts changed)."""
        self._estimates.clear()

    def runtime(self, vram_gb: float | None = None) -> RuntimeSettings:
        """Ollama's settings for a GPU of ``vram_gb`` (its default context depends on the size), or for
        this machine's detected GPU when no figure is given."""
        key = vram_gb if vram_gb is not None else -1.0
        if key not in self._runtimes:
            total = vram_gb
            if vram_gb is None:
                gpu = self._gpu()
                cpu_only = gpu.get_backend() == "cpu" and gpu.override_gb is None
                total = None if cpu_only else gpu.get_total_memory_gb()
            self._runtimes[key] = runtime_settings(self._env, None if total is None else gib_bytes(total))
        return self._runtimes[key]

    def _run(
        self,
        sizing: ModelSizing,
        vram_gb: float | None,
        *,
        context_length: int | None = None,
        kv_cache_type: str | None = None,
        num_parallel: int | None = None,
    ) -> RunSettings:
        return run_settings(
            sizing,
            self.runtime(vram_gb),
            context_length=context_length,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
        )

    def default_estimate(self, info: ModelInfo, vram_gb: float | None = None) -> MemoryEstimate | None:
        """The estimate at Ollama's default settings, cached until invalidated."""
        key = (info.key, info.ollama_tag, info.installed, vram_gb)
        if key not in self._estimates:
            sizing = sizing_of(info)
            self._estimates[key] = estimate(sizing, self._run(sizing, vram_gb)) if sizing else None
        return self._estimates[key]

    def required_vram_gb(self, info: ModelInfo, vram_gb: float | None = None) -> float:
        """VRAM a model needs: the catalog's Min VRAM (the quick reference's threshold), else the memory
        estimate at the settings Ollama would use on a GPU of ``vram_gb`` (default: this machine's)."""
        if info.min_vram_gb is not None:
            return float(info.min_vram_gb)
        found = self.default_estimate(info, vram_gb)
        if found is not None:
            return round(found.total_gib, 2)
        # Nothing describes the architecture: the download plus a fifth for cache and buffers.
        return round(info.download_size_mb * MB * 1.2 / GIB, 1)

    def estimate(
        self,
        info: ModelInfo,
        context_length: int | None,
        kv_cache_type: str | None,
        num_parallel: int | None,
    ) -> MemoryEstimate:
        """The estimate at the given settings (Ollama's for the rest). Raises InvalidRequestError."""
        sizing = sizing_of(info)
        if sizing is None:
            raise InvalidRequestError(f"no architecture facts for {info.name}: run sync once Ollama answers")
        run = self._run(
            sizing,
            None,
            context_length=context_length,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
        )
        try:
            return estimate(sizing, run)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None

    def fit(self, info: ModelInfo, vram_gb: float, *, detected: bool) -> Fit | None:
        """The fit level of ``info`` in ``vram_gb``; host RAM takes the rest unless the figure already is RAM."""
        sizing = sizing_of(info)
        if sizing is None:
            return None
        gpu = self._gpu()
        cpu_only = detected and gpu.get_backend() == "cpu" and gpu.override_gb is None
        ram = 0.0 if cpu_only else gpu.get_host_available_gb()
        run = self._run(sizing, None if detected else vram_gb)
        return assess(sizing, run, vram_bytes=gib_bytes(vram_gb), ram_bytes=gib_bytes(ram))

    def max_context(self, info: ModelInfo, vram_gb: float, *, detected: bool) -> int | None:
        """The largest context that fits fully in ``vram_gb`` (None when nothing describes the model)."""
        sizing = sizing_of(info)
        if sizing is None:
            return None
        return max_context(sizing, self._run(sizing, None if detected else vram_gb), gib_bytes(vram_gb))
