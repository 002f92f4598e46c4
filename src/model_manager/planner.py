"""Memory planning for the manager: estimates and fit levels of catalog and installed models, at the
settings Ollama would use on this machine (or on a GPU of a given size).

Between the manager and the pure estimator: it finds each model's facts (``/api/show`` as stored for
installed models, else the catalog), resolves Ollama's settings once per GPU size, and caches the
default estimate of each model until installed models' facts change. The estimator modules are
imported on first use, to keep command-line start-up light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .errors import InvalidRequestError
from .metadata import model_shape
from .names import name_key
from .ollama_defaults import GIB, runtime_settings
from .store import Store

if TYPE_CHECKING:
    from .fit import Fit, ModelShape, RunSettings
    from .gpu import GPUManager
    from .memory import MemoryEstimate
    from .ollama_defaults import RuntimeSettings


class MemoryPlanner:
    """Estimates for metadata dicts (the manager's model records)."""

    def __init__(
        self, catalog: Catalog, store: Store, ollama_env: Mapping[str, str], gpu: Callable[[], GPUManager]
    ) -> None:
        self._catalog, self._store, self._env, self._gpu = catalog, store, ollama_env, gpu
        self._runtimes: dict[float, RuntimeSettings] = {}
        self._estimates: dict[tuple[str, str, bool, float | None], MemoryEstimate | None] = {}

    def invalidate(self) -> None:
        """Forget cached estimates (installed models or their facts changed)."""
        self._estimates.clear()

    def shape(self, meta: Mapping[str, Any]) -> ModelShape | None:
        """The facts the estimator needs for ``meta``; None when nothing describes its architecture."""
        entry = self._catalog.get(meta["name"])
        record = self._store.get_model(meta["ollama_tag"]) if meta["installed"] else None
        return model_shape(entry, record)

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
            self._runtimes[key] = runtime_settings(self._env, None if total is None else int(total * GIB))
        return self._runtimes[key]

    def _run(self, shape: ModelShape, vram_gb: float | None, **overrides: Any) -> RunSettings:
        from .fit import run_settings

        return run_settings(shape, self.runtime(vram_gb), **overrides)

    def default_estimate(
        self, meta: Mapping[str, Any], vram_gb: float | None = None
    ) -> MemoryEstimate | None:
        """The estimate at Ollama's default settings, cached until invalidated."""
        from .fit import estimate

        key = (name_key(meta["name"]), meta["ollama_tag"], meta["installed"], vram_gb)
        if key not in self._estimates:
            shape = self.shape(meta)
            self._estimates[key] = estimate(shape, self._run(shape, vram_gb)) if shape else None
        return self._estimates[key]

    def with_estimate(self, meta: dict[str, Any], vram_gb: float | None = None) -> dict[str, Any]:
        """``meta`` with ``estimated_vram_gb`` and ``memory_estimate`` at Ollama's default settings."""
        found = self.default_estimate(meta, vram_gb)
        meta["estimated_vram_gb"] = round(found.total_gib, 2) if found else None
        meta["memory_estimate"] = found.to_dict() if found else None
        return meta

    def required_vram_gb(self, meta: Mapping[str, Any], vram_gb: float | None = None) -> float:
        """VRAM a model needs: the catalog's Min VRAM (the seed's threshold), else the memory estimate at
        the settings Ollama would use on a GPU of ``vram_gb`` (default: this machine's)."""
        if meta.get("min_vram_gb") is not None:
            return float(meta["min_vram_gb"])
        found = self.default_estimate(meta, vram_gb)
        if found is not None:
            return round(found.total_gib, 2)
        # Nothing describes the architecture: the download plus a fifth for cache and buffers.
        return round(float(meta["download_size_mb"]) * 1e6 * 1.2 / GIB, 1)

    def estimate(
        self,
        meta: Mapping[str, Any],
        context_length: int | None,
        kv_cache_type: str | None,
        num_parallel: int | None,
    ) -> MemoryEstimate:
        """The estimate at the given settings (Ollama's for the rest). Raises InvalidRequestError."""
        from .fit import estimate

        shape = self.shape(meta)
        if shape is None:
            raise InvalidRequestError(
                f"no architecture facts for {meta['name']}: run sync once Ollama answers"
            )
        run = self._run(
            shape, None, context_length=context_length, kv_cache_type=kv_cache_type, num_parallel=num_parallel
        )
        try:
            return estimate(shape, run)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None

    def fit(self, meta: Mapping[str, Any], vram_gb: float, *, detected: bool) -> Fit | None:
        """The fit level of ``meta`` in ``vram_gb``; host RAM takes the rest unless the figure already is RAM."""
        from .fit import assess

        shape = self.shape(meta)
        if shape is None:
            return None
        gpu = self._gpu()
        cpu_only = detected and gpu.get_backend() == "cpu" and gpu.override_gb is None
        ram = 0.0 if cpu_only else gpu.get_host_available_gb()
        run = self._run(shape, None if detected else vram_gb)
        return assess(shape, run, vram_bytes=int(vram_gb * GIB), ram_bytes=int(ram * GIB))

    def max_context(self, meta: Mapping[str, Any], vram_gb: float, *, detected: bool) -> int | None:
        """The largest context that fits fully in ``vram_gb`` (None when nothing describes the model)."""
        from .fit import max_context

        shape = self.shape(meta)
        if shape is None:
            return None
        return max_context(shape, self._run(shape, None if detected else vram_gb), int(vram_gb * GIB))
