"""The memory estimate where users see it: estimates, fit levels, recommendations and switches."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from helpers import catalog_tag
from model_manager import InsufficientVramError, InvalidRequestError, ModelManager
from model_manager.testing import OllamaDouble

GIB = 1 << 30
EIGHT_B = "llama3.1:8b-instruct"


def test_estimate_grows_with_context_as_the_estimator_says(manager: ModelManager) -> None:
    small = manager.estimate_model_memory(EIGHT_B, context_length=4096)
    large = manager.estimate_model_memory(EIGHT_B, context_length=65536, kv_cache_type="f16")
    assert 4.8 < small.total_gb < 5.5
    assert small.kv_cache_bytes == 4096 * 32 * 2 * 8 * 128 * 2  # L · (K+V) · Hkv · head · f16
    assert large.kv_cache_bytes == 16 * small.kv_cache_bytes
    assert large.total_gb > 12


def test_defaults_come_from_the_variables_ollama_reads(
    ollama: OllamaDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "8192")
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "2")
    monkeypatch.setenv("OLLAMA_FLASH_ATTENTION", "1")
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q8_0")
    with ModelManager(host=ollama.url, data_dir=tmp_path / "d") as manager:
        estimate = manager.estimate_model_memory(EIGHT_B)
    assert (estimate.context_length, estimate.num_parallel) == (8192, 2)
    assert (estimate.flash_attention, estimate.kv_cache_type) == (True, "q8_0")


def test_defaults_without_variables_are_ollamas(manager: ModelManager) -> None:
    estimate = manager.estimate_model_memory(EIGHT_B)
    assert (estimate.context_length, estimate.num_parallel, estimate.kv_cache_type) == (4096, 1, "f16")
    assert estimate.flash_attention is True  # Ollama passes --flash-attn auto; llama.cpp turns it on


@pytest.mark.parametrize(
    "kwargs",
    [{"context_length": 0}, {"num_parallel": -1}, {"kv_cache_type": "q2_K"}, {"context_length": "4k"}],
)
def test_bad_estimate_settings(manager: ModelManager, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        manager.estimate_model_memory(EIGHT_B, **kwargs)  # type: ignore[arg-type]


def test_installed_model_uses_facts_from_api_show(manager: ModelManager, ollama: OllamaDouble) -> None:
    info = {
        "general.architecture": "qwen2",
        "general.parameter_count": 7_615_616_512,
        "qwen2.block_count": 28,
        "qwen2.context_length": 32768,
        "qwen2.embedding_length": 3584,
        "qwen2.feed_forward_length": 18944,
        "qwen2.attention.head_count": 28,
        "qwen2.attention.head_count_kv": 4,
    }
    ollama.add_library_model("custom/qwen:7b", size=4_683_087_332, model_info=info, family="qwen2")
    ollama.install("custom/qwen:7b")
    manager.sync()
    estimate = manager.estimate_model_memory("custom/qwen:7b", context_length=4096)
    assert estimate.architecture == "qwen2"
    assert estimate.kv_cache_bytes == 4096 * 28 * 2 * 4 * 128 * 2
    meta = manager.metadata(manager.model_info("custom/qwen:7b"), 8.0)
    assert meta["purpose"] == "balanced" and meta["source"] == "ollama"
    assert meta["memory_estimate"]["total_bytes"] == estimate.total_bytes
    assert meta["estimated_vram_gb"] == round(estimate.total_gb, 2)
    assert meta["min_vram_source"] == "estimate" and meta["min_vram_gb"] > estimate.total_gb


def test_compatibility_message_shows_the_estimate(manager: ModelManager) -> None:
    result = manager.compatibility(EIGHT_B, 8.0)
    assert result.compatible and result.fit is not None and result.fit.level == "full"
    needs = result.fit.estimate.total_gb if result.fit.estimate else 0
    assert result.message == (
        f"Compatible: {EIGHT_B} needs 6.0 GB VRAM, 8.0 GB available; fits fully on the GPU at 4,096 "
        f"context: needs {needs:.1f} GB plus 1.0 GB kept free, of 8.0 GB"
    )
    ok, message = manager.check_model_compatibility(EIGHT_B, 8.0)
    assert (ok, message) == (True, result.message)


def test_partial_fit_says_how_many_layers(manager: ModelManager) -> None:
    result = manager.compatibility(EIGHT_B, 3.0)
    assert result.compatible is False and result.fit is not None and result.fit.level == "partial"
    assert 0 < result.fit.layers_on_gpu < result.fit.layers_total == 32
    assert f"runs with {result.fit.layers_on_gpu} of 32 layers on the GPU" in result.message


def test_no_fit_when_even_ram_cannot_take_it(manager: ModelManager) -> None:
    ram = manager.gpu.get_host_available_gb()
    estimate = manager.estimate_model_memory("llama3.1:70b-instruct")
    if estimate.cpu_only_gb < ram + 1:
        pytest.skip(f"this machine has {ram:.0f} GiB of RAM, enough for part of a 70B model")
    result = manager.compatibility("llama3.1:70b-instruct", 1.0)
    assert result.fit is not None and result.fit.level == "none"
    assert "does not fit" in result.message


def test_models_without_a_catalog_figure_get_one_from_the_estimate(manager: ModelManager) -> None:
    meta = manager.get_model_info("qwen2.5vl:7b")
    assert meta is not None and meta["min_vram_source"] == "estimate"
    required = manager.required_vram_gb(manager.model_info("qwen2.5vl:7b"))
    at_4k = manager.estimate_model_memory("qwen2.5vl:7b", context_length=4096)
    # Fully on the GPU at 4,096 context plus the margin kept free, rounded up to 0.5 GB.
    assert required == meta["min_vram_gb"] == math.ceil((at_4k.total_gb + at_4k.margin_gb) * 2) / 2
    names = {m["name"] for m in manager.list_available_models(max_vram_gb=required + 0.5)}
    assert "qwen2.5vl:7b" in names
    assert "qwen2.5vl:7b" not in {
        m["name"] for m in manager.list_available_models(max_vram_gb=required - 0.5)
    }


def test_metadata_carries_the_estimate_breakdown(manager: ModelManager) -> None:
    for meta in manager.list_available_models():
        estimate = meta["memory_estimate"]
        assert estimate is not None, meta["name"]
        parts = ("gpu_weights_bytes", "projector_bytes", "kv_cache_bytes", "graph_bytes")
        assert sum(estimate[k] for k in parts) == estimate["total_bytes"]


def test_recommendation_says_how_much_context_fits(manager: ModelManager) -> None:
    rec = manager.recommend(8.0, "balanced")
    assert rec.model is not None
    assert all(c.max_context and c.max_context >= 4096 for c in rec.candidates)
    assert rec.best is not None and rec.best.fits_at_default
    assert rec.reason.endswith("that fits fully in 8 GB at 4,096 context")


def test_switch_refuses_a_model_that_cannot_fit_anywhere(
    manager: ModelManager, ollama: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    ollama.install(catalog_tag(manager, "llama3.1:70b-instruct"))
    monkeypatch.setattr(manager.gpu, "get_host_available_gb", lambda: 4.0)
    monkeypatch.setattr(manager.gpu, "get_available_memory_gb", lambda: 4.0)
    ollama.clear_requests()
    with pytest.raises(InsufficientVramError, match="does not fit"):
        manager.switch("llama3.1:70b-instruct")
    assert ollama.requests_to("/api/generate") == []
    assert manager.get_current_model() is None


def test_switch_counts_the_memory_of_the_model_it_unloads(
    manager: ModelManager, ollama: OllamaDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("llama3.2:3b-instruct", EIGHT_B):
        ollama.install(catalog_tag(manager, name))
    assert manager.switch_model("llama3.2:3b-instruct")
    held = sum(r.size_vram_bytes for r in manager.ollama.running()) / GIB
    estimate = manager.estimate_model_memory(EIGHT_B)
    need = estimate.total_gb + estimate.margin_gb
    # Free VRAM alone is short of the 8B model; with what the 3B model holds it is enough.
    monkeypatch.setattr(manager.gpu, "get_available_memory_gb", lambda: need - held / 2)
    monkeypatch.setattr(manager.gpu, "get_backend", lambda: "cuda")
    monkeypatch.setattr(manager.gpu, "get_total_memory_gb", lambda: 8.0)
    result = manager.switch(EIGHT_B)
    assert result.fit is not None and result.fit.level == "full"
    assert ollama.loaded() == [catalog_tag(manager, EIGHT_B)]


def test_quick_reference_pattern_1_auto_select_best_model(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    from gpu_manager import GPUManager

    gpu = GPUManager()
    available_vram = gpu.get_available_memory_gb()

    model = manager.recommend_model(available_vram, "balanced")
    assert model is not None
    assert manager.download_model(model)[0]
    assert manager.switch_model(model) is True
    assert manager.get_current_model() == model


def test_cli_use_says_when_a_model_runs_partly_on_the_cpu(
    manager: ModelManager,
    ollama: OllamaDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from model_manager.cli import main

    ollama.install(catalog_tag(manager, EIGHT_B))
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "3")
    code = main(["--ollama-host", ollama.url, "--data-dir", str(manager.settings.home), "use", EIGHT_B])
    out, err = capsys.readouterr()
    assert code == 0 and out == f"Switched to {EIGHT_B}\n"
    assert f"Note: {EIGHT_B} fits partially at 4,096 context: needs " in err
    assert " layers on the GPU, the rest on the CPU" in err
