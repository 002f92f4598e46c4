"""Generation speed: tokens per second estimated from memory bandwidth, and the record that a measured
figure replaces.

Generating one token reads every weight the token passes through once (all of a dense model; the shared
weights and the active experts of a mixture of experts) plus the KV cache filled so far, so decode speed
is bandwidth-bound: ``time per token = bytes / (bandwidth × efficiency) + a fixed cost per token``. With
partial offload the layers on the CPU are read at the host memory's bandwidth, one after the other with
those on the GPU. The efficiency and the fixed cost are fitted to published llama.cpp measurements per
kind of memory (``PROFILES``); docs/catalog.md lists the bandwidth sources and the fits. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ESTIMATED, MEASURED = "estimated", "measured"

NVIDIA = "NVIDIA's specifications page of the card (nvidia.com)"
AMD = "AMD's specifications page of the card (amd.com)"
INTEL = "Intel's specifications of the card (intel.com)"
APPLE = "Apple's technical specifications of the chip (support.apple.com/specs)"
JEDEC = "JEDEC DDR4/DDR5 transfer rates × 8 bytes per 64-bit channel"

XIONGJIE = (
    "XiongjieDai/GPU-Benchmarks-on-LLM-Inference README (llama.cpp llama-bench text generation: LLaMA 7B-65B "
    "Q4_0 and F16, 2023-12; Llama 3 8B Q4_K_M and F16, 2024-05)"
)


@dataclass(frozen=True)
class Profile:
    """How close one kind of memory gets to its rated bandwidth while decoding, and the fixed cost of a
    token (kernel launches and synchronisation), fitted to published measurements."""

    efficiency: float
    per_token_s: float
    fitted_to: str


PROFILES: Mapping[str, Profile] = {
    "gddr": Profile(
        0.81,
        0.0022,
        f"RTX 3070, 3080, 3080 Ti, 3090, 4070 Ti, 4080, 4090, RTX A6000, RTX 4000/5000/6000 Ada in {XIONGJIE}: "
        "42 points, RMS error 10%, worst 22%",
    ),
    "hbm": Profile(
        0.62, 0.0043, f"A100 80GB and H100 PCIe in {XIONGJIE}: 12 points, RMS error 11%, worst 18%"
    ),
    "unified": Profile(
        0.75, 0.0052, f"M1 Max, M2 Ultra, M3, M3 Max in {XIONGJIE}: 17 points, RMS error 15%, worst 49%"
    ),
    "cpu": Profile(
        0.68,
        0.0,
        "ggml-org/llama.cpp issue #34 (slaren): i9-13900K with DDR5-6400, LLaMA 7B Q4_0, 18.27 tokens/s "
        "at 8 threads",
    ),
}
"""Per kind of memory: discrete GPUs with GDDR memory, data-centre GPUs with HBM, Apple's unified memory,
and host RAM read by the CPU."""


@dataclass(frozen=True)
class MemorySystem:
    """Memory that model weights are read from: a GPU's, an Apple chip's, or host RAM."""

    name: str
    bandwidth_gbps: float
    """Rated bandwidth in GB/s (10⁹ bytes per second)."""
    kind: str
    """A key of ``PROFILES``."""
    source: str

    @property
    def profile(self) -> Profile:
        return PROFILES[self.kind]


# (words the device name must contain, name, GB/s, kind, source). The entry with the most matching words
# wins, the first listed on a tie; words are matched whole, after ``_words``.
_TABLE: tuple[tuple[str, str, float, str, str], ...] = (
    # NVIDIA GeForce 50, 40, 30, 20 and 10 series
    ("5090", "GeForce RTX 5090", 1792, "gddr", NVIDIA),
    ("5080", "GeForce RTX 5080", 960, "gddr", NVIDIA),
    ("5070 ti", "GeForce RTX 5070 Ti", 896, "gddr", NVIDIA),
    ("5070", "GeForce RTX 5070", 672, "gddr", NVIDIA),
    ("5060 ti", "GeForce RTX 5060 Ti", 448, "gddr", NVIDIA),
    ("5060", "GeForce RTX 5060", 448, "gddr", NVIDIA),
    ("4090 laptop", "GeForce RTX 4090 Laptop GPU", 576, "gddr", NVIDIA),
    ("4080 laptop", "GeForce RTX 4080 Laptop GPU", 432, "gddr", NVIDIA),
    ("4070 laptop", "GeForce RTX 4070 Laptop GPU", 256, "gddr", NVIDIA),
    ("4060 laptop", "GeForce RTX 4060 Laptop GPU", 256, "gddr", NVIDIA),
    ("4090", "GeForce RTX 4090", 1008, "gddr", NVIDIA),
    ("4080 super", "GeForce RTX 4080 SUPER", 736, "gddr", NVIDIA),
    ("4080", "GeForce RTX 4080", 716.8, "gddr", NVIDIA),
    ("4070 ti super", "GeForce RTX 4070 Ti SUPER", 672, "gddr", NVIDIA),
    ("4070 ti", "GeForce RTX 4070 Ti", 504, "gddr", NVIDIA),
    ("4070 super", "GeForce RTX 4070 SUPER", 504, "gddr", NVIDIA),
    ("4070", "GeForce RTX 4070", 504, "gddr", NVIDIA),
    ("4060 ti", "GeForce RTX 4060 Ti", 288, "gddr", NVIDIA),
    ("4060", "GeForce RTX 4060", 272, "gddr", NVIDIA),
    ("3090 ti", "GeForce RTX 3090 Ti", 1008, "gddr", NVIDIA),
    ("3090", "GeForce RTX 3090", 936, "gddr", NVIDIA),
    ("3080 ti", "GeForce RTX 3080 Ti", 912, "gddr", NVIDIA),
    ("3080", "GeForce RTX 3080 (10 GB; the 12 GB card has 912)", 760, "gddr", NVIDIA),
    ("3070 ti", "GeForce RTX 3070 Ti", 608, "gddr", NVIDIA),
    ("3070", "GeForce RTX 3070", 448, "gddr", NVIDIA),
    ("3060 ti", "GeForce RTX 3060 Ti", 448, "gddr", NVIDIA),
    ("3060", "GeForce RTX 3060 (12 GB)", 360, "gddr", NVIDIA),
    ("3050", "GeForce RTX 3050", 224, "gddr", NVIDIA),
    ("2080 ti", "GeForce RTX 2080 Ti", 616, "gddr", NVIDIA),
    ("2080 super", "GeForce RTX 2080 SUPER", 496, "gddr", NVIDIA),
    ("2080", "GeForce RTX 2080", 448, "gddr", NVIDIA),
    ("2070", "GeForce RTX 2070", 448, "gddr", NVIDIA),
    ("2060", "GeForce RTX 2060", 336, "gddr", NVIDIA),
    ("1080 ti", "GeForce GTX 1080 Ti", 484, "gddr", NVIDIA),
    ("1080", "GeForce GTX 1080", 320, "gddr", NVIDIA),
    ("1070", "GeForce GTX 1070", 256, "gddr", NVIDIA),
    ("titan rtx", "TITAN RTX", 672, "gddr", NVIDIA),
    # NVIDIA workstation
    ("pro 6000 blackwell", "RTX PRO 6000 Blackwell", 1792, "gddr", NVIDIA),
    ("6000 ada", "RTX 6000 Ada Generation", 960, "gddr", NVIDIA),
    ("5000 ada", "RTX 5000 Ada Generation", 576, "gddr", NVIDIA),
    ("4000 ada", "RTX 4000 Ada Generation", 360, "gddr", NVIDIA),
    ("a6000", "RTX A6000", 768, "gddr", NVIDIA),
    ("a5000", "RTX A5000", 768, "gddr", NVIDIA),
    ("a4000", "RTX A4000", 448, "gddr", NVIDIA),
    ("rtx 6000", "Quadro RTX 6000", 672, "gddr", NVIDIA),
    # NVIDIA data centre
    ("b200", "B200", 8000, "hbm", NVIDIA),
    ("gh200", "GH200 (96 GB HBM3)", 4000, "hbm", NVIDIA),
    ("h200", "H200", 4800, "hbm", NVIDIA),
    ("h100 nvl", "H100 NVL", 3900, "hbm", NVIDIA),
    ("h100 pcie", "H100 PCIe", 2000, "hbm", NVIDIA),
    ("h100", "H100 SXM", 3350, "hbm", NVIDIA),
    ("a100 80gb pcie", "A100 80GB PCIe", 1935, "hbm", NVIDIA),
    ("a100 80gb", "A100 80GB SXM", 2039, "hbm", NVIDIA),
    ("a100", "A100 40GB", 1555, "hbm", NVIDIA),
    ("v100", "V100", 900, "hbm", NVIDIA),
    ("l40s", "L40S", 864, "gddr", NVIDIA),
    ("l40", "L40", 864, "gddr", NVIDIA),
    ("l4", "L4", 300, "gddr", NVIDIA),
    ("a10g", "A10G", 600, "gddr", NVIDIA),
    ("a10", "A10", 600, "gddr", NVIDIA),
    ("a40", "A40", 696, "gddr", NVIDIA),
    ("t4", "T4", 320, "gddr", NVIDIA),
    # AMD
    ("9070 xt", "Radeon RX 9070 XT", 640, "gddr", AMD),
    ("9070", "Radeon RX 9070", 640, "gddr", AMD),
    ("7900 xtx", "Radeon RX 7900 XTX", 960, "gddr", AMD),
    ("7900 xt", "Radeon RX 7900 XT", 800, "gddr", AMD),
    ("7900 gre", "Radeon RX 7900 GRE", 576, "gddr", AMD),
    ("7800 xt", "Radeon RX 7800 XT", 624, "gddr", AMD),
    ("7700 xt", "Radeon RX 7700 XT", 432, "gddr", AMD),
    ("7600", "Radeon RX 7600", 288, "gddr", AMD),
    ("6900 xt", "Radeon RX 6900 XT", 512, "gddr", AMD),
    ("6800 xt", "Radeon RX 6800 XT", 512, "gddr", AMD),
    ("6800", "Radeon RX 6800", 512, "gddr", AMD),
    ("6700 xt", "Radeon RX 6700 XT", 384, "gddr", AMD),
    ("w7900", "Radeon PRO W7900", 864, "gddr", AMD),
    ("mi300x", "Instinct MI300X", 5300, "hbm", AMD),
    ("mi250x", "Instinct MI250X", 3276.8, "hbm", AMD),
    ("mi210", "Instinct MI210", 1638.4, "hbm", AMD),
    ("mi100", "Instinct MI100", 1228.8, "hbm", AMD),
    ("8060s", "Radeon 8060S (Ryzen AI Max+ 395, 256-bit LPDDR5X-8000)", 256, "unified", AMD),
    # Intel
    ("a770", "Arc A770", 560, "gddr", INTEL),
    ("a750", "Arc A750", 512, "gddr", INTEL),
    ("b580", "Arc B580", 456, "gddr", INTEL),
    # Apple: the Max and Ultra with fewer GPU cores have less where noted; the lower figure is used.
    ("m1 ultra", "Apple M1 Ultra", 800, "unified", APPLE),
    ("m1 max", "Apple M1 Max", 400, "unified", APPLE),
    ("m1 pro", "Apple M1 Pro", 200, "unified", APPLE),
    ("m1", "Apple M1", 68.25, "unified", APPLE),
    ("m2 ultra", "Apple M2 Ultra", 800, "unified", APPLE),
    ("m2 max", "Apple M2 Max", 400, "unified", APPLE),
    ("m2 pro", "Apple M2 Pro", 200, "unified", APPLE),
    ("m2", "Apple M2", 100, "unified", APPLE),
    ("m3 ultra", "Apple M3 Ultra", 819, "unified", APPLE),
    ("m3 max", "Apple M3 Max (30-core GPU; the 40-core has 400)", 300, "unified", APPLE),
    ("m3 pro", "Apple M3 Pro", 150, "unified", APPLE),
    ("m3", "Apple M3", 100, "unified", APPLE),
    ("m4 max", "Apple M4 Max (32-core GPU; the 40-core has 546)", 410, "unified", APPLE),
    ("m4 pro", "Apple M4 Pro", 273, "unified", APPLE),
    ("m4", "Apple M4", 120, "unified", APPLE),
)

_NOISE = frozenset({"nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "apple", "intel", "r", "tm"})
_NOISE |= {"gpu", "graphics", "metal", "generation", "with", "gb", "core"}


def _words(name: str) -> frozenset[str]:
    """Lower-case alphanumeric words, with vendor and filler words dropped: "NVIDIA A100-SXM4-80GB" →
    {a100, sxm4, 80gb}."""
    return frozenset(w for w in re.split(r"[^0-9a-z]+", name.lower()) if w and w not in _NOISE)


def lookup_bandwidth(device_name: str) -> MemorySystem | None:
    """The memory of the GPU or chip called ``device_name`` (as NVML, ROCm or Metal report it), or None."""
    words = _words(device_name)
    best: tuple[int, int] | None = None
    for i, (key, _, _, _, _) in enumerate(_TABLE):
        need = key.split()
        if all(w in words for w in need) and (best is None or len(need) > best[0]):
            best = (len(need), i)
    if best is None:
        return None
    _, name, gbps, kind, source = _TABLE[best[1]]
    return MemorySystem(name, gbps, kind, source)


DDR_RATES = {"DDR4": (2133, 3200), "DDR5": (4800, 8000)}
"""JEDEC transfer rates (MT/s) from the slowest to the fastest standard speed."""


def host_memory(generation: str = "DDR4", mt_s: int = 3200, channels: int = 2) -> MemorySystem:
    """Host RAM: ``channels`` 64-bit channels at ``mt_s`` transfers per second. Raises ValueError."""
    generation = generation.upper()
    if generation not in DDR_RATES:
        raise ValueError(f"unknown memory generation {generation!r}; expected one of {sorted(DDR_RATES)}")
    low, high = DDR_RATES[generation]
    if not low <= mt_s <= high or not 1 <= channels <= 24:
        raise ValueError(f"{generation}-{mt_s} on {channels} channels is not a memory configuration")
    gbps = channels * 8 * mt_s / 1000
    return MemorySystem(f"{channels}-channel {generation}-{mt_s} host RAM", gbps, "cpu", JEDEC)


FILLED_CONTEXT_TOKENS = 2048
"""Tokens in the cache when a speed is quoted: a photo prompt (image tokens and text) and its answer.
llama.cpp attends over the filled cells only, so a larger context costs nothing until it fills."""

DEFAULT_HOST = host_memory()
"""Host RAM whose configuration is not known: dual-channel DDR4-3200, the slowest common desktop setup."""
UNKNOWN_GPU = MemorySystem("a GPU not in the bandwidth table (assumed RTX 3070 class)", 448, "gddr", NVIDIA)
GIVEN_GPU = MemorySystem(
    "a GPU with the memory given, of a type not known (assumed RTX 3070 class)", 448, "gddr", NVIDIA
)
"""What a VRAM figure passed as an argument stands for: a GPU of that size, which need not be this machine's."""


# ---------------------------------------------------------------------------------- bytes per token

BITS_PER_WEIGHT = {"F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.7}
BITS_PER_WEIGHT |= {"Q5_0": 5.5, "Q4_K_M": 4.85, "Q4_K_S": 4.58, "Q4_0": 4.5, "MXFP4": 4.25}
"""Bits a weight takes in llama.cpp's formats (block scales included), to size a model's expert tensors."""


def _scalar(value: Any) -> int:
    """A figure of ``model_info``; per-layer lists give their largest value."""
    if isinstance(value, list):
        value = max((v for v in value if isinstance(v, int | float)), default=0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class TokenRead:
    """Bytes read to generate one token."""

    weights_bytes: int
    kv_bytes: int
    active_parameters: int
    """Parameters a token passes through (the total for a dense model)."""

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes


def _expert_bytes(info: Mapping[str, Any], arch: str, weights: int, quantization: str) -> tuple[int, int]:
    """(bytes of the experts a token skips, parameters a token skips); zeros for a dense model."""
    experts, used = _scalar(info.get(f"{arch}.expert_count")), _scalar(info.get(f"{arch}.expert_used_count"))
    if experts <= 1 or not 0 < used < experts:
        return 0, 0
    width = _scalar(info.get(f"{arch}.embedding_length"))
    ff = _scalar(info.get(f"{arch}.expert_feed_forward_length")) or _scalar(
        info.get(f"{arch}.feed_forward_length")
    )
    layers = _scalar(info.get(f"{arch}.block_count")) - _scalar(info.get(f"{arch}.leading_dense_block_count"))
    layers //= max(1, _scalar(info.get(f"{arch}.interleave_moe_layer_step")))
    params = _scalar(info.get("general.parameter_count"))
    expert_params = 3 * width * ff * experts * max(layers, 0)  # gate, up and down projections
    if not expert_params or not params:
        return 0, 0
    bits = BITS_PER_WEIGHT.get(quantization.upper())
    # Experts keep the file's quantization while attention and embeddings are often wider (gpt-oss's
    # MXFP4 experts beside BF16 attention), so their bytes come from their size where the format is known.
    share = expert_params * bits / 8 if bits else weights * expert_params / params
    expert_bytes = min(share, weights * 0.97)
    skipped = (experts - used) / experts
    return round(expert_bytes * skipped), round(min(expert_params, params) * skipped)


def bytes_per_token(
    model_info: Mapping[str, Any],
    weights_bytes: int,
    quantization: str = "",
    *,
    kv_cache_bytes: int = 0,
    cache_tokens: int = 0,
    context_tokens: int = 0,
) -> TokenRead:
    """What generating one token reads: the weights it passes through and the KV cache of
    ``context_tokens`` tokens (``kv_cache_bytes`` holds ``cache_tokens``). A separate vision projector is
    not read while generating text and is not part of ``weights_bytes``."""
    arch = str(model_info.get("general.architecture") or "")
    skipped_bytes, skipped_params = _expert_bytes(model_info, arch, weights_bytes, quantization)
    fill = min(1.0, context_tokens / cache_tokens) if cache_tokens > 0 else 0.0
    params = _scalar(model_info.get("general.parameter_count"))
    return TokenRead(
        weights_bytes - skipped_bytes, round(kv_cache_bytes * fill), max(params - skipped_params, 0)
    )


# --------------------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Speed:
    """Generation speed of one model on one machine: estimated here, or measured (a benchmark's figure
    from Ollama's ``eval_count`` / ``eval_duration``), which replaces the estimate where there is one."""

    tokens_per_second: float
    source: str
    """``estimated`` or ``measured``."""
    basis: str
    """How the figure was had, in one line."""

    @classmethod
    def measured(cls, eval_count: int, eval_duration_ns: int, basis: str) -> Speed:
        """Ollama's own timing of a generation. Raises ValueError when there is nothing to divide."""
        if eval_count <= 0 or eval_duration_ns <= 0:
            raise ValueError("a measured speed needs eval_count > 0 and eval_duration > 0")
        return cls(round(eval_count / (eval_duration_ns / 1e9), 1), MEASURED, basis)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens_per_second": self.tokens_per_second,
            "speed_source": self.source,
            "speed_basis": self.basis,
        }


def prefer_measured(measured: Speed | None, estimated: Speed | None) -> Speed | None:
    """A measured speed wins over an estimate."""
    return measured if measured is not None else estimated


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def estimate_speed(
    read: TokenRead, gpu: MemorySystem | None, host: MemorySystem = DEFAULT_HOST, gpu_share: float = 1.0
) -> Speed:
    """Tokens per second when ``gpu_share`` of the bytes are read from ``gpu`` and the rest from ``host``
    (no ``gpu``: all from ``host``). Raises ValueError for a share outside 0–1."""
    if not 0.0 <= gpu_share <= 1.0:
        raise ValueError(f"gpu_share must be between 0 and 1, got {gpu_share}")
    share = gpu_share if gpu is not None else 0.0
    total = read.total_bytes
    seconds = 0.0
    parts = []
    for memory, part in ((gpu, share), (host, 1.0 - share)):
        if memory is None or part <= 0:
            continue
        p = memory.profile
        seconds += total * part / (memory.bandwidth_gbps * 1e9 * p.efficiency)
        where = f"{part:.0%} from " if part < 1 else ""
        parts.append(f"{where}{memory.name} ({memory.bandwidth_gbps:g} GB/s × {p.efficiency:g})")
    fixed = (gpu.profile if gpu is not None and share > 0 else host.profile).per_token_s
    seconds += fixed
    basis = (
        f"{_gb(total)} read per token ({_gb(read.weights_bytes)} weights, {_gb(read.kv_bytes)} KV cache) "
        f"at {' + '.join(parts)}, + {fixed * 1000:g} ms per token"
    )
    return Speed(round(1 / seconds, 1) if seconds > 0 else 0.0, ESTIMATED, basis)
