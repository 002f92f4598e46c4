"""How much memory a model needs when Ollama's engine (llama.cpp) runs it. Pure: no I/O.

The estimate follows what llama.cpp allocates, term by term (docs/memory.md has the formulas and the
measurements that check them):

* **weights** — the GGUF file minus its tokenizer tables, which never reach a device buffer. Every expert of
  a mixture-of-experts model is resident, so the file size is the right base for MoE models too.
* **KV cache** — per layer ``cells × (Hkv·dk + Hkv·dv)`` elements at the cache type's real ggml block size
  (f16 2 B, q8_0 34/32 B, q4_0 18/32 B). Ollama asks for ``num_ctx × num_parallel`` tokens; llama.cpp pads
  that to 256 and gives each parallel sequence its own stream of ``n_ctx / n_parallel`` cells. Sliding-window
  layers hold only ``window + batch`` cells per sequence; MLA layers keep only K; shared-KV layers none.
* **graph** — llama.cpp's compute buffer for the worst-case batch of 512 tokens: inputs (the attention mask)
  plus the largest of the attention step (without flash attention the ``n_kv × 512 × heads`` f32 score
  matrix), the feed-forward step and the output logits ``512 × vocab``.
* **overhead** — what Ollama keeps free per GPU (457 MiB on CUDA/ROCm) for the driver context and scratch.

An architecture this module does not know is estimated with the generic transformer formula and flagged
``approximate`` with a note; so is anything worked out from missing facts (a nulled per-layer array, an
unknown vocabulary size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..ollama_defaults import (
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_FLASH_ATTENTION,
    DEFAULT_GPU_MINIMUM_MEMORY,
    DEFAULT_KV_CACHE_TYPE,
    DEFAULT_NUM_BATCH,
    DEFAULT_NUM_PARALLEL,
)
from ..units import GIB

CONTEXT_PAD = 256
"""llama.cpp pads the context, each sequence's share of it, and each sliding-window cache to 256 cells."""

KV_CACHE_TYPE_BLOCKS: Mapping[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "q4_1": (32, 20),
    "q5_0": (32, 22),
    "q5_1": (32, 24),
    "iq4_nl": (32, 18),
}
"""(elements per block, bytes per block) of the ggml types llama.cpp accepts for the KV cache."""

SWA_PATTERNS: Mapping[str, int] = {
    "gemma2": 2,
    "gemma3": 6,
    "gemma3n": 5,
    "gpt-oss": 2,
    "gptoss": 2,
    "cohere2": 4,
    "llama4": 4,
    "olmo2": 4,
    "exaone4": 4,
}
"""Sliding-window architectures: in each group of N layers the first N-1 use the window, the last is global."""

SWA_DEFAULT_WINDOWS: Mapping[str, int] = {"gemma2": 4096, "llama4": 8192}
"""Windows llama.cpp assumes when the file does not say (llama4's is a chunk size)."""

KV_LAYERS_FROM_START: Mapping[str, int] = {"gemma3n": 20}
"""Architectures where only the first N layers own a KV cache; the rest reuse it."""


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


ENCODER_ARCHITECTURES = _names(
    "bert nomic-bert nomic-bert-moe jina-bert-v2 jina-bert-v3 modern-bert neo-bert t5encoder"
)
"""Embedding encoders run without a KV cache."""

RECURRENT_ARCHITECTURES = _names(
    """mamba mamba2 jamba falcon-h1 granitehybrid nemotron_h nemotron_h_moe plamo2 lfm2 lfm2moe qwen3next
    qwen35 qwen35moe rwkv6 rwkv6qwen2 rwkv7 arwkv7"""
)
"""Architectures with recurrent (state-space) layers; their state is approximated from ``ssm.*`` keys."""

KNOWN_ARCHITECTURES = (
    _names(
        """llama mistral3 qwen2 qwen2moe qwen2vl qwen3 qwen3moe qwen3vl qwen3vlmoe gemma gemma-embedding phi2 phi3
        phimoe starcoder starcoder2 granite granitemoe command-r deepseek deepseek2 olmo olmoe stablelm internlm2
        exaone falcon gpt2 gptneox baichuan chatglm glm4 glm4moe deci ernie4_5 ernie4_5-moe hunyuan-moe smollm3
        apertus seed_oss"""
    )
    | frozenset(SWA_PATTERNS)
    | ENCODER_ARCHITECTURES
)
"""Architectures whose cache and graph follow the formulas here (everything else is ``approximate``)."""

COMMON_VOCAB_SIZES = (
    *(32000, 32064, 32768, 49152, 50257, 50304, 65536, 92544, 100352, 128256, 131072),
    *(151936, 152064, 163840, 200064, 201088, 256000, 262144, 262208),
)
"""Vocabulary sizes of widespread tokenizers, used to read an unknown vocabulary off the parameter count."""
DEFAULT_VOCAB_SIZE = 128256
TOKENIZER_BYTES_PER_TOKEN: Mapping[str, int] = {"gpt2": 36, "llama": 24, "none": 0, "no_vocab": 0}
"""Bytes the tokenizer tables take in a GGUF file per vocabulary entry (strings, types, merges or scores)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """What one model needs at one setting, in bytes, with the inputs used and how sure the estimate is.

    ``total_bytes`` is weights + projector + KV cache + graph + overhead: memory for running the model fully
    on one GPU. llama.cpp's own buffers (what it logs) are ``engine_bytes``, which leaves out the overhead.
    """

    weights_bytes: int
    kv_cache_bytes: int
    graph_bytes: int
    overhead_bytes: int
    total_bytes: int
    projector_bytes: int = 0
    context_length: int = DEFAULT_CONTEXT_LENGTH
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE
    num_parallel: int = DEFAULT_NUM_PARALLEL
    flash_attention: bool = DEFAULT_FLASH_ATTENTION
    allocated_context: int = 0
    architecture: str = ""
    approximate: bool = False
    notes: tuple[str, ...] = ()

    @property
    def engine_bytes(self) -> int:
        """Bytes in llama.cpp's buffers: everything except the per-GPU overhead."""
        return self.total_bytes - self.overhead_bytes

    @property
    def weights_gib(self) -> float:
        return self.weights_bytes / GIB

    @property
    def kv_cache_gib(self) -> float:
        return self.kv_cache_bytes / GIB

    @property
    def graph_gib(self) -> float:
        return self.graph_bytes / GIB

    @property
    def overhead_gib(self) -> float:
        return self.overhead_bytes / GIB

    @property
    def projector_gib(self) -> float:
        return self.projector_bytes / GIB

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    def with_overhead(self, overhead_bytes: int) -> MemoryEstimate:
        """The same estimate with another fixed overhead (Metal's 512 MiB, ``OLLAMA_GPU_OVERHEAD`` added …)."""
        total = self.total_bytes - self.overhead_bytes + overhead_bytes
        return replace(self, overhead_bytes=overhead_bytes, total_bytes=total)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: bytes, GiB rounded to 2 places, the inputs and the notes."""
        return {
            "weights_bytes": self.weights_bytes,
            "projector_bytes": self.projector_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "graph_bytes": self.graph_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "weights_gib": round(self.weights_gib, 2),
            "projector_gib": round(self.projector_gib, 2),
            "kv_cache_gib": round(self.kv_cache_gib, 2),
            "graph_gib": round(self.graph_gib, 2),
            "overhead_gib": round(self.overhead_gib, 2),
            "total_gib": round(self.total_gib, 2),
            "context_length": self.context_length,
            "kv_cache_type": self.kv_cache_type,
            "num_parallel": self.num_parallel,
            "flash_attention": self.flash_attention,
            "allocated_context": self.allocated_context,
            "architecture": self.architecture,
            "approximate": self.approximate,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------------------ model facts


@dataclass(frozen=True)
class _Hyperparameters:
    """The facts of one model that the formulas need, per layer where llama.cpp allows it to vary."""

    arch: str
    n_layer: int
    n_embd: int
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    key_length: tuple[int, ...]
    value_length: tuple[int, ...]
    is_swa: tuple[bool, ...]
    has_kv: tuple[bool, ...]
    window: int
    mla: bool
    n_ff: int
    n_ff_last: int
    n_expert: int
    n_vocab: int
    tied: bool
    context_length: int
    recurrent_state_bytes: int
    notes: tuple[str, ...]
    approximate: bool


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int | float):
        return int(value)
    return default


def _per_layer(value: Any, n_layer: int) -> tuple[int, ...] | None:
    """A scalar or per-layer array as one value per layer; None when missing, nulled or the wrong length."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (int(value),) * n_layer
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == n_layer:
        return tuple(_int(v) for v in value)
    return None


class _Reader:
    """Reads ``<arch>.`` keys out of ``model_info`` and collects notes about what had to be assumed."""

    def __init__(self, model_info: Mapping[str, Any]) -> None:
        self.info = model_info
        self.arch = str(model_info.get("general.architecture") or "")
        self.notes: list[str] = []
        self.approximate = False

    def get(self, key: str) -> Any:
        return self.info.get(f"{self.arch}.{key}")

    def assume(self, note: str) -> None:
        self.notes.append(note)
        self.approximate = True


def _heads(r: _Reader, n_layer: int, n_embd: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    heads = _per_layer(r.get("attention.head_count"), n_layer)
    if heads is None:
        key_length = _int(r.get("attention.key_length")) or 128
        heads = (max(1, n_embd // key_length),) * n_layer
        r.assume(f"attention.head_count not given (a nulled per-layer array?); assumed {heads[0]} per layer")
    raw_kv = r.get("attention.head_count_kv")
    kv = _per_layer(raw_kv, n_layer)
    if kv is None:
        kv = heads
        if raw_kv is not None or f"{r.arch}.attention.head_count_kv" in r.info:
            r.assume("attention.head_count_kv not given per layer; assumed no grouped-query sharing")
    return heads, kv


def _lengths(
    r: _Reader, n_layer: int, n_embd: int, heads: tuple[int, ...], is_swa: tuple[bool, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-layer key and value head sizes: explicit lengths, per-window-type lengths, else ``n_embd / heads``."""
    first_heads = next((h for h in heads if h), 1)
    base_k = _int(r.get("attention.key_length")) or n_embd // first_heads
    base_v = (
        _int(r.get("attention.value_length")) or _int(r.get("attention.key_length")) or n_embd // first_heads
    )
    swa_k = _int(r.get("attention.key_length_swa")) or base_k
    swa_v = _int(r.get("attention.value_length_swa")) or base_v
    keys = tuple(swa_k if is_swa[i] else base_k for i in range(n_layer))
    values = tuple(swa_v if is_swa[i] else base_v for i in range(n_layer))
    return keys, values


def _sliding_window(r: _Reader, n_layer: int) -> tuple[int, tuple[bool, ...]]:
    """The window size and which layers use it (none for architectures llama.cpp runs without a window)."""
    pattern_n = SWA_PATTERNS.get(r.arch)
    window = _int(r.get("attention.sliding_window"), SWA_DEFAULT_WINDOWS.get(r.arch, 0))
    if pattern_n is None or window <= 0:
        return 0, (False,) * n_layer
    raw = r.get("attention.sliding_window_pattern")
    if isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == n_layer:
        return window, tuple(bool(v) for v in raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        pattern_n = raw
    return window, tuple(pattern_n == 0 or i % pattern_n < pattern_n - 1 for i in range(n_layer))


def _recurrent_state(r: _Reader) -> int:
    """Bytes of recurrent state per sequence and recurrent layer (Mamba-style conv + SSM state, f32)."""
    d_conv = _int(r.get("ssm.conv_kernel"))
    d_inner = _int(r.get("ssm.inner_size"))
    d_state = _int(r.get("ssm.state_size"))
    n_group = _int(r.get("ssm.group_count"), 1) or 1
    if not (d_inner and d_state):
        return 0
    return ((max(d_conv, 1) - 1) * (d_inner + 2 * n_group * d_state) + d_state * d_inner) * 4


def _vocab(r: _Reader, shape_params: int, n_embd: int) -> tuple[int, bool | None]:
    """Vocabulary size and tied embeddings: from the file, else inferred from the parameter count."""
    tokens = r.info.get("tokenizer.ggml.tokens")
    vocab = _int(r.get("vocab_size")) or (len(tokens) if isinstance(tokens, Sequence) else 0)
    params = _int(r.info.get("general.parameter_count"))
    rest = params - shape_params
    if vocab:
        tied = None if rest <= 0 else abs(rest - vocab * n_embd) < abs(rest - 2 * vocab * n_embd)
        return vocab, tied
    if rest > 0 and n_embd:
        vocab, tied = _infer_vocab(rest / n_embd)
        r.assume(f"vocabulary size not given; inferred {vocab:,} from the parameter count")
        return vocab, tied
    r.assume(f"vocabulary size not given; assumed {DEFAULT_VOCAB_SIZE:,}")
    return DEFAULT_VOCAB_SIZE, None


def _infer_vocab(embedding_rows: float) -> tuple[int, bool]:
    """``embedding_rows`` is V (tied) or 2V (separate output): pick the reading nearest a common vocab size."""
    best: tuple[float, int, bool] | None = None
    for tied, vocab in ((True, embedding_rows), (False, embedding_rows / 2)):
        for common in COMMON_VOCAB_SIZES:
            distance = abs(math.log(vocab / common))
            if best is None or distance < best[0]:
                best = (distance, common, tied)
    assert best is not None
    return best[1], best[2]


def _layer_params(n_embd: int, heads: int, kv_heads: int, dk: int, dv: int, n_ff: int, experts: int) -> int:
    """Parameters of one transformer block (attention + gated FFN or experts), norms left out."""
    attention = n_embd * heads * dk + n_embd * kv_heads * (dk + dv) + heads * dv * n_embd
    return attention + 3 * n_embd * n_ff * max(experts, 1) + n_embd * experts


@dataclass(frozen=True)
class _FeedForward:
    n_ff: int  # widest intermediate of all layers but the last (experts: per token, all used experts)
    n_ff_last: int
    n_ff_layer: int  # one expert's (or the dense) intermediate, for counting parameters
    n_expert: int


def _feed_forward(r: _Reader, n_layer: int, n_embd: int) -> _FeedForward:
    ff_layers = _per_layer(r.get("feed_forward_length"), n_layer) or (0,)
    n_ff, n_ff_last = max(ff_layers[:-1] or ff_layers), ff_layers[-1]
    n_expert = _int(r.get("expert_count"))
    if n_expert:
        n_ff_expert = _int(r.get("expert_feed_forward_length")) or n_ff
        used = n_ff_expert * max(_int(r.get("expert_used_count")), 1)
        return _FeedForward(n_ff=used, n_ff_last=used, n_ff_layer=n_ff_expert, n_expert=n_expert)
    if n_ff == 0:
        n_ff = n_ff_last = 4 * n_embd
        r.assume(f"feed_forward_length not given; assumed {n_ff}")
    return _FeedForward(n_ff=n_ff, n_ff_last=n_ff_last, n_ff_layer=n_ff, n_expert=0)


def _hyperparameters(model_info: Mapping[str, Any]) -> _Hyperparameters:
    r = _Reader(model_info)
    n_layer = _int(r.get("block_count"))
    n_embd = _int(r.get("embedding_length"))
    if not r.arch or n_layer <= 0 or n_embd <= 0:
        raise ValueError(f"model_info lacks general.architecture, {r.arch}.block_count or .embedding_length")
    if r.arch not in KNOWN_ARCHITECTURES | RECURRENT_ARCHITECTURES:
        r.assume(f"architecture {r.arch!r} is not modelled; used the generic transformer formula")
    heads, kv_heads = _heads(r, n_layer, n_embd)
    window, is_swa = _sliding_window(r, n_layer)
    keys, values = _lengths(r, n_layer, n_embd, heads, is_swa)
    shared = _int(r.get("attention.shared_kv_layers"))
    kv_from_start = n_layer - shared if shared else KV_LAYERS_FROM_START.get(r.arch, n_layer)
    has_kv = tuple(i < kv_from_start and r.arch not in ENCODER_ARCHITECTURES for i in range(n_layer))
    recurrent = r.arch in RECURRENT_ARCHITECTURES
    if recurrent:
        r.assume("recurrent layers: state size approximated from ssm.* keys")
    ff = _feed_forward(r, n_layer, n_embd)
    params = sum(
        _layer_params(n_embd, heads[i], kv_heads[i], keys[i], values[i], ff.n_ff_layer, ff.n_expert)
        for i in range(n_layer)
    )
    vocab, tied = _vocab(r, params, n_embd)
    if r.arch in ENCODER_ARCHITECTURES:
        r.notes.append("embedding encoder: no KV cache")
    return _Hyperparameters(
        arch=r.arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=heads,
        n_head_kv=kv_heads,
        key_length=keys,
        value_length=values,
        is_swa=is_swa,
        has_kv=has_kv,
        window=window,
        mla=bool(_int(r.get("attention.key_length_mla")) and _int(r.get("attention.value_length_mla"))),
        n_ff=ff.n_ff,
        n_ff_last=ff.n_ff_last,
        n_expert=ff.n_expert,
        n_vocab=vocab,
        tied=bool(tied),
        context_length=_int(r.get("context_length")),
        recurrent_state_bytes=_recurrent_state(r) if recurrent else 0,
        notes=tuple(r.notes),
        approximate=r.approximate,
    )


# ------------------------------------------------------------------------------------------ the estimate


def _pad(n: int) -> int:
    return -(-n // CONTEXT_PAD) * CONTEXT_PAD


def _row_bytes(kv_type: str, elements: int) -> int:
    block, size = KV_CACHE_TYPE_BLOCKS[kv_type]
    return -(-elements // block) * size


@dataclass(frozen=True)
class _Layout:
    """How llama.cpp lays out the cache for one request: cells per sequence stream, streams, batch."""

    cells: int
    swa_cells: int
    streams: int
    batch: int

    @classmethod
    def of(cls, hp: _Hyperparameters, context_length: int, num_parallel: int) -> _Layout:
        requested = context_length * num_parallel
        cells = _pad(_pad(requested) // num_parallel)
        batch = min(requested, DEFAULT_NUM_BATCH)
        swa_cells = _pad(min(cells, hp.window + batch)) if hp.window else cells
        return cls(cells=cells, swa_cells=swa_cells, streams=num_parallel, batch=batch)

    def cells_of(self, hp: _Hyperparameters, il: int) -> int:
        return self.swa_cells if hp.is_swa[il] else self.cells


def _attention_layers(hp: _Hyperparameters) -> list[int]:
    """Layers that attend over a KV cache of their own (recurrent layers of hybrids have none)."""
    recurrent = hp.arch in RECURRENT_ARCHITECTURES
    return [i for i in range(hp.n_layer) if hp.has_kv[i] and not (recurrent and hp.n_head_kv[i] == 0)]


def _v_width_max(hp: _Hyperparameters, layers: Sequence[int]) -> int:
    return max((hp.value_length[i] * hp.n_head_kv[i] for i in layers), default=0)


def _kv_per_layer(hp: _Hyperparameters, layout: _Layout, kv_type: str, flash_attention: bool) -> list[int]:
    """Bytes of the KV cache (or recurrent state) each layer holds, for every sequence stream.

    Without flash attention llama.cpp stores V transposed, and then every layer's V is as wide as the widest.
    """
    layers = set(_attention_layers(hp))
    v_max = _v_width_max(hp, sorted(layers))
    recurrent = hp.arch in RECURRENT_ARCHITECTURES
    sizes = []
    for il in range(hp.n_layer):
        if il not in layers:
            sizes.append(hp.recurrent_state_bytes * layout.streams if recurrent else 0)
            continue
        cells = layout.cells_of(hp, il) * layout.streams
        size = _row_bytes(kv_type, hp.key_length[il] * hp.n_head_kv[il]) * cells
        if not hp.mla:
            v_width = hp.value_length[il] * hp.n_head_kv[il] if flash_attention else v_max
            size += _row_bytes(kv_type, v_width) * cells
        sizes.append(size)
    return sizes


def _graph_bytes(hp: _Hyperparameters, layout: _Layout, flash_attention: bool) -> int:
    """llama.cpp's compute buffer for the worst-case batch: the largest step of the graph plus what is live.

    The inputs (the attention masks above all) stay allocated until the last layer's attention, so they add
    to every attention step and to the feed-forward step of all but the last layer. At the output step they
    are free, but whether the allocator can put the logits into their space depends on where the last
    residual landed: measured layouts go both ways, so half of the inputs is counted there.
    """
    b, e = layout.batch, hp.n_embd
    layers = _attention_layers(hp) or list(range(hp.n_layer))
    n_kv = {i: layout.cells_of(hp, i) if hp.has_kv[i] else b for i in layers}
    inputs = sum(set(n_kv.values())) * b * (2 if flash_attention else 4)
    if not flash_attention:
        inputs += b * _v_width_max(hp, layers) * 8  # row indices for the transposed V store
    attention = max(_attention_step(hp, il, b, n_kv[il], flash_attention) for il in layers)
    feed_forward = 4 * b * (4 * e + 3 * hp.n_ff + 2 * hp.n_expert)
    last_ff = 4 * b * (4 * e + 3 * hp.n_ff_last + 2 * hp.n_expert)
    output = 4 * b * (hp.n_vocab + 2 * e)
    host_logits = 4 * hp.n_vocab * layout.streams
    return max(inputs + max(attention, feed_forward), last_ff, output + inputs // 2) + host_logits


def _attention_step(hp: _Hyperparameters, il: int, b: int, n_kv: int, flash_attention: bool) -> int:
    """Bytes live while layer ``il`` attends: Q/K/V and the residual, plus the f32 scores without FA."""
    q = hp.n_head[il] * hp.key_length[il]
    width = 2 * hp.n_embd + q + 2 * hp.n_head_kv[il] * hp.key_length[il]
    if flash_attention:
        return 4 * b * (width + 2 * hp.n_head[il] * hp.value_length[il])
    return 4 * b * width + 4 * n_kv * b * hp.n_head[il]


def _tokenizer_bytes(model_info: Mapping[str, Any], hp: _Hyperparameters, file_bytes: int) -> int:
    """Bytes of a GGUF file taken by the tokenizer tables (no device holds them); at most 10% of the file."""
    model = str(model_info.get("tokenizer.ggml.model") or "")
    per_token = TOKENIZER_BYTES_PER_TOKEN.get(model, 24 if model else 0)
    return min(per_token * hp.n_vocab, file_bytes // 10)


def _check_inputs(context_length: int, num_parallel: int, kv_cache_type: str, weights_bytes: int) -> str:
    if context_length < 1:
        raise ValueError(f"context_length must be ≥ 1, got {context_length}")
    if num_parallel < 1:
        raise ValueError(f"num_parallel must be ≥ 1, got {num_parallel}")
    if weights_bytes < 0:
        raise ValueError(f"weights_bytes must be ≥ 0, got {weights_bytes}")
    kind = kv_cache_type.strip().lower()
    if kind not in KV_CACHE_TYPE_BLOCKS:
        raise ValueError(
            f"unknown KV cache type {kv_cache_type!r}; expected one of {', '.join(KV_CACHE_TYPE_BLOCKS)}"
        )
    return kind


def estimate_memory(
    model_info: Mapping[str, Any],
    *,
    weights_bytes: int,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE,
    num_parallel: int = DEFAULT_NUM_PARALLEL,
    flash_attention: bool = DEFAULT_FLASH_ATTENTION,
    projector_bytes: int = 0,
) -> MemoryEstimate:
    """Estimate the memory to run a model fully on one GPU, the way llama.cpp allocates it under Ollama.

    ``model_info`` is ``/api/show``'s mapping; ``weights_bytes`` the model file's size; ``context_length`` the
    per-request context (``num_ctx``), of which ``num_parallel`` slots are allocated. A quantised
    ``kv_cache_type`` only applies with ``flash_attention``, as in Ollama; otherwise f16 is used and a note
    says so. ``projector_bytes`` is a vision projector's file size.

    Raises ValueError for an unknown cache type, a context or parallelism below 1, a negative size, or
    ``model_info`` without ``<arch>.block_count`` / ``<arch>.embedding_length``.
    """
    kind = _check_inputs(context_length, num_parallel, kv_cache_type, weights_bytes)
    return _estimate(
        _hyperparameters(model_info),
        model_info,
        weights_bytes=weights_bytes,
        context_length=context_length,
        kv_cache_type=kind,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
        projector_bytes=max(0, projector_bytes),
    )


def _estimate(
    hp: _Hyperparameters,
    model_info: Mapping[str, Any],
    *,
    weights_bytes: int,
    context_length: int,
    kv_cache_type: str,
    num_parallel: int,
    flash_attention: bool,
    projector_bytes: int,
) -> MemoryEstimate:
    notes = list(hp.notes)
    approximate = hp.approximate
    kind = kv_cache_type
    if kind != "f16" and not flash_attention:
        notes.append(f"{kind} KV cache needs flash attention; Ollama runs it as f16")
        kind = "f16"
    if hp.context_length and context_length > hp.context_length:
        notes.append(f"context {context_length:,} exceeds the model's trained context {hp.context_length:,}")
    if weights_bytes == 0:
        notes.append("model file size unknown; weights counted as 0")
        approximate = True
    if projector_bytes:
        notes.append("vision projector weights included; its image-encoding compute buffer is not")
    layout = _Layout.of(hp, context_length, num_parallel)
    weights = weights_bytes - _tokenizer_bytes(model_info, hp, weights_bytes)
    kv = sum(_kv_per_layer(hp, layout, kind, flash_attention))
    graph = _graph_bytes(hp, layout, flash_attention)
    overhead = DEFAULT_GPU_MINIMUM_MEMORY
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        graph_bytes=graph,
        overhead_bytes=overhead,
        total_bytes=weights + projector_bytes + kv + graph + overhead,
        projector_bytes=projector_bytes,
        context_length=context_length,
        kv_cache_type=kind,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
        allocated_context=layout.cells * layout.streams,
        architecture=hp.arch,
        approximate=approximate,
        notes=tuple(notes),
    )


# ------------------------------------------------------------------------------------------ inverses

FALLBACK_MAX_CONTEXT = 131072
"""Upper bound for :func:`max_context_for` when the model does not state its trained context."""


def max_context_for(
    model_info: Mapping[str, Any],
    *,
    weights_bytes: int,
    memory_bytes: int,
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE,
    num_parallel: int = DEFAULT_NUM_PARALLEL,
    flash_attention: bool = DEFAULT_FLASH_ATTENTION,
    projector_bytes: int = 0,
) -> int:
    """The largest per-request context whose :func:`estimate_memory` total fits in ``memory_bytes``.

    Contexts are multiples of 256 (llama.cpp allocates in those steps anyway), capped at the model's trained
    context (``<arch>.context_length``); 0 when not even 256 tokens fit. Raises ValueError as
    :func:`estimate_memory` does.
    """
    kind = _check_inputs(1, num_parallel, kv_cache_type, weights_bytes)
    hp = _hyperparameters(model_info)
    limit = hp.context_length or FALLBACK_MAX_CONTEXT

    def fits(steps: int) -> bool:
        estimate = _estimate(
            hp,
            model_info,
            weights_bytes=weights_bytes,
            context_length=min(steps * CONTEXT_PAD, limit),
            kv_cache_type=kind,
            num_parallel=num_parallel,
            flash_attention=flash_attention,
            projector_bytes=max(0, projector_bytes),
        )
        return estimate.total_bytes <= memory_bytes

    low, high = 0, -(-limit // CONTEXT_PAD)  # fits(low) is known true (or low == 0); find the last True
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return min(low * CONTEXT_PAD, limit)


def layers_on_gpu(
    model_info: Mapping[str, Any],
    weights_bytes: int,
    memory_bytes: int,
    *,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE,
    num_parallel: int = DEFAULT_NUM_PARALLEL,
    flash_attention: bool = DEFAULT_FLASH_ATTENTION,
    projector_bytes: int = 0,
) -> tuple[int, int]:
    """How many of the model's transformer blocks fit in ``memory_bytes`` of GPU memory: ``(n_gpu, n_total)``.

    ``n_gpu == n_total`` exactly when the whole :func:`estimate_memory` total fits. Otherwise the GPU first
    holds the overhead, the compute graph and any projector, then whole blocks (weights + their KV cache),
    as Ollama offloads them; the token embedding and output layer stay on the CPU. Raises ValueError as
    :func:`estimate_memory` does.
    """
    kind = _check_inputs(context_length, num_parallel, kv_cache_type, weights_bytes)
    hp = _hyperparameters(model_info)
    estimate = _estimate(
        hp,
        model_info,
        weights_bytes=weights_bytes,
        context_length=context_length,
        kv_cache_type=kind,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
        projector_bytes=max(0, projector_bytes),
    )
    if estimate.total_bytes <= memory_bytes:
        return hp.n_layer, hp.n_layer
    layout = _Layout.of(hp, context_length, num_parallel)
    kv = _kv_per_layer(hp, layout, estimate.kv_cache_type, flash_attention)
    block = _block_weights(hp, model_info, estimate.weights_bytes)
    free = memory_bytes - estimate.overhead_bytes - estimate.graph_bytes - estimate.projector_bytes
    placed = 0
    for il in reversed(range(hp.n_layer)):
        free -= block + kv[il]
        if free < 0:
            break
        placed += 1
    return min(placed, hp.n_layer - 1), hp.n_layer


def _block_weights(hp: _Hyperparameters, model_info: Mapping[str, Any], weights: int) -> int:
    """Bytes of one transformer block: the weights less the embedding and output matrices, spread evenly."""
    params = _int(model_info.get("general.parameter_count"))
    embedding_params = hp.n_vocab * hp.n_embd * (1 if hp.tied else 2)
    if params > embedding_params:
        weights = round(weights * (1 - embedding_params / params))
    return max(weights, 0) // hp.n_layer
