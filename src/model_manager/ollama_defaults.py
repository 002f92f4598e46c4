"""The defaults and rules current Ollama (v0.30 and later, which runs llama.cpp's ``llama-server``) runs
models with, written down once, each with its source, and how its environment changes them.

Everything here is pure: :func:`runtime_settings` takes the environment as a mapping (``config`` is the
only module that reads the environment); the other functions take the facts they decide on.

Sources: ollama/ollama ``envconfig/config.go``, ``server/routes.go``, ``server/sched.go``,
``llm/llama_server.go``, ``llm/server.go``, ``ml/device.go``; llama.cpp (the build Ollama vendors)
``common/common.h``, ``common/arg.cpp``, ``src/llama-context.cpp``, ``ggml/src/ggml-common.h``.
docs/memory.md lists each rule with the function it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .units import GIB, MIB

# --- context --------------------------------------------------------------------------------------

DEFAULT_CONTEXT_LENGTH = 4096
"""``num_ctx`` below the first VRAM tier, and always on a machine without a GPU (routes.go ``Serve``)."""

CONTEXT_LENGTH_TIERS: tuple[tuple[int, int], ...] = (
    (47 * GIB, 262144),
    (23 * GIB, 32768),
)
"""(minimum total VRAM, default ``num_ctx``), largest first (routes.go ``Serve``). Total VRAM is the sum over
the GPUs of ``TotalMemory − OLLAMA_GPU_OVERHEAD``, read once when the server starts; system RAM never counts."""

MIN_CONTEXT_LENGTH = 4
VISION_MIN_CONTEXT_LENGTH = 2048
"""sched.go ``getRunner``: ``num_ctx`` is raised to 4, and to 2048 for models with the vision capability."""


def default_context_length(total_vram_bytes: int | None) -> int:
    """Ollama's default ``num_ctx`` for ``total_vram_bytes`` of GPU memory (None or 0: no GPU → 4096)."""
    for threshold, context in CONTEXT_LENGTH_TIERS:
        if total_vram_bytes and total_vram_bytes >= threshold:
            return context
    return DEFAULT_CONTEXT_LENGTH


def next_lower_context(context: int) -> int | None:
    """The one retry Ollama makes after an automatic context ran out of memory (sched.go
    ``nextLowerAutoNumCtx``): above 32,768 → 32,768, above 4,096 → 4,096, else no retry."""
    if context > 32768:
        return 32768
    if context > 4096:
        return 4096
    return None


# --- parallel requests ----------------------------------------------------------------------------

DEFAULT_NUM_PARALLEL = 1
SINGLE_SEQUENCE_ARCHITECTURES = frozenset(
    [
        "mllama",
        "qwen3vl",
        "qwen3vlmoe",
        "qwen35",
        "qwen35moe",
        "qwen3next",
        "lfm2",
        "lfm2moe",
        "nemotron_h",
        "nemotron_h_moe",
        "nemotron_h_omni",
    ]
)
"""sched.go ``load``: architectures that always run with ``num_parallel`` 1."""


def num_parallel_for(requested: int, architecture: str, *, embedding: bool) -> int:
    """``OLLAMA_NUM_PARALLEL`` as sched.go ``load`` applies it: at least 1, and 1 for embedding models
    and for :data:`SINGLE_SEQUENCE_ARCHITECTURES`."""
    if embedding or architecture in SINGLE_SEQUENCE_ARCHITECTURES:
        return 1
    return max(1, requested)


# --- batch ----------------------------------------------------------------------------------------

BATCH_DEFAULT, BATCH_MEDIUM, BATCH_LARGE, BATCH_CONSTRAINED = 512, 1024, 2048, 256
"""sched.go ``llamaServerGenerationBatch*``; Ollama passes ``-b N -ub N`` (llama_server.go
``appendBatchArgs``), so the physical batch that sizes the compute graph is the same N."""
DEFAULT_NUM_BATCH = BATCH_DEFAULT
EMBEDDING_NUM_BATCH = 2048
"""sched.go ``DefaultEmbeddingNumBatch``: embedding models get ``min(2048, num_ctx × parallel)``."""
CONSTRAINED_CUDA_BYTES = 8 * GIB
BATCH_SURCHARGE = {BATCH_LARGE: 2 * GIB, BATCH_MEDIUM: 768 * MIB}
BATCH_HEADROOM_PERCENT = {BATCH_LARGE: 60, BATCH_MEDIUM: 75}


def batch_for_context(effective_context: int) -> int:
    """sched.go ``generationBatchForContext``: ``num_ctx × parallel`` above 32,768 → 2048, above 4,096 →
    1024, else 512."""
    if effective_context > 32768:
        return BATCH_LARGE
    if effective_context > 4096:
        return BATCH_MEDIUM
    return BATCH_DEFAULT


def _batch_fits(batch: int, predicted: int, available: int) -> bool:
    """sched.go ``generationBatchFits``: true when either figure is unknown (0, as on a CPU-only machine)."""
    if predicted == 0 or available == 0:
        return True
    threshold = available * 80 // 100
    if predicted > threshold:
        return False
    headroom = BATCH_HEADROOM_PERCENT.get(batch)
    if headroom is not None and predicted > available * headroom // 100:
        return False
    return BATCH_SURCHARGE.get(batch, 0) <= threshold - predicted


def automatic_batch(
    effective_context: int,
    *,
    predicted_bytes: int,
    available_bytes: int,
    cuda_without_flash_attention: bool = False,
    small_cuda_gpu: bool = False,
    embedding: bool = False,
) -> int:
    """The batch Ollama picks when the request and Modelfile leave ``num_batch`` unset (sched.go
    ``automaticGenerationBatch``): by context, stepped down 2048 → 1024 → 512 while the prediction leaves too
    little headroom; on CUDA with flash attention off 512, or 256 beyond 4,096 tokens on a GPU of at most
    8 GiB (``constrainedCUDAWithoutFlashAttention``); embedding models ``min(2048, context)``."""
    if embedding:
        return min(EMBEDDING_NUM_BATCH, effective_context)
    if cuda_without_flash_attention:
        return BATCH_CONSTRAINED if effective_context > 4096 and small_cuda_gpu else BATCH_DEFAULT
    batch = batch_for_context(effective_context)
    while batch > BATCH_DEFAULT and not _batch_fits(batch, predicted_bytes, available_bytes):
        batch = BATCH_MEDIUM if batch > BATCH_MEDIUM else BATCH_DEFAULT
    return batch


def predicted_server_bytes(
    file_bytes: int, block_count: int, kv_heads_min: int, embedding: int, heads_max: int, context: int
) -> int:
    """llama_server.go ``PredictServerVRAM``, the rough figure the batch step-down compares: the file size
    plus ``2 · layers · min KV heads · (embedding / max heads) · context · 2`` bytes."""
    head_dim = embedding // heads_max if heads_max > 0 else 0
    return file_bytes + 2 * block_count * max(kv_heads_min, 1) * head_dim * context * 2


# --- flash attention ------------------------------------------------------------------------------

FA_ON, FA_OFF, FA_AUTO = "on", "off", "auto"
FLASH_ATTENTION_BACKENDS = frozenset({"cpu", "metal", "rocm", "vulkan", "levelzero"})
"""ml/device.go ``FlashAttentionSupported``: CPU, Metal, ROCm and Vulkan always (Intel GPUs run through
Vulkan in Ollama, so Level Zero devices count as Vulkan); CUDA by compute capability."""
NO_FLASH_ATTENTION_ARCHITECTURES = frozenset({"grok"})
"""llama.cpp ``llama-context.cpp``: grok turns flash attention off even when it is ``auto``."""


@dataclass(frozen=True)
class Device:
    """What Ollama's rules look at on one GPU: its backend, CUDA compute capability ("8.6", empty when
    unknown) and free and total memory in bytes."""

    backend: str
    compute: str = ""
    free_bytes: int = 0
    total_bytes: int = 0


def cuda_flash_attention_supported(compute: str) -> bool:
    """ml/device.go ``cudaFlashAttentionSupported``: compute capability ≥ 6.0, except 7.2 (Jetson Xavier).
    Ollama v0.30–v0.31 required 7.0; v0.32 lowered it to 6.0. An unknown capability counts as supported,
    as Ollama treats an unknown driver version."""
    major, _, minor = compute.partition(".")
    if not major.isdigit():
        return True
    return int(major) >= 6 and (major, minor) != ("7", "2")


def flash_attention_mode(setting: bool | None, devices: Iterable[Device]) -> str:
    """What Ollama passes as ``--flash-attn`` (llama_server.go ``LlamaServerFlashAttention``): on or off when
    ``OLLAMA_FLASH_ATTENTION`` is set; else off when any selected GPU lacks support, auto otherwise (no GPU
    at all is auto)."""
    if setting is not None:
        return FA_ON if setting else FA_OFF
    for device in devices:
        supported = (
            cuda_flash_attention_supported(device.compute)
            if device.backend == "cuda"
            else device.backend in FLASH_ATTENTION_BACKENDS
        )
        if not supported:
            return FA_OFF
    return FA_AUTO


def flash_attention_enabled(mode: str, architecture: str) -> bool:
    """Whether llama.cpp runs flash attention (llama-context.cpp ``llama_init_from_model``): grok never;
    otherwise ``on`` and ``auto`` enable it (``auto`` resolves to enabled when every layer's attention runs
    where its cache is, as it does under Ollama's placement), ``off`` disables it."""
    if architecture in NO_FLASH_ATTENTION_ARCHITECTURES:
        return False
    return mode != FA_OFF


# --- KV cache -------------------------------------------------------------------------------------

DEFAULT_KV_CACHE_TYPE = "f16"
KV_CACHE_TYPE_BLOCKS: Mapping[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "q4_1": (32, 20),
    "iq4_nl": (32, 18),
    "q5_0": (32, 22),
    "q5_1": (32, 24),
}
"""(elements, bytes) per block of the types llama.cpp accepts for ``--cache-type-k/-v`` (common/arg.cpp
``kv_cache_types``; block sizes from ggml-common.h). Ollama passes ``OLLAMA_KV_CACHE_TYPE`` through
unchecked (llm/server.go), for K and V alike; llama-server refuses any other name and the load fails."""
KV_CACHE_TYPES = tuple(KV_CACHE_TYPE_BLOCKS)
COMMON_KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")
"""The types Ollama documents; plan mode shows these unless asked for another."""


def is_quantized(kv_cache_type: str) -> bool:
    return kv_cache_type not in ("f32", "f16", "bf16")


def kv_cache_problem(kv_cache_type: str, flash_attention: bool) -> str:
    """Why llama.cpp would refuse this cache, or "": an unknown type, or a quantised V cache without flash
    attention (llama-context.cpp ``llama_init_from_model``: "quantized V cache requires flash_attn")."""
    if kv_cache_type not in KV_CACHE_TYPE_BLOCKS:
        return (
            f"llama.cpp refuses KV cache type {kv_cache_type!r} (expected one of {', '.join(KV_CACHE_TYPES)})"
        )
    if is_quantized(kv_cache_type) and not flash_attention:
        return (
            f"a {kv_cache_type} KV cache needs flash attention, which is off here, so Ollama cannot load it"
        )
    return ""


# --- memory kept free -----------------------------------------------------------------------------

FIT_TARGET_BYTES = 1024 * MIB
"""llama.cpp ``common.h`` ``fit_params_target``: ``--fit`` places layers so that each GPU keeps 1 GiB free."""
PROJECTOR_HEADROOM_BYTES = 1 * GIB
"""llama_server.go ``mmprojOffloadHeadroom``: for a model with a projector on the GPU, Ollama sets the fit
target to ``projector + 1 GiB`` (``mmprojFitTargetMiB``, rounded up to a MiB), and keeps the projector on the
CPU when a GPU has less free than that (``shouldDisableMMProjOffload``)."""


def fit_target_bytes(projector_bytes: int = 0) -> int:
    """Memory llama.cpp keeps free on each GPU for a model with ``projector_bytes`` of projector there."""
    if projector_bytes <= 0:
        return FIT_TARGET_BYTES
    return -(-(projector_bytes + PROJECTOR_HEADROOM_BYTES) // MIB) * MIB


GPU_MINIMUM_MEMORY: Mapping[str, int] = {"cuda": 457 * MIB, "rocm": 457 * MIB, "metal": 512 * MIB}
"""ml/device.go ``MinimumMemory``: what a GPU loses to the driver context beside llama.cpp's own buffers
(llama.cpp's memory breakdown calls it "unaccounted": 451–456 MiB per RTX 4090 in ggml-org/llama.cpp#15860).
GPU detection takes it off each device's free memory; nothing else counts it."""
DEFAULT_GPU_MINIMUM_MEMORY = GPU_MINIMUM_MEMORY["cuda"]
DEFAULT_GPU_OVERHEAD = 0
DEFAULT_KEEP_ALIVE = "5m"
DEFAULT_MAX_LOADED_MODELS_PER_GPU = 3
"""``OLLAMA_MAX_LOADED_MODELS`` = 0 means 3 per GPU (3 on CPU only)."""

# --- the environment ------------------------------------------------------------------------------

_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class RuntimeSettings:
    """What a freshly started Ollama takes from its environment.

    ``context_length`` is the default per request (the tier for the machine's GPUs unless
    ``OLLAMA_CONTEXT_LENGTH`` set it); ``flash_attention`` is None when ``OLLAMA_FLASH_ATTENTION`` is unset
    (Ollama then decides per GPU: :func:`flash_attention_mode`); ``kv_cache_type`` is passed through as given,
    even when llama.cpp would refuse it (:func:`kv_cache_problem` says why).
    """

    context_length: int = DEFAULT_CONTEXT_LENGTH
    num_parallel: int = DEFAULT_NUM_PARALLEL
    flash_attention: bool | None = None
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE
    gpu_overhead_bytes: int = DEFAULT_GPU_OVERHEAD
    context_length_from_env: bool = False


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
    """Ollama's ``envconfig.BoolWithDefault``: unset is None; an unparsable non-empty value counts as true."""
    raw = _var(env, key)
    if not raw:
        return None
    return raw not in _FALSE


def gpu_overhead(env: Mapping[str, str]) -> int:
    """``OLLAMA_GPU_OVERHEAD`` in bytes (envconfig ``Uint64``); a bad value is 0."""
    return _uint(env, "OLLAMA_GPU_OVERHEAD", DEFAULT_GPU_OVERHEAD)


def runtime_settings(env: Mapping[str, str], total_vram_bytes: int | None = None) -> RuntimeSettings:
    """Read ``OLLAMA_CONTEXT_LENGTH``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_FLASH_ATTENTION``,
    ``OLLAMA_KV_CACHE_TYPE`` and ``OLLAMA_GPU_OVERHEAD`` from ``env`` the way Ollama does.

    ``total_vram_bytes`` is the machine's total GPU memory already less ``OLLAMA_GPU_OVERHEAD`` per GPU
    (None: no GPU). A context length that is not an unsigned integer, or 0, gives the tier for it; a bad
    ``OLLAMA_NUM_PARALLEL`` gives 1, and 0 is raised to 1; ``OLLAMA_FLASH_ATTENTION`` takes Go's boolean
    spellings and any other non-empty value counts as true; ``OLLAMA_KV_CACHE_TYPE`` is lower-cased and
    kept as given (empty: f16); a bad ``OLLAMA_GPU_OVERHEAD`` is 0.
    """
    context = _uint(env, "OLLAMA_CONTEXT_LENGTH", 0)
    return RuntimeSettings(
        context_length=context or default_context_length(total_vram_bytes),
        num_parallel=max(1, _uint(env, "OLLAMA_NUM_PARALLEL", DEFAULT_NUM_PARALLEL)),
        flash_attention=_bool(env, "OLLAMA_FLASH_ATTENTION"),
        kv_cache_type=_var(env, "OLLAMA_KV_CACHE_TYPE").lower() or DEFAULT_KV_CACHE_TYPE,
        gpu_overhead_bytes=gpu_overhead(env),
        context_length_from_env=context > 0,
    )
