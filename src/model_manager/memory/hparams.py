"""What sizes a model in memory, read from Ollama's ``/api/show`` ``model_info`` (GGUF keys prefixed by the
architecture): layers, heads and head sizes per layer, sliding windows, experts, vocabulary. Pure.

Anything worked out from missing facts (a nulled per-layer array, an unknown vocabulary size, an
architecture not modelled here) is noted and flags the result ``approximate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
class Hyperparameters:
    """The facts of one model that the formulas need, per layer where llama.cpp allows it to vary.

    ``param_count`` is ``general.parameter_count`` (else the count worked out from the shape);
    ``expert_params`` the parameters in expert feed-forward tensors (0 for dense models).
    """

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
    param_count: int = 0
    expert_params: int = 0

    @property
    def embedding_params(self) -> int:
        return self.n_vocab * self.n_embd

    def tokenizer_bytes(self, model_info: Mapping[str, Any], file_bytes: int) -> int:
        """Bytes of a GGUF file taken by the tokenizer tables (no buffer holds them); at most 10% of it."""
        model = str(model_info.get("tokenizer.ggml.model") or "")
        per_token = TOKENIZER_BYTES_PER_TOKEN.get(model, 24 if model else 0)
        return min(per_token * self.n_vocab, file_bytes // 10)

    def share_of_weights(self, params: int, weights_bytes: int) -> int:
        """Bytes of ``params`` parameters, at the file's average bytes per parameter."""
        return round(weights_bytes * params / self.param_count) if self.param_count else 0


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


_READ: dict[int, tuple[Mapping[str, Any], Hyperparameters]] = {}
_READ_LIMIT = 512


def hyperparameters(model_info: Mapping[str, Any]) -> Hyperparameters:
    """The facts of ``model_info``. Raises ValueError without an architecture, block count or width.

    A planner estimates one model at many contexts: the facts of the same mapping object (treated as
    read-only, as ``Mapping`` says) are read once.
    """
    found = _READ.get(id(model_info))
    if found is not None and found[0] is model_info:
        return found[1]
    hp = _read(model_info)
    if len(_READ) >= _READ_LIMIT:
        _READ.clear()
    _READ[id(model_info)] = (model_info, hp)
    return hp


def _read(model_info: Mapping[str, Any]) -> Hyperparameters:
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
    stated = _int(model_info.get("general.parameter_count"))
    embedding = vocab * n_embd * (1 if tied else 2)
    return Hyperparameters(
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
        param_count=stated or params + embedding,
        expert_params=3 * n_embd * ff.n_ff_layer * ff.n_expert * n_layer,
    )
