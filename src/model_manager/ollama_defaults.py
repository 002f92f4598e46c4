"""The defaults Ollama runs models with, written down once, and how its environment changes them.

Everything here is pure: :func:`runtime_settings` takes the environment as a mapping (``config`` is the
only module that reads the environment) and returns the values Ollama would use.

Sources (ollama/ollama; see also docs/memory.md):

* ``envconfig/config.go`` — ``OLLAMA_CONTEXT_LENGTH``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_FLASH_ATTENTION``,
  ``OLLAMA_KV_CACHE_TYPE``, ``OLLAMA_GPU_OVERHEAD``, ``OLLAMA_KEEP_ALIVE``; values are read with
  ``strings.Trim(strings.TrimSpace(v), "\"'")``, integers with ``strconv.ParseUint`` and booleans with
  ``strconv.ParseBool``.
* Default ``num_ctx``: 2048 up to v0.6.6, 4096 from v0.6.7; from v0.15.5 a tier by total VRAM
  (< 24 GiB → 4096, 24–48 GiB → 32768, ≥ 48 GiB → 262144, compared against 23 and 47 GiB).
* ``num_parallel``: 1 since v0.10 (v0.9.7); ``num_ctx × num_parallel`` tokens of KV cache are allocated.
* Flash attention off unless ``OLLAMA_FLASH_ATTENTION`` is set, but Ollama turns it on for some
  architectures (gpt-oss v0.11.8, qwen3/qwen3moe v0.12.4, gemma3 v0.12.6, mistral3, qwen3vl).
* ``OLLAMA_KV_CACHE_TYPE`` (f16 | q8_0 | q4_0, since v0.5.0) only takes effect with flash attention.
* Per-GPU minimum free memory (``ml/device.go`` ``MinimumMemory``): 457 MiB CUDA and ROCm, 512 MiB Metal.
* ``llama.cpp`` defaults Ollama leaves alone: ``n_batch`` 2048 → physical batch ``n_ubatch`` 512.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .units import GIB, MIB

DEFAULT_CONTEXT_LENGTH = 4096
"""``num_ctx`` when nothing says otherwise (v0.6.7 onwards; the lowest VRAM tier since v0.15.5)."""

CONTEXT_LENGTH_TIERS: tuple[tuple[int, int], ...] = (
    (47 * GIB, 262144),
    (23 * GIB, 32768),
)
"""(minimum total VRAM, default ``num_ctx``), largest first; below the last tier the default applies."""

DEFAULT_NUM_PARALLEL = 1
DEFAULT_FLASH_ATTENTION = False
DEFAULT_KV_CACHE_TYPE = "f16"
KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")
"""The cache types Ollama accepts in ``OLLAMA_KV_CACHE_TYPE``; anything else runs as f16."""

FLASH_ATTENTION_ARCHITECTURES = frozenset(
    {"gpt-oss", "gptoss", "qwen3", "qwen3moe", "gemma3", "mistral3", "qwen3vl", "qwen3vlmoe"}
)
"""Architectures Ollama runs with flash attention even when ``OLLAMA_FLASH_ATTENTION`` is unset."""

DEFAULT_NUM_BATCH = 512
"""Tokens per physical batch (llama.cpp's ``n_ubatch``); sizes the compute graph."""

GPU_MINIMUM_MEMORY: Mapping[str, int] = {"cuda": 457 * MIB, "rocm": 457 * MIB, "metal": 512 * MIB}
"""Memory Ollama keeps free on each GPU, by backend (CUDA context, driver scratch)."""

DEFAULT_GPU_MINIMUM_MEMORY = GPU_MINIMUM_MEMORY["cuda"]
DEFAULT_GPU_OVERHEAD = 0
DEFAULT_KEEP_ALIVE = "5m"
DEFAULT_MAX_LOADED_MODELS_PER_GPU = 3
"""``OLLAMA_MAX_LOADED_MODELS`` = 0 means 3 per GPU (3 on CPU only)."""

_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class RuntimeSettings:
    """The values a freshly started Ollama would run a model with.

    ``context_length`` is per request; ``num_parallel`` slots each get one, so the KV cache holds
    ``context_length × num_parallel`` tokens. ``flash_attention`` is ``None`` when the environment leaves it
    to Ollama, which then decides per architecture: use :meth:`flash_attention_for` and
    :meth:`kv_cache_type_for` for a given model. ``kv_cache_type`` is the type for a model without flash
    attention by default (f16 unless ``OLLAMA_FLASH_ATTENTION`` turned it on); ``context_length`` is not yet
    capped at a model's trained context.
    """

    context_length: int = DEFAULT_CONTEXT_LENGTH
    num_parallel: int = DEFAULT_NUM_PARALLEL
    flash_attention: bool | None = None
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE
    requested_kv_cache_type: str = DEFAULT_KV_CACHE_TYPE
    gpu_overhead_bytes: int = DEFAULT_GPU_OVERHEAD
    context_length_from_env: bool = False

    def flash_attention_for(self, architecture: str) -> bool:
        """Whether a model of ``architecture`` runs with flash attention under these settings."""
        return flash_attention_for(architecture, self.flash_attention)

    def kv_cache_type_for(self, architecture: str) -> str:
        """The cache type a model of ``architecture`` gets: the requested one only with flash attention."""
        return effective_kv_cache_type(self.requested_kv_cache_type, self.flash_attention_for(architecture))


def _var(env: Mapping[str, str], key: str) -> str:
    """Ollama's ``envconfig.Var``: trim spaces, then surrounding quotes."""
    return env.get(key, "").strip().strip("\"'")


def _uint(env: Mapping[str, str], key: str, default: int) -> int:
    """Ollama's ``envconfig.Uint``: a decimal unsigned integer, else the default."""
    raw = _var(env, key)
    if not raw.isdigit() or not raw.isascii():
        return default
    return int(raw)


def _bool(env: Mapping[str, str], key: str) -> bool | None:
    """Ollama's ``envconfig.Bool``: unset is ``None`` here; an unparsable non-empty value counts as true."""
    raw = _var(env, key)
    if not raw:
        return None
    return raw not in _FALSE


def default_context_length(total_vram_bytes: int | None) -> int:
    """Ollama's default ``num_ctx`` for a machine with ``total_vram_bytes`` of GPU memory (None: no GPU)."""
    for threshold, context in CONTEXT_LENGTH_TIERS:
        if total_vram_bytes is not None and total_vram_bytes >= threshold:
            return context
    return DEFAULT_CONTEXT_LENGTH


def flash_attention_for(architecture: str, setting: bool | None) -> bool:
    """Flash attention for one model: the explicit setting, else on for the architectures Ollama picks."""
    if setting is not None:
        return setting
    return architecture in FLASH_ATTENTION_ARCHITECTURES


def effective_kv_cache_type(requested: str, flash_attention: bool) -> str:
    """The KV cache type actually used: ``requested`` if Ollama supports it and flash attention is on."""
    kind = requested.strip().lower()
    if flash_attention and kind in KV_CACHE_TYPES:
        return kind
    return DEFAULT_KV_CACHE_TYPE


def runtime_settings(env: Mapping[str, str], total_vram_bytes: int | None = None) -> RuntimeSettings:
    """Read ``OLLAMA_CONTEXT_LENGTH``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_FLASH_ATTENTION``,
    ``OLLAMA_KV_CACHE_TYPE`` and ``OLLAMA_GPU_OVERHEAD`` from ``env`` the way Ollama does.

    Invalid values fall back as in Ollama: a context length that is not an unsigned integer, or 0, gives the
    VRAM-tier default for ``total_vram_bytes``; a bad ``OLLAMA_NUM_PARALLEL`` gives 1, and 0 is raised to 1;
    ``OLLAMA_FLASH_ATTENTION`` takes Go's boolean spellings (1/t/true/0/f/false …) and any other non-empty
    value counts as true; an unknown ``OLLAMA_KV_CACHE_TYPE`` runs as f16, and so does any type while flash
    attention is off; a bad ``OLLAMA_GPU_OVERHEAD`` is 0.
    """
    context = _uint(env, "OLLAMA_CONTEXT_LENGTH", 0)
    flash = _bool(env, "OLLAMA_FLASH_ATTENTION")
    requested_kv = _var(env, "OLLAMA_KV_CACHE_TYPE").lower() or DEFAULT_KV_CACHE_TYPE
    if requested_kv not in KV_CACHE_TYPES:
        requested_kv = DEFAULT_KV_CACHE_TYPE
    return RuntimeSettings(
        context_length=context or default_context_length(total_vram_bytes),
        num_parallel=max(1, _uint(env, "OLLAMA_NUM_PARALLEL", DEFAULT_NUM_PARALLEL)),
        flash_attention=flash,
        kv_cache_type=effective_kv_cache_type(requested_kv, bool(flash)),
        requested_kv_cache_type=requested_kv,
        gpu_overhead_bytes=_uint(env, "OLLAMA_GPU_OVERHEAD", DEFAULT_GPU_OVERHEAD),
        context_length_from_env=context > 0,
    )
