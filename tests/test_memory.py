"""The memory estimator, without an engine (tests/test_memory_engine.py has those; Ollama's rules are in
tests/test_memory_rules.py).

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


def test_llama31_8b_at_4k_needs_about_five_gib_on_a_gpu() -> None:
    e = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=4096)
    assert e.kv_cache_bytes == f16_kv(32, 8, 128, 4096) == 512 * MIB
    assert 4.5 < e.weights_gb < 4.6  # file size less ~5 MB of tokenizer tables
    # The token embedding (128,256 × 4,096 of 8.03 B parameters) stays in host RAM: about 0.29 GB.
    assert e.embedding_bytes == round(e.weights_bytes * 128256 * 4096 / 8030261248)
    assert e.gpu_weights_bytes == e.weights_bytes - e.embedding_bytes
    assert e.total_bytes == e.gpu_weights_bytes + e.kv_cache_bytes + e.graph_bytes
    assert 4.9 < e.total_gb < 5.2
    # What llama.cpp keeps free beside it is reported apart, never inside the footprint.
    assert e.margin_bytes == 1024 * MIB
    assert (e.flash_attention, e.num_batch) == (True, 512)  # Ollama's auto; 512 up to 4,096 tokens


def test_llama31_8b_at_64k_needs_about_thirteen_gib_with_flash_attention() -> None:
    e = estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=65536, flash_attention=True)
    assert e.kv_cache_bytes == 8 * GIB
    assert e.num_batch == 2048  # above 32,768 tokens Ollama passes -b 2048 -ub 2048
    logits = 2048 * 128256 * 4
    assert logits < e.graph_bytes < logits + 200 * MIB
    assert 13.0 < e.total_gb < 13.8


def test_llama31_8b_at_64k_without_flash_attention_pays_for_the_score_matrix() -> None:
    # Ollama runs batch 512 on CUDA without flash attention (sched.go automaticGenerationBatch).
    e = estimate_memory(
        LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=65536, flash_attention=False, num_batch=512
    )
    scores = 65536 * 512 * 32 * 4  # n_kv × batch × heads × f32
    assert scores == 4 * GIB
    assert scores < e.graph_bytes < scores + 400 * MIB
    assert e.total_gb > 16


def test_the_batch_follows_ollamas_context_tiers() -> None:
    def batch(context: int, parallel: int = 1) -> int:
        return est(tiny(), context_length=context, num_parallel=parallel).num_batch

    assert [batch(c) for c in (100, 4096, 4097, 32768, 32769)] == [100, 512, 1024, 1024, 2048]
    assert batch(2048, parallel=4) == 1024  # the tiers count num_ctx × num_parallel
    assert est(tiny(), context_length=8192, num_batch=256).num_batch == 256
    assert est(tiny("bert"), context_length=8192).num_batch == 2048  # embedding: min(2048, context)


def test_a_bigger_batch_grows_the_graph() -> None:
    graphs = [est(tiny(), context_length=32768, num_batch=b).graph_bytes for b in (256, 512, 1024, 2048)]
    assert graphs == sorted(graphs) and len(set(graphs)) == 4


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
    assert data["num_batch"] == 1024
    assert data["total_bytes"] == e.gpu_weights_bytes + e.kv_cache_bytes + e.graph_bytes
    assert data["cpu_only_bytes"] == e.weights_bytes + e.kv_cache_bytes + e.graph_bytes + e.output_bytes
    assert data["output_bytes"] == 4 * 128256 * 2  # logits of each parallel sequence, f32, on the host
    assert data["total_gb"] == round(e.total_bytes / GIB, 2)
    assert data["margin_bytes"] == GIB and "overhead_bytes" not in data
    assert not any(key.endswith("_gib") for key in data)  # one unit label: GB (meaning GiB)


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
    # llama.cpp refuses a quantised V cache with flash attention off; with auto it turns flash attention on.
    with pytest.raises(ValueError, match="needs flash attention"):
        est(tiny(), context_length=4096, kv_cache_type="q8_0", flash_attention=False)
    e = est(tiny(), context_length=4096, kv_cache_type="q8_0")
    assert (e.kv_cache_type, e.flash_attention) == ("q8_0", True)


@pytest.mark.parametrize(
    ("kind", "per_32"), [("f32", 128), ("bf16", 64), ("q4_1", 20), ("iq4_nl", 18), ("q5_0", 22), ("q5_1", 24)]
)
def test_every_cache_type_llama_cpp_accepts_is_sized(kind: str, per_32: int) -> None:
    e = est(tiny(), context_length=4096, kv_cache_type=kind, flash_attention=True)
    assert e.kv_cache_bytes == 4 * 4096 * 2 * 2 * 64 // 32 * per_32


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
    assert e.num_batch == 1024
    swa_cells = -(-(window + 1024) // 256) * 256
    assert e.kv_cache_bytes == per_cell * (swa_layers * swa_cells + (12 - swa_layers) * 32768)


def test_sliding_window_is_per_sequence() -> None:
    info = tiny("gemma3", **{"block_count": 6, "attention.sliding_window": 1024, "attention.key_length": 64})
    e = est(info, context_length=8192, num_parallel=4, flash_attention=True, num_batch=512)
    per_cell = 2 * 2 * 64 * 2
    assert e.kv_cache_bytes == per_cell * 4 * (5 * 1536 + 1 * 8192)


def test_a_bigger_batch_widens_the_window_cache() -> None:
    # llama-kv-cache-iswa.cpp: pad(window + n_ubatch); Ollama's 2048 batch above 32,768 tokens widens it.
    info = tiny("gemma3", **{"block_count": 6, "attention.sliding_window": 1024, "attention.key_length": 64})
    e = est(info, context_length=65536, flash_attention=True)
    assert e.num_batch == 2048
    per_cell = 2 * 2 * 64 * 2
    assert e.kv_cache_bytes == per_cell * (5 * 3072 + 1 * 65536)


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
    assert e_dense.expert_bytes == 0 < e_moe.expert_bytes < e_moe.weights_bytes


def test_mixtral_experts_are_most_of_its_memory() -> None:
    # Mixtral 8x7B: 8 experts of 3 × 4,096 × 14,336 in 32 layers are 45.1 B of its 46.7 B parameters.
    mixtral = {
        "general.architecture": "llama",
        "general.parameter_count": 46_702_792_704,
        "llama.block_count": 32,
        "llama.embedding_length": 4096,
        "llama.feed_forward_length": 14336,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 8,
        "llama.expert_count": 8,
        "llama.expert_used_count": 2,
        "llama.vocab_size": 32000,
        "llama.context_length": 32768,
    }
    e = estimate_memory(mixtral, weights_bytes=26_441_533_376, context_length=4096)
    assert e.expert_bytes / e.weights_bytes == pytest.approx(0.966, abs=0.001)
    assert any("expert tensors; every expert stays in memory" in note for note in e.notes)


def test_untied_embeddings_stay_on_the_host_and_tied_ones_are_copied_to_the_gpu() -> None:
    # llama.cpp keeps the input layer on the CPU; a tied output layer is a second copy on the GPU.
    untied = tiny(**{"general.parameter_count": 4 * 2_228_224 + 2 * 4096 * 512})
    tied = tiny(**{"general.parameter_count": 4 * 2_228_224 + 4096 * 512})
    e_untied, e_tied = est(untied, weights_bytes=GIB), est(tied, weights_bytes=GIB)
    assert not e_untied.tied_embeddings and e_tied.tied_embeddings
    assert e_untied.gpu_weights_bytes == e_untied.weights_bytes - e_untied.embedding_bytes
    assert e_tied.gpu_weights_bytes == e_tied.weights_bytes
    for e in (e_untied, e_tied):
        assert e.host_bytes >= e.embedding_bytes + e.output_bytes > 0
        assert e.cpu_only_bytes == e.weights_bytes + e.kv_cache_bytes + e.graph_bytes + e.output_bytes


def test_projector_adds_its_weights_and_its_margin() -> None:
    plain = est(tiny())
    vision = est(tiny(), projector_bytes=600 * MIB + 5)
    assert vision.total_bytes - plain.total_bytes == 600 * MIB + 5
    assert vision.to_dict()["projector_bytes"] == 600 * MIB + 5
    assert any("projector" in note for note in vision.notes)
    # Ollama sets llama.cpp's fit target to projector + 1 GiB, rounded up to a MiB (mmprojFitTargetMiB).
    assert (plain.margin_bytes, vision.margin_bytes) == (GIB, GIB + 601 * MIB)


def test_flash_attention_drops_the_score_matrix() -> None:
    no_fa = est(tiny(), context_length=32768, flash_attention=False, num_batch=512)
    fa = est(tiny(), context_length=32768, flash_attention=True, num_batch=512)
    assert no_fa.graph_bytes - fa.graph_bytes >= 32768 * 512 * 8 * 4 * 0.9
    assert est(tiny(), context_length=32768).flash_attention  # None is llama.cpp's auto: on
    assert not est(tiny("grok"), context_length=4096).flash_attention  # llama.cpp turns it off for grok


def test_output_step_counts_logits_and_half_the_mask() -> None:
    # A 128k vocabulary makes the output step the largest; the f16 mask is freed by then, and the allocator
    # reuses its space only sometimes (docs/memory.md), so half of it is counted.
    info = tiny(**{"vocab_size": 131072})
    e = est(info, context_length=8192, flash_attention=True, num_batch=512)
    logits = 4 * 512 * (131072 + 2 * 512)
    mask = 8192 * 512 * 2
    assert e.graph_bytes == logits + mask // 2
    assert e.output_bytes == 4 * 131072  # the host logits buffer is apart from the GPU's graph
    # The host side of the compute buffer holds the inputs (the mask) and the embedded batch.
    assert e.host_bytes == e.embedding_bytes + mask + 4 * 512 * 512 + e.output_bytes


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
        ({"num_batch": 0}, "num_batch"),
        ({"kv_cache_type": "q4_0", "flash_attention": False}, "needs flash attention"),
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
@pytest.mark.parametrize(("fa", "kind"), [(False, "f16"), (True, "q8_0"), (None, "f16")])
def test_max_context_fits_and_the_next_step_does_not(memory_gib: float, fa: bool | None, kind: str) -> None:
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
    # 4 GiB − ~0.26 GiB graph ≈ 3.7 GiB for blocks of ~125 MiB weights + 16 MiB KV.
    assert 24 <= n_gpu <= 28
    assert layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 256 * MIB) == (0, 32)


def test_layers_on_gpu_fewer_at_longer_context() -> None:
    short = layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 6 * GIB, context_length=4096)
    long = layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 6 * GIB, context_length=32768)
    assert long[0] < short[0]


# --------------------------------------------------------------------------------------------- properties

contexts = st.integers(min_value=1, max_value=200_000)
parallels = st.integers(min_value=1, max_value=8)
kinds = st.sampled_from(["f16", "q8_0", "q4_0"])


flash = st.sampled_from([True, None])


@settings(max_examples=150, deadline=None)
@given(a=contexts, b=contexts, parallel=parallels, fa=flash, kind=kinds)
def test_estimate_grows_with_context(a: int, b: int, parallel: int, fa: bool | None, kind: str) -> None:
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
@given(context=contexts, fa=flash, swa=st.booleans())
def test_quantised_cache_never_costs_more(context: int, fa: bool | None, swa: bool) -> None:
    info = tiny("gemma3", **{"block_count": 6, "attention.sliding_window": 1024 if swa else 0})
    sizes = [
        est(info, context_length=context, kv_cache_type=k, flash_attention=fa).kv_cache_bytes
        for k in ("f16", "q8_0", "q4_0")
    ]
    assert sizes[0] >= sizes[1] >= sizes[2]


def test_an_encoder_has_no_logits_and_keeps_its_embedding_on_the_host() -> None:
    keys = {"vocab_size": 131072, "general.parameter_count": 4 * 2_228_224 + 131072 * 512}
    e, decoder = est(tiny("bert", **keys), context_length=512), est(tiny(**keys), context_length=512)
    assert decoder.graph_bytes - e.graph_bytes > 4 * 512 * 131072 * 0.9  # no 512 × 131,072-token logits
    assert e.output_bytes == 4 * 512  # the pooled embedding, f32
    assert e.gpu_weights_bytes == e.weights_bytes - e.embedding_bytes
