"""The memory estimator and Ollama's defaults, without an engine (tests/test_memory_engine.py has those).

Expected numbers are worked out here from the formulas in docs/memory.md (KV = cells × layers ×
(K + V width) × bytes per element), not read back from the code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_manager.memory import (
    MemoryEstimate,
    estimate_memory,
    layers_on_gpu,
    max_context_for,
)
from model_manager.ollama_defaults import (
    DEFAULT_GPU_MINIMUM_MEMORY,
    GPU_MINIMUM_MEMORY,
    RuntimeSettings,
    default_context_length,
    effective_kv_cache_type,
    flash_attention_for,
    runtime_settings,
)

MIB = 1 << 20
GIB = 1 << 30

# llama3.1:8b as Ollama's non-verbose /api/show returns it (Q4_K_M, 4.92 GB file); no vocab_size key.
LLAMA31_8B: dict[str, Any] = {
    "general.architecture": "llama",
    "general.parameter_count": 8030261248,
    "llama.block_count": 32,
    "llama.context_length": 131072,
    "llama.embedding_length": 4096,
    "llama.feed_forward_length": 14336,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
    "llama.rope.dimension_count": 128,
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.tokens": None,
    "tokenizer.ggml.merges": None,
}
LLAMA31_8B_FILE = 4_920_734_016

# qwen3:8b as /api/show reports it (explicit key/value lengths, 151,936-token vocabulary).
QWEN3_8B: dict[str, Any] = {
    "general.architecture": "qwen3",
    "general.parameter_count": 8190735360,
    "qwen3.block_count": 36,
    "qwen3.context_length": 40960,
    "qwen3.embedding_length": 4096,
    "qwen3.feed_forward_length": 12288,
    "qwen3.attention.head_count": 32,
    "qwen3.attention.head_count_kv": 8,
    "qwen3.attention.key_length": 128,
    "qwen3.attention.value_length": 128,
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.tokens": None,
}


def tiny(arch: str = "llama", **keys: Any) -> dict[str, Any]:
    """A small transformer's model_info: 4 layers, 512 wide, 8 heads, 2 KV heads, 4096-token vocabulary."""
    info: dict[str, Any] = {
        "general.architecture": arch,
        f"{arch}.block_count": 4,
        f"{arch}.embedding_length": 512,
        f"{arch}.feed_forward_length": 1024,
        f"{arch}.attention.head_count": 8,
        f"{arch}.attention.head_count_kv": 2,
        f"{arch}.context_length": 32768,
        f"{arch}.vocab_size": 4096,
    }
    info.update(
        {f"{arch}.{k}" if not k.startswith(("general.", "tokenizer.")) else k: v for k, v in keys.items()}
    )
    return info


def est(info: dict[str, Any], **kwargs: Any) -> MemoryEstimate:
    kwargs.setdefault("weights_bytes", 100 * MIB)
    return estimate_memory(info, **kwargs)


def f16_kv(layers: int, kv_heads: int, head_dim: int, cells: int) -> int:
    """K and V at 2 bytes per element."""
    return layers * cells * 2 * kv_heads * head_dim * 2


# --------------------------------------------------------------------------------------------- worked examples


def test_llama31_8b_at_4k_needs_about_five_and_a_half_gib() -> None:
    e = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=4096)
    assert e.kv_cache_bytes == f16_kv(32, 8, 128, 4096) == 512 * MIB
    assert 4.5 < e.weights_gib < 4.6  # file size less ~5 MB of tokenizer tables
    assert e.weights_gib + e.kv_cache_gib == pytest.approx(5.08, abs=0.01)  # the "about 5 GiB"
    assert e.overhead_bytes == 457 * MIB
    assert 5.5 < e.total_gib < 6.0


def test_llama31_8b_at_64k_needs_about_thirteen_gib_with_flash_attention() -> None:
    e = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=65536, flash_attention=True)
    assert e.kv_cache_bytes == 8 * GIB
    assert 12.8 < e.total_gib < 13.6


def test_llama31_8b_at_64k_without_flash_attention_pays_for_the_score_matrix() -> None:
    e = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=65536)
    scores = 65536 * 512 * 32 * 4  # n_kv × batch × heads × f32
    assert scores == 4 * GIB
    assert scores < e.graph_bytes < scores + 400 * MIB
    assert e.total_gib > 17


def test_unknown_vocabulary_is_read_off_the_parameter_count() -> None:
    e = estimate_memory(QWEN3_8B, weights_bytes=5_200_000_000, context_length=8192)
    assert e.approximate
    assert any("151,936" in note for note in e.notes)
    with_vocab = estimate_memory({**QWEN3_8B, "qwen3.vocab_size": 151936}, weights_bytes=5_200_000_000)
    assert not with_vocab.approximate


def test_estimate_reports_inputs_and_serialises() -> None:
    e = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=8192, num_parallel=2)
    data = json.loads(json.dumps(e.to_dict()))
    assert data["context_length"] == 8192
    assert data["num_parallel"] == 2
    assert data["allocated_context"] == 16384
    assert data["total_bytes"] == e.weights_bytes + e.kv_cache_bytes + e.graph_bytes + e.overhead_bytes
    assert data["total_gib"] == round(e.total_bytes / GIB, 2)
    assert e.engine_bytes == e.total_bytes - e.overhead_bytes


# --------------------------------------------------------------------------------------------- the KV cache


@pytest.mark.parametrize(
    ("heads", "kv_heads", "context", "expected"),
    [
        (8, 8, 4096, f16_kv(4, 8, 64, 4096)),  # no grouping
        (8, 2, 4096, f16_kv(4, 2, 64, 4096)),  # 4 query heads per KV head
        (8, 1, 4096, f16_kv(4, 1, 64, 4096)),  # multi-query
        (8, 2, 1000, f16_kv(4, 2, 64, 1024)),  # padded to 256 cells
        (8, 2, 100, f16_kv(4, 2, 64, 256)),
    ],
)
def test_kv_cache_follows_grouped_query_attention(
    heads: int, kv_heads: int, context: int, expected: int
) -> None:
    info = tiny(**{"attention.head_count": heads, "attention.head_count_kv": kv_heads})
    assert est(info, context_length=context).kv_cache_bytes == expected


def test_missing_kv_head_count_means_one_kv_head_per_head() -> None:
    info = tiny()
    del info["llama.attention.head_count_kv"]
    e = est(info, context_length=2048)
    assert e.kv_cache_bytes == f16_kv(4, 8, 64, 2048)
    assert not e.approximate


def test_explicit_key_and_value_lengths_size_the_cache() -> None:
    info = tiny(**{"attention.key_length": 192, "attention.value_length": 128})
    expected = 4 * 2048 * 2 * 2 * (192 + 128)
    assert est(info, context_length=2048, flash_attention=True).kv_cache_bytes == expected


@pytest.mark.parametrize(("kind", "per_32"), [("f16", 64), ("q8_0", 34), ("q4_0", 18)])
def test_kv_cache_types_use_ggml_block_sizes(kind: str, per_32: int) -> None:
    e = est(tiny(), context_length=4096, kv_cache_type=kind, flash_attention=True)
    elements = 4 * 4096 * 2 * 2 * 64
    assert e.kv_cache_bytes == elements // 32 * per_32
    assert e.kv_cache_type == kind


def test_quantised_kv_cache_needs_flash_attention() -> None:
    e = est(tiny(), context_length=4096, kv_cache_type="q8_0", flash_attention=False)
    assert e.kv_cache_type == "f16"
    assert e.kv_cache_bytes == f16_kv(4, 2, 64, 4096)
    assert any("flash attention" in note for note in e.notes)


def test_parallel_slots_multiply_the_context() -> None:
    one = est(tiny(), context_length=8192)
    four = est(tiny(), context_length=2048, num_parallel=4)
    assert four.kv_cache_bytes == one.kv_cache_bytes
    assert four.allocated_context == one.allocated_context == 8192
    # Each sequence attends only over its own 2,048 cells, so the score matrix is a quarter as big.
    assert four.graph_bytes < one.graph_bytes


def test_parallel_slots_each_get_a_padded_share() -> None:
    e = est(tiny(), context_length=300, num_parallel=3)  # 900 → 1024 cells → 341 per slot → 512 each
    assert e.allocated_context == 3 * 512


def test_per_layer_head_counts_are_summed_layer_by_layer() -> None:
    info = tiny("deci", **{"attention.head_count": [8, 8, 0, 8], "attention.head_count_kv": [2, 4, 0, 8]})
    e = est(info, context_length=2048, flash_attention=True)
    assert e.kv_cache_bytes == 2048 * 2 * 2 * 64 * (2 + 4 + 0 + 8)
    assert not e.approximate


def test_without_flash_attention_every_v_row_is_as_wide_as_the_widest() -> None:
    # llama.cpp stores V transposed then, sized by the widest layer (measured: tests/test_memory_engine.py).
    info = tiny("deci", **{"attention.head_count": [8, 8, 0, 8], "attention.head_count_kv": [2, 4, 0, 8]})
    e = est(info, context_length=2048, flash_attention=False)
    keys = 2048 * 2 * 64 * (2 + 4 + 0 + 8)
    values = 4 * 2048 * 2 * 64 * 8
    assert e.kv_cache_bytes == keys + values


def test_nulled_per_layer_arrays_give_an_approximate_estimate() -> None:
    info = tiny("deci", **{"attention.head_count": None, "attention.head_count_kv": None})
    e = est(info)
    assert e.approximate
    assert any("head_count" in note for note in e.notes)
    assert e.kv_cache_bytes > 0


@pytest.mark.parametrize(
    ("arch", "window", "pattern", "swa_layers"),
    [
        ("gemma3", 1024, None, 10),  # 5 windowed + 1 global in each 6
        ("gemma2", 1024, None, 6),  # every other layer
        ("gptoss", 128, None, 6),  # Ollama's spelling of gpt-oss
        ("cohere2", 4096, None, 9),  # 3 windowed + 1 global in each 4
        ("gemma3", 1024, 3, 8),  # sliding_window_pattern given as an int
        ("gemma3", 1024, [True, False] * 3 + [False] * 6, 3),  # given per layer
    ],
)
def test_sliding_window_layers_hold_window_plus_batch(
    arch: str, window: int, pattern: Any, swa_layers: int
) -> None:
    keys: dict[str, Any] = {"block_count": 12, "attention.sliding_window": window, "attention.key_length": 64}
    if pattern is not None:
        keys["attention.sliding_window_pattern"] = pattern
    e = est(tiny(arch, **keys), context_length=32768, flash_attention=True)
    per_cell = 2 * 2 * 64 * 2  # K + V, 2 KV heads of 64, f16
    swa_cells = -(-(window + 512) // 256) * 256
    assert e.kv_cache_bytes == per_cell * (swa_layers * swa_cells + (12 - swa_layers) * 32768)


def test_sliding_window_is_per_sequence() -> None:
    info = tiny("gemma3", **{"block_count": 6, "attention.sliding_window": 1024, "attention.key_length": 64})
    e = est(info, context_length=8192, num_parallel=4, flash_attention=True)
    per_cell = 2 * 2 * 64 * 2
    assert e.kv_cache_bytes == per_cell * 4 * (5 * 1536 + 1 * 8192)


def test_sliding_window_is_ignored_where_llama_cpp_ignores_it() -> None:
    plain = est(tiny(), context_length=16384)
    assert (
        est(tiny(**{"attention.sliding_window": 4096}), context_length=16384).kv_cache_bytes
        == plain.kv_cache_bytes
    )


def test_mla_caches_only_the_compressed_keys() -> None:
    info = tiny(
        "deepseek2",
        **{
            "attention.head_count_kv": 1,
            "attention.key_length": 576,
            "attention.value_length": 512,
            "attention.key_length_mla": 192,
            "attention.value_length_mla": 128,
            "attention.kv_lora_rank": 512,
        },
    )
    assert est(info, context_length=4096, flash_attention=True).kv_cache_bytes == 4 * 4096 * 576 * 2


def test_shared_kv_layers_hold_no_cache() -> None:
    info = tiny("gemma3", **{"block_count": 6, "attention.shared_kv_layers": 2})
    full = est(tiny("gemma3", **{"block_count": 6}), context_length=4096, flash_attention=True)
    assert est(info, context_length=4096, flash_attention=True).kv_cache_bytes == full.kv_cache_bytes * 4 // 6


def test_encoders_have_no_kv_cache() -> None:
    e = est(tiny("bert"), context_length=512)
    assert e.kv_cache_bytes == 0
    assert any("no KV cache" in note for note in e.notes)


# --------------------------------------------------------------------------------------------- other terms


def test_weights_are_the_file_less_its_tokenizer_tables() -> None:
    with_bpe = est(tiny(**{"tokenizer.ggml.model": "gpt2"}), weights_bytes=500 * MIB)
    without = est(tiny(**{"tokenizer.ggml.model": "none"}), weights_bytes=500 * MIB)
    assert without.weights_bytes == 500 * MIB
    assert 500 * MIB - with_bpe.weights_bytes == 4096 * 36


def test_moe_weights_count_every_expert_and_the_graph_only_the_used_ones() -> None:
    moe = tiny(**{"expert_count": 8, "expert_used_count": 2, "expert_feed_forward_length": 4096})
    dense = tiny(**{"feed_forward_length": 4096 * 8})
    e_moe, e_dense = est(moe, weights_bytes=GIB), est(dense, weights_bytes=GIB)
    assert e_moe.weights_bytes == e_dense.weights_bytes == GIB
    assert e_moe.graph_bytes < e_dense.graph_bytes


def test_projector_adds_its_weights() -> None:
    plain = est(tiny())
    vision = est(tiny(), projector_bytes=600 * MIB)
    assert vision.total_bytes - plain.total_bytes == 600 * MIB
    assert vision.to_dict()["projector_bytes"] == 600 * MIB
    assert any("projector" in note for note in vision.notes)


def test_flash_attention_drops_the_score_matrix() -> None:
    no_fa = est(tiny(), context_length=32768)
    fa = est(tiny(), context_length=32768, flash_attention=True)
    assert no_fa.graph_bytes - fa.graph_bytes >= 32768 * 512 * 8 * 4 * 0.9


def test_output_step_counts_logits_and_half_the_mask() -> None:
    # A 128k vocabulary makes the output step the largest; the f16 mask is freed by then, and the allocator
    # reuses its space only sometimes (docs/memory.md), so half of it is counted.
    info = tiny(**{"vocab_size": 131072})
    e = est(info, context_length=8192, flash_attention=True)
    logits = 4 * 512 * (131072 + 2 * 512)
    mask = 8192 * 512 * 2
    assert e.graph_bytes == logits + mask // 2 + 4 * 131072


def test_with_overhead_swaps_the_fixed_reserve() -> None:
    e = est(tiny())
    metal = e.with_overhead(GPU_MINIMUM_MEMORY["metal"])
    assert metal.total_bytes - e.total_bytes == 512 * MIB - DEFAULT_GPU_MINIMUM_MEMORY
    assert metal.engine_bytes == e.engine_bytes


def test_unknown_architecture_uses_the_generic_formula() -> None:
    e = est(tiny("brandnewarch"), context_length=4096)
    assert e.approximate
    assert any("'brandnewarch' is not modelled" in note for note in e.notes)
    known = est(tiny(), context_length=4096)
    assert (e.kv_cache_bytes, e.graph_bytes) == (known.kv_cache_bytes, known.graph_bytes)


def test_recurrent_architectures_are_approximate() -> None:
    info = tiny(
        "jamba",
        **{
            "attention.head_count_kv": [0, 0, 0, 2],
            "ssm.conv_kernel": 4,
            "ssm.inner_size": 1024,
            "ssm.state_size": 16,
        },
    )
    e = est(info, context_length=4096, flash_attention=True)
    assert e.approximate
    state = ((4 - 1) * (1024 + 2 * 16) + 16 * 1024) * 4
    assert e.kv_cache_bytes == 3 * state + 4096 * 2 * 2 * 64 * 2


def test_context_beyond_training_is_noted() -> None:
    e = est(tiny(), context_length=65536)
    assert any("exceeds the model's trained context 32,768" in note for note in e.notes)
    assert not e.approximate


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"context_length": 0}, "context_length"),
        ({"num_parallel": 0}, "num_parallel"),
        ({"kv_cache_type": "q3_k"}, "unknown KV cache type"),
        ({"weights_bytes": -1}, "weights_bytes"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        est(tiny(), **kwargs)


def test_model_info_without_the_basics_is_refused() -> None:
    with pytest.raises(ValueError, match="block_count"):
        est({"general.architecture": "llama", "llama.context_length": 4096})


# --------------------------------------------------------------------------------------------- inverses


@pytest.mark.parametrize("memory_gib", [5.5, 6, 8, 12, 16])
@pytest.mark.parametrize(("fa", "kind"), [(False, "f16"), (True, "q8_0")])
def test_max_context_fits_and_the_next_step_does_not(memory_gib: float, fa: bool, kind: str) -> None:
    budget = int(memory_gib * GIB)
    kwargs: dict[str, Any] = {"weights_bytes": LLAMA31_8B_FILE, "kv_cache_type": kind, "flash_attention": fa}
    ctx = max_context_for(LLAMA31_8B, memory_bytes=budget, **kwargs)
    assert ctx % 256 == 0
    assert estimate_memory(LLAMA31_8B, context_length=ctx, **kwargs).total_bytes <= budget
    if ctx < 131072:
        assert estimate_memory(LLAMA31_8B, context_length=ctx + 256, **kwargs).total_bytes > budget


def test_max_context_is_capped_at_the_trained_context() -> None:
    assert max_context_for(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, memory_bytes=200 * GIB) == 131072
    odd = tiny(**{"context_length": 1000})
    assert max_context_for(odd, weights_bytes=MIB, memory_bytes=100 * GIB) == 1000


def test_max_context_is_zero_when_nothing_fits() -> None:
    assert max_context_for(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, memory_bytes=4 * GIB) == 0


def test_layers_on_gpu_all_when_the_whole_model_fits() -> None:
    need = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE).total_bytes
    assert layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, need) == (32, 32)
    assert layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, need - 1)[0] < 32


def test_layers_on_gpu_partial_and_none() -> None:
    n_gpu, total = layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 4 * GIB)
    assert total == 32
    # 4 GiB − 457 MiB overhead − ~0.3 GiB graph ≈ 3.25 GiB for blocks of ~126 MiB weights + 16 MiB KV.
    assert 20 <= n_gpu <= 26
    assert layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 256 * MIB) == (0, 32)


def test_layers_on_gpu_fewer_at_longer_context() -> None:
    short = layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 6 * GIB, context_length=4096)
    long = layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 6 * GIB, context_length=32768)
    assert long[0] < short[0]


# --------------------------------------------------------------------------------------------- properties

contexts = st.integers(min_value=1, max_value=200_000)
parallels = st.integers(min_value=1, max_value=8)
kinds = st.sampled_from(["f16", "q8_0", "q4_0"])


@settings(max_examples=150, deadline=None)
@given(a=contexts, b=contexts, parallel=parallels, fa=st.booleans(), kind=kinds)
def test_estimate_grows_with_context(a: int, b: int, parallel: int, fa: bool, kind: str) -> None:
    low, high = sorted((a, b))
    kw: dict[str, Any] = {"num_parallel": parallel, "flash_attention": fa, "kv_cache_type": kind}
    e_low, e_high = (
        estimate_memory(QWEN3_8B, weights_bytes=5 * GIB, context_length=c, **kw) for c in (low, high)
    )
    assert e_low.kv_cache_bytes <= e_high.kv_cache_bytes
    assert e_low.graph_bytes <= e_high.graph_bytes
    assert e_low.total_bytes <= e_high.total_bytes


@settings(max_examples=100, deadline=None)
@given(context=st.integers(min_value=256, max_value=65536), p1=parallels, p2=parallels, fa=st.booleans())
def test_kv_grows_with_parallel_slots(context: int, p1: int, p2: int, fa: bool) -> None:
    low, high = sorted((p1, p2))
    e_low, e_high = (
        estimate_memory(
            LLAMA31_8B,
            weights_bytes=LLAMA31_8B_FILE,
            context_length=context,
            num_parallel=p,
            flash_attention=fa,
        )
        for p in (low, high)
    )
    assert e_low.kv_cache_bytes <= e_high.kv_cache_bytes
    assert e_low.total_bytes <= e_high.total_bytes


@settings(max_examples=100, deadline=None)
@given(context=contexts, fa=st.booleans(), swa=st.booleans())
def test_quantised_cache_never_costs_more(context: int, fa: bool, swa: bool) -> None:
    info = tiny("gemma3", **{"block_count": 6, "attention.sliding_window": 1024 if swa else 0})
    sizes = [
        est(info, context_length=context, kv_cache_type=k, flash_attention=fa).kv_cache_bytes
        for k in ("f16", "q8_0", "q4_0")
    ]
    assert sizes[0] >= sizes[1] >= sizes[2]


# --------------------------------------------------------------------------------------------- Ollama defaults


@pytest.mark.parametrize(
    ("env", "vram", "expected"),
    [
        ({}, None, RuntimeSettings()),
        ({}, 8 * GIB, RuntimeSettings(context_length=4096)),
        ({}, 24 * GIB, RuntimeSettings(context_length=32768)),
        ({}, 23 * GIB, RuntimeSettings(context_length=32768)),
        ({}, 80 * GIB, RuntimeSettings(context_length=262144)),
        (
            {"OLLAMA_CONTEXT_LENGTH": "8192"},
            80 * GIB,
            RuntimeSettings(context_length=8192, context_length_from_env=True),
        ),
        (
            {"OLLAMA_CONTEXT_LENGTH": " '16384' "},
            None,
            RuntimeSettings(context_length=16384, context_length_from_env=True),
        ),
        ({"OLLAMA_CONTEXT_LENGTH": "lots"}, None, RuntimeSettings()),
        ({"OLLAMA_CONTEXT_LENGTH": "-1"}, None, RuntimeSettings()),
        ({"OLLAMA_CONTEXT_LENGTH": "0"}, 30 * GIB, RuntimeSettings(context_length=32768)),
        ({"OLLAMA_NUM_PARALLEL": "4"}, None, RuntimeSettings(num_parallel=4)),
        ({"OLLAMA_NUM_PARALLEL": "0"}, None, RuntimeSettings(num_parallel=1)),
        ({"OLLAMA_NUM_PARALLEL": "two"}, None, RuntimeSettings(num_parallel=1)),
        ({"OLLAMA_FLASH_ATTENTION": "1"}, None, RuntimeSettings(flash_attention=True)),
        ({"OLLAMA_FLASH_ATTENTION": "false"}, None, RuntimeSettings(flash_attention=False)),
        (
            {"OLLAMA_FLASH_ATTENTION": "yes"},
            None,
            RuntimeSettings(flash_attention=True),
        ),  # Go: unparsable → true
        ({"OLLAMA_FLASH_ATTENTION": ""}, None, RuntimeSettings(flash_attention=None)),
        (
            {"OLLAMA_FLASH_ATTENTION": "1", "OLLAMA_KV_CACHE_TYPE": "Q8_0"},
            None,
            RuntimeSettings(flash_attention=True, kv_cache_type="q8_0", requested_kv_cache_type="q8_0"),
        ),
        (
            {"OLLAMA_KV_CACHE_TYPE": "q4_0"},
            None,
            RuntimeSettings(kv_cache_type="f16", requested_kv_cache_type="q4_0"),
        ),
        (
            {"OLLAMA_FLASH_ATTENTION": "1", "OLLAMA_KV_CACHE_TYPE": "q5_1"},
            None,
            RuntimeSettings(flash_attention=True),
        ),
        ({"OLLAMA_GPU_OVERHEAD": "1073741824"}, None, RuntimeSettings(gpu_overhead_bytes=GIB)),
        ({"OLLAMA_GPU_OVERHEAD": "1GB"}, None, RuntimeSettings()),
    ],
)
def test_runtime_settings_read_the_environment_like_ollama(
    env: dict[str, str], vram: int | None, expected: RuntimeSettings
) -> None:
    assert runtime_settings(env, vram) == expected


def test_default_context_tiers() -> None:
    assert [default_context_length(g * GIB) for g in (0, 16, 22, 23, 46, 47, 48)] == [
        4096,
        4096,
        4096,
        32768,
        32768,
        262144,
        262144,
    ]
    assert default_context_length(None) == 4096


def test_flash_attention_defaults_per_architecture() -> None:
    assert flash_attention_for("gptoss", None)
    assert flash_attention_for("gemma3", None)
    assert not flash_attention_for("llama", None)
    assert not flash_attention_for("gemma3", False)
    assert flash_attention_for("llama", True)


def test_kv_cache_type_for_a_model_depends_on_its_flash_attention() -> None:
    settings_ = runtime_settings({"OLLAMA_KV_CACHE_TYPE": "q8_0"})
    assert settings_.kv_cache_type_for("qwen3") == "q8_0"  # Ollama turns flash attention on for qwen3
    assert settings_.kv_cache_type_for("llama") == "f16"
    assert effective_kv_cache_type("Q4_0", True) == "q4_0"
    assert effective_kv_cache_type("q4_0", False) == "f16"
