"""Current Ollama's rules (``ollama_defaults``) and the settings one model gets from them (``memory.fit``).

Expected values are Ollama's own, read from its sources (ollama/ollama server/sched.go, server/routes.go,
llm/llama_server.go, ml/device.go, envconfig/config.go) and llama.cpp's (common/common.h, common/arg.cpp).
"""

from __future__ import annotations

from typing import Any

import pytest

from model_manager.memory.fit import ARGUMENT, Memory, ModelSizing, run_settings
from model_manager.ollama_defaults import (
    FA_AUTO,
    FA_OFF,
    FA_ON,
    FIT_TARGET_BYTES,
    KV_CACHE_TYPES,
    Device,
    RuntimeSettings,
    automatic_batch,
    cuda_flash_attention_supported,
    default_context_length,
    fit_target_bytes,
    flash_attention_enabled,
    flash_attention_mode,
    kv_cache_problem,
    next_lower_context,
    num_parallel_for,
    predicted_server_bytes,
    runtime_settings,
)

MIB = 1 << 20
GIB = 1 << 30

LLAMA: dict[str, Any] = {
    "general.architecture": "llama",
    "llama.block_count": 32,
    "llama.embedding_length": 4096,
    "llama.feed_forward_length": 14336,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
    "llama.context_length": 131072,
    "llama.vocab_size": 128256,
}


# --------------------------------------------------------------------------------------------- environment


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
        ({"OLLAMA_KV_CACHE_TYPE": "Q8_0"}, None, RuntimeSettings(kv_cache_type="q8_0")),
        ({"OLLAMA_KV_CACHE_TYPE": "iq4_nl"}, None, RuntimeSettings(kv_cache_type="iq4_nl")),
        ({"OLLAMA_KV_CACHE_TYPE": "q3_k"}, None, RuntimeSettings(kv_cache_type="q3_k")),  # passed through
        ({"OLLAMA_GPU_OVERHEAD": "1073741824"}, None, RuntimeSettings(gpu_overhead_bytes=GIB)),
        ({"OLLAMA_GPU_OVERHEAD": "1GB"}, None, RuntimeSettings()),
    ],
)
def test_runtime_settings_read_the_environment_like_ollama(
    env: dict[str, str], vram: int | None, expected: RuntimeSettings
) -> None:
    assert runtime_settings(env, vram) == expected


def test_default_context_tiers_come_from_total_vram_and_never_from_ram() -> None:
    tiers = [default_context_length(g * GIB) for g in (0, 16, 22, 23, 46, 47, 48)]
    assert tiers == [4096, 4096, 4096, 32768, 32768, 262144, 262144]
    assert default_context_length(None) == 4096  # no GPU: 4096 whatever the RAM


def test_an_automatic_context_is_retried_once_at_the_next_lower_tier() -> None:
    assert [next_lower_context(c) for c in (262144, 40960, 32768, 8192, 4096, 2048)] == [
        32768,
        32768,
        4096,
        4096,
        None,
        None,
    ]


# --------------------------------------------------------------------------------------------- flash attention


@pytest.mark.parametrize(
    ("compute", "supported"),
    [
        ("5.2", False),
        ("6.0", True),
        ("6.1", True),
        ("7.0", True),
        ("7.2", False),
        ("7.5", True),
        ("12.0", True),
    ],
)
def test_cuda_flash_attention_needs_compute_6_except_7_2(compute: str, supported: bool) -> None:
    assert cuda_flash_attention_supported(compute) is supported


@pytest.mark.parametrize(
    ("setting", "devices", "mode"),
    [
        (None, (), FA_AUTO),  # no GPU: auto (the CPU supports it)
        (None, (Device("cuda", "8.6"),), FA_AUTO),
        (None, (Device("cuda", "8.6"), Device("cuda", "5.2")), FA_OFF),  # every GPU must support it
        (None, (Device("cuda", "7.2"),), FA_OFF),
        (None, (Device("cuda", ""),), FA_AUTO),  # capability unknown: supported, as Ollama assumes
        (None, (Device("metal"),), FA_AUTO),
        (None, (Device("rocm"),), FA_AUTO),
        (None, (Device("levelzero"),), FA_AUTO),
        (True, (Device("cuda", "5.2"),), FA_ON),  # OLLAMA_FLASH_ATTENTION set: regardless of hardware
        (False, (Device("cuda", "8.6"),), FA_OFF),
    ],
)
def test_flash_attention_is_auto_where_every_gpu_supports_it(
    setting: bool | None, devices: tuple[Device, ...], mode: str
) -> None:
    assert flash_attention_mode(setting, devices) == mode


def test_llama_cpp_resolves_auto_to_on_except_for_grok() -> None:
    assert flash_attention_enabled(FA_AUTO, "llama")
    assert flash_attention_enabled(FA_ON, "llama")
    assert not flash_attention_enabled(FA_OFF, "llama")
    assert not flash_attention_enabled(FA_ON, "grok")


def test_nine_kv_cache_types_and_a_quantised_v_cache_needs_flash_attention() -> None:
    assert KV_CACHE_TYPES == ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
    assert kv_cache_problem("q8_0", True) == ""
    assert "needs flash attention" in kv_cache_problem("q8_0", False)
    assert kv_cache_problem("bf16", False) == ""
    assert "refuses KV cache type 'q3_k'" in kv_cache_problem("q3_k", True)


# --------------------------------------------------------------------------------------------- batch


def test_batch_by_context_with_step_down_when_memory_is_tight() -> None:
    def batch(context: int, predicted: int = 0, available: int = 0, **kw: Any) -> int:
        return automatic_batch(context, predicted_bytes=predicted, available_bytes=available, **kw)

    assert [batch(c) for c in (2048, 4096, 8192, 32768, 65536)] == [512, 512, 1024, 1024, 2048]
    # 2048 needs the prediction within 60 % of the memory and 2 GiB spare under 80 %; 1024 within 75 %.
    assert batch(65536, 10 * GIB, 24 * GIB) == 2048
    assert batch(65536, 15 * GIB, 24 * GIB) == 1024
    assert batch(65536, 19 * GIB, 24 * GIB) == 512
    assert batch(8192, 19 * GIB, 24 * GIB) == 512
    # CUDA without flash attention: 512, or 256 beyond 4,096 tokens on a GPU of at most 8 GiB.
    assert batch(65536, cuda_without_flash_attention=True) == 512
    assert batch(8192, cuda_without_flash_attention=True, small_cuda_gpu=True) == 256
    assert batch(4096, cuda_without_flash_attention=True, small_cuda_gpu=True) == 512
    assert batch(8192, embedding=True) == 2048 and batch(512, embedding=True) == 512


def test_predicted_server_memory_is_the_file_plus_a_rough_kv_cache() -> None:
    # llama_server.go PredictServerVRAM: 2 · layers · min KV heads · (E / max heads) · context · 2 bytes.
    assert predicted_server_bytes(4 * GIB, 32, 8, 4096, 32, 8192) == 4 * GIB + 2 * 32 * 8 * 128 * 8192 * 2


# --------------------------------------------------------------------------------------------- margin


def test_fit_target_is_one_gib_or_the_projector_plus_one_gib() -> None:
    assert fit_target_bytes() == FIT_TARGET_BYTES == 1024 * MIB
    assert fit_target_bytes(600 * MIB) == 1624 * MIB
    assert fit_target_bytes(600 * MIB + 1) == 1625 * MIB  # rounded up to a MiB


# --------------------------------------------------------------------------------------------- one model


def sizing(info: dict[str, Any] = LLAMA, **kwargs: Any) -> ModelSizing:
    return ModelSizing(info, 4_920_000_000, **kwargs)


def test_parallel_is_one_for_embedding_models_and_some_architectures() -> None:
    assert num_parallel_for(4, "llama", embedding=False) == 4
    assert num_parallel_for(4, "llama", embedding=True) == 1
    assert num_parallel_for(4, "mllama", embedding=False) == 1
    assert num_parallel_for(0, "llama", embedding=False) == 1
    embedder = sizing(capabilities=("embedding",))
    assert run_settings(embedder, RuntimeSettings(num_parallel=4), Memory(8 * GIB)).num_parallel == 1


def test_context_is_capped_at_training_and_raised_for_vision_models() -> None:
    small = {**LLAMA, "llama.context_length": 2048}
    gpu = Memory(48 * GIB)
    assert run_settings(sizing(small), RuntimeSettings(context_length=262144), gpu).context_length == 2048
    vision = sizing(capabilities=("completion", "vision"))
    assert run_settings(vision, RuntimeSettings(), gpu, context_length=512).context_length == 2048
    assert run_settings(sizing(), RuntimeSettings(), gpu, context_length=1).context_length == 4


def test_a_cuda_gpu_without_flash_attention_gets_batch_512_and_refuses_quantised_caches() -> None:
    old = Memory(6 * GIB, "detected", "cuda", 6 * GIB, 0, (Device("cuda", "5.2", 6 * GIB, 6 * GIB),))
    run = run_settings(sizing(), RuntimeSettings(context_length=8192), old)
    assert (run.flash_attention_mode, run.flash_attention, run.num_batch) == (FA_OFF, False, 256)
    quantised = run_settings(sizing(), RuntimeSettings(kv_cache_type="q8_0"), old)
    assert "needs flash attention" in quantised.problem and quantised.kv_cache_type == "f16"
    new = Memory(12 * GIB, "detected", "cuda", 12 * GIB, 0, (Device("cuda", "8.9", 12 * GIB, 12 * GIB),))
    assert run_settings(sizing(), RuntimeSettings(context_length=8192), new).num_batch == 1024
    # On 6 GiB the prediction (the file plus 1 GiB of cache) is above 75 % of it: stepped down to 512.
    tight = Memory(6 * GIB, "detected", "cuda", 6 * GIB, 0, (Device("cuda", "8.9", 6 * GIB, 6 * GIB),))
    assert run_settings(sizing(), RuntimeSettings(context_length=8192), tight).num_batch == 512


def test_the_context_is_automatic_only_when_nothing_set_it() -> None:
    gpu = Memory(8 * GIB, ARGUMENT)
    assert run_settings(sizing(), RuntimeSettings(), gpu).automatic_context
    assert not run_settings(sizing(), RuntimeSettings(), gpu, context_length=8192).automatic_context
    from_env = RuntimeSettings(context_length=8192, context_length_from_env=True)
    assert not run_settings(sizing(), from_env, gpu).automatic_context
