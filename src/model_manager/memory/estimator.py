"""How much memory a model needs when Ollama's engine (llama.cpp's ``llama-server``) runs it. Pure: no I/O.

The estimate is the model's **footprint**: the buffers llama.cpp allocates, term by term (docs/memory.md has
the formulas and the measurements that check them):

* **weights** — the GGUF file minus its tokenizer tables, which no buffer holds. Every expert of a
  mixture-of-experts model is resident. With every layer on a GPU the token embedding stays in host RAM
  (llama.cpp keeps the input layer on the CPU); a model with tied embeddings also puts a copy of it on the GPU
  as its output layer.
* **KV cache** — per layer ``cells × (Hkv·dk + Hkv·dv)`` elements at the cache type's ggml block size.
  Ollama asks for ``num_ctx × num_parallel`` tokens; llama.cpp pads that to 256 and gives each parallel
  sequence its own stream. Sliding-window layers hold ``window + batch`` cells per sequence; MLA layers keep
  only K; shared-KV layers none.
* **graph** — llama.cpp's compute buffer for the worst-case batch of ``num_batch`` tokens (Ollama passes
  ``-b N -ub N``): the attention masks plus the largest step (without flash attention the
  ``n_kv × batch × heads`` f32 score matrix), the feed-forward step or the output logits ``batch × vocab``.
  A host-side part holds the inputs; the logits buffer (``vocab × parallel`` f32) lives in host RAM.

``total_bytes`` is the footprint on a GPU that holds the whole model — what ``ollama ps`` reports as SIZE at
100% GPU, plus a projector's weights (which Ollama's SIZE leaves out). ``host_bytes`` is the host RAM beside
it, ``cpu_only_bytes`` the footprint on a machine without a GPU. ``margin_bytes`` is what llama.cpp keeps free
on the GPU beside the model (its ``--fit`` target); it is never part of ``total_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..ollama_defaults import (
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_KV_CACHE_TYPE,
    DEFAULT_NUM_BATCH,
    DEFAULT_NUM_PARALLEL,
    EMBEDDING_NUM_BATCH,
    FA_AUTO,
    KV_CACHE_TYPE_BLOCKS,
    batch_for_context,
    fit_target_bytes,
    flash_attention_enabled,
    kv_cache_problem,
)
from ..units import GIB
from .hparams import ENCODER_ARCHITECTURES, RECURRENT_ARCHITECTURES, Hyperparameters, hyperparameters

CONTEXT_PAD = 256
"""llama.cpp pads the context, each sequence's share of it, and each sliding-window cache to 256 cells."""


@dataclass(frozen=True)
class MemoryEstimate:
    """What one model needs at one setting, in bytes, with the inputs used and how sure the estimate is."""

    weights_bytes: int
    kv_cache_bytes: int
    graph_bytes: int
    output_bytes: int
    host_bytes: int
    total_bytes: int
    margin_bytes: int
    projector_bytes: int = 0
    embedding_bytes: int = 0
    expert_bytes: int = 0
    tied_embeddings: bool = False
    context_length: int = DEFAULT_CONTEXT_LENGTH
    kv_cache_type: str = DEFAULT_KV_CACHE_TYPE
    num_parallel: int = DEFAULT_NUM_PARALLEL
    flash_attention: bool = True
    num_batch: int = DEFAULT_NUM_BATCH
    allocated_context: int = 0
    architecture: str = ""
    approximate: bool = False
    notes: tuple[str, ...] = ()

    @property
    def gpu_weights_bytes(self) -> int:
        """Weights on the GPU with every layer there: all but the token embedding, unless it is tied."""
        return self.weights_bytes - (0 if self.tied_embeddings else self.embedding_bytes)

    @property
    def cpu_only_bytes(self) -> int:
        """The footprint on a machine without a GPU: every buffer, each weight once."""
        return (
            self.weights_bytes
            + self.projector_bytes
            + self.kv_cache_bytes
            + self.graph_bytes
            + self.output_bytes
        )

    def footprint_bytes(self, *, cpu_only: bool) -> int:
        return self.cpu_only_bytes if cpu_only else self.total_bytes

    @property
    def total_gb(self) -> float:
        return self.total_bytes / GIB

    @property
    def weights_gb(self) -> float:
        return self.weights_bytes / GIB

    @property
    def kv_cache_gb(self) -> float:
        return self.kv_cache_bytes / GIB

    @property
    def graph_gb(self) -> float:
        return self.graph_bytes / GIB

    @property
    def margin_gb(self) -> float:
        return self.margin_bytes / GIB

    @property
    def cpu_only_gb(self) -> float:
        return self.cpu_only_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: bytes, GB (meaning GiB) rounded to 2 places, the inputs and the notes."""
        sizes = {
            "weights": self.weights_bytes,
            "gpu_weights": self.gpu_weights_bytes,
            "embedding": self.embedding_bytes,
            "expert": self.expert_bytes,
            "projector": self.projector_bytes,
            "kv_cache": self.kv_cache_bytes,
            "graph": self.graph_bytes,
            "output": self.output_bytes,
            "host": self.host_bytes,
            "total": self.total_bytes,
            "cpu_only": self.cpu_only_bytes,
            "margin": self.margin_bytes,
        }
        return {
            **{f"{k}_bytes": v for k, v in sizes.items()},
            **{f"{k}_gb": round(v / GIB, 2) for k, v in sizes.items()},
            "context_length": self.context_length,
            "kv_cache_type": self.kv_cache_type,
            "num_parallel": self.num_parallel,
            "flash_attention": self.flash_attention,
            "num_batch": self.num_batch,
            "allocated_context": self.allocated_context,
            "architecture": self.architecture,
            "approximate": self.approximate,
            "notes": list(self.notes),
        }


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
    def of(cls, hp: Hyperparameters, context_length: int, num_parallel: int, num_batch: int) -> _Layout:
        requested = context_length * num_parallel
        cells = _pad(_pad(requested) // num_parallel)
        batch = min(requested, num_batch)
        swa_cells = _pad(min(cells, hp.window + batch)) if hp.window else cells
        return cls(cells=cells, swa_cells=swa_cells, streams=num_parallel, batch=batch)

    def cells_of(self, hp: Hyperparameters, il: int) -> int:
        return self.swa_cells if hp.is_swa[il] else self.cells


def _attention_layers(hp: Hyperparameters) -> list[int]:
    """Layers that attend over a KV cache of their own (recurrent layers of hybrids have none)."""
    recurrent = hp.arch in RECURRENT_ARCHITECTURES
    return [i for i in range(hp.n_layer) if hp.has_kv[i] and not (recurrent and hp.n_head_kv[i] == 0)]


def _v_width_max(hp: Hyperparameters, layers: Sequence[int]) -> int:
    return max((hp.value_length[i] * hp.n_head_kv[i] for i in layers), default=0)


def _kv_per_layer(hp: Hyperparameters, layout: _Layout, kv_type: str, flash_attention: bool) -> list[int]:
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


def _graph_bytes(hp: Hyperparameters, layout: _Layout, flash_attention: bool) -> tuple[int, int]:
    """(device, host) compute buffers for the worst-case batch: the largest step of the graph plus what is
    live on the device; the inputs and the embedded batch on the host.

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
    # An encoder ends in pooling, without an output layer: no logits.
    output = 0 if hp.arch in ENCODER_ARCHITECTURES else 4 * b * (hp.n_vocab + 2 * e)
    device = max(inputs + max(attention, feed_forward), last_ff, output + inputs // 2)
    return device, inputs + 4 * b * e


def _attention_step(hp: Hyperparameters, il: int, b: int, n_kv: int, flash_attention: bool) -> int:
    """Bytes live while layer ``il`` attends: Q/K/V and the residual, plus the f32 scores without FA."""
    q = hp.n_head[il] * hp.key_length[il]
    width = 2 * hp.n_embd + q + 2 * hp.n_head_kv[il] * hp.key_length[il]
    if flash_attention:
        return 4 * b * (width + 2 * hp.n_head[il] * hp.value_length[il])
    return 4 * b * width + 4 * n_kv * b * hp.n_head[il]


def default_batch(architecture: str, context_length: int, num_parallel: int) -> int:
    """The batch Ollama would pass before any step-down: by context (512/1024/2048), or for an embedding
    encoder ``min(2048, context)``."""
    requested = context_length * num_parallel
    if architecture in ENCODER_ARCHITECTURES:
        return min(EMBEDDING_NUM_BATCH, requested)
    return batch_for_context(requested)


def _check_inputs(
    context_length: int, num_parallel: int, kv_cache_type: str, weights_bytes: int, num_batch: int | None
) -> str:
    if context_length < 1:
        raise ValueError(f"context_length must be ≥ 1, got {context_length}")
    if num_parallel < 1:
        raise ValueError(f"num_parallel must be ≥ 1, got {num_parallel}")
    if weights_bytes < 0:
        raise ValueError(f"weights_bytes must be ≥ 0, got {weights_bytes}")
    if num_batch is not None and num_batch < 1:
        raise ValueError(f"num_batch must be ≥ 1, got {num_batch}")
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
    flash_attention: bool | None = None,
    projector_bytes: int = 0,
    num_batch: int | None = None,
) -> MemoryEstimate:
    """Estimate the footprint of a model run the way Ollama runs it with llama.cpp.

    ``model_info`` is ``/api/show``'s mapping; ``weights_bytes`` the model file's size; ``context_length`` the
    per-request context (``num_ctx``), of which ``num_parallel`` slots are allocated. ``flash_attention``
    None is llama.cpp's ``auto``, what Ollama passes for a GPU that supports it (see
    ``ollama_defaults.flash_attention_mode``). ``num_batch`` None is Ollama's batch for the context before
    any step-down. ``projector_bytes`` is a vision projector's size.

    Raises ValueError for an unknown cache type, a quantised cache with flash attention off (llama.cpp
    refuses it), a context, parallelism or batch below 1, a negative size, or ``model_info`` without
    ``<arch>.block_count`` / ``<arch>.embedding_length``.
    """
    kind = _check_inputs(context_length, num_parallel, kv_cache_type, weights_bytes, num_batch)
    hp = hyperparameters(model_info)
    flash = flash_attention_enabled(FA_AUTO, hp.arch) if flash_attention is None else flash_attention
    problem = kv_cache_problem(kind, flash)
    if problem:
        raise ValueError(problem)
    batch = num_batch or default_batch(hp.arch, context_length, num_parallel)
    return _estimate(
        hp, model_info, weights_bytes, context_length, kind, num_parallel, flash, projector_bytes, batch
    )


def _estimate(
    hp: Hyperparameters,
    model_info: Mapping[str, Any],
    weights_bytes: int,
    context_length: int,
    kv_cache_type: str,
    num_parallel: int,
    flash_attention: bool,
    projector_bytes: int,
    num_batch: int,
) -> MemoryEstimate:
    notes = list(hp.notes)
    approximate = hp.approximate
    projector_bytes = max(0, projector_bytes)
    if hp.context_length and context_length > hp.context_length:
        notes.append(f"context {context_length:,} exceeds the model's trained context {hp.context_length:,}")
    if weights_bytes == 0:
        notes.append("model file size unknown; weights counted as 0")
        approximate = True
    if projector_bytes:
        notes.append("vision projector weights included; its image-encoding compute buffer is not")
    layout = _Layout.of(hp, context_length, num_parallel, num_batch)
    weights = weights_bytes - hp.tokenizer_bytes(model_info, weights_bytes)
    embedding = hp.share_of_weights(hp.embedding_params, weights)
    experts = hp.share_of_weights(hp.expert_params, weights)
    if experts:
        notes.append(
            f"mixture of experts: {experts / GIB:.1f} GB of the {weights / GIB:.1f} GB of weights are expert "
            "tensors; every expert stays in memory, though only a few run per token"
        )
    kv = sum(_kv_per_layer(hp, layout, kv_cache_type, flash_attention))
    graph, host_graph = _graph_bytes(hp, layout, flash_attention)
    encoder = hp.arch in ENCODER_ARCHITECTURES
    # The logits of each sequence (an encoder's pooled embedding instead), f32, in host memory.
    output = 4 * (hp.n_embd if encoder else hp.n_vocab) * num_parallel
    tied = hp.tied and not encoder  # an encoder has no output layer to copy the embedding into
    gpu_weights = weights - (0 if tied else embedding)
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        graph_bytes=graph,
        output_bytes=output,
        host_bytes=embedding + host_graph + output,
        total_bytes=gpu_weights + projector_bytes + kv + graph,
        margin_bytes=fit_target_bytes(projector_bytes),
        projector_bytes=projector_bytes,
        embedding_bytes=embedding,
        expert_bytes=experts,
        tied_embeddings=tied,
        context_length=context_length,
        kv_cache_type=kv_cache_type,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
        num_batch=layout.batch,
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
    flash_attention: bool | None = None,
    projector_bytes: int = 0,
    cpu_only: bool = False,
) -> int:
    """The largest per-request context whose footprint fits in ``memory_bytes`` (the GPU footprint, or the
    CPU-only one with ``cpu_only``), at Ollama's batch for each context.

    Contexts are multiples of 256 (llama.cpp allocates in those steps anyway), capped at the model's trained
    context (``<arch>.context_length``); 0 when not even 256 tokens fit. Raises ValueError as
    :func:`estimate_memory` does.
    """
    hp = hyperparameters(model_info)
    limit = hp.context_length or FALLBACK_MAX_CONTEXT

    def footprint(context: int) -> int:
        return estimate_memory(
            model_info,
            weights_bytes=weights_bytes,
            context_length=context,
            kv_cache_type=kv_cache_type,
            num_parallel=num_parallel,
            flash_attention=flash_attention,
            projector_bytes=projector_bytes,
        ).footprint_bytes(cpu_only=cpu_only)

    return largest_context(footprint, memory_bytes, limit)


def largest_context(footprint: Callable[[int], int], memory_bytes: int, limit: int) -> int:
    """Binary search over multiples of 256 up to ``limit`` for the last context whose ``footprint(context)``
    is at most ``memory_bytes``; 0 when 256 does not fit."""
    if footprint(limit) <= memory_bytes:  # the common answer for small models: one estimate
        return limit
    low, high = 0, -(-limit // CONTEXT_PAD) - 1  # fits(low) is known true (or low == 0); find the last True
    while low < high:
        mid = (low + high + 1) // 2
        if footprint(min(mid * CONTEXT_PAD, limit)) <= memory_bytes:
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
    flash_attention: bool | None = None,
    projector_bytes: int = 0,
    num_batch: int | None = None,
) -> tuple[int, int]:
    """How many of the model's transformer blocks fit in ``memory_bytes`` of GPU memory (already less the
    margin llama.cpp keeps free): ``(n_gpu, n_total)``.

    ``n_gpu == n_total`` exactly when the whole footprint fits. Otherwise the GPU first holds the compute
    graph and any projector, then whole blocks (weights + their KV cache) from the last block down, as
    llama.cpp's ``--fit`` places them; the embedding and output layer stay on the CPU. Raises ValueError as
    :func:`estimate_memory` does.
    """
    estimate = estimate_memory(
        model_info,
        weights_bytes=weights_bytes,
        context_length=context_length,
        kv_cache_type=kv_cache_type,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
        projector_bytes=projector_bytes,
        num_batch=num_batch,
    )
    hp = hyperparameters(model_info)
    if estimate.total_bytes <= memory_bytes:
        return hp.n_layer, hp.n_layer
    layout = _Layout.of(hp, context_length, num_parallel, estimate.num_batch)
    kv = _kv_per_layer(hp, layout, estimate.kv_cache_type, estimate.flash_attention)
    embedding = estimate.embedding_bytes * (1 if hp.tied else 2)  # input and output matrices
    block = max(estimate.weights_bytes - embedding, 0) // hp.n_layer
    free = memory_bytes - estimate.graph_bytes - estimate.projector_bytes
    placed = 0
    for il in reversed(range(hp.n_layer)):
        free -= block + kv[il]
        if free < 0:
            break
        placed += 1
    return min(placed, hp.n_layer - 1), hp.n_layer
