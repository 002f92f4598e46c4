"""Quality scores: the benchmark set of each kind of model, and the estimate an installed model the
catalog lacks gets, on a fixture catalog and on the shipped one."""

from __future__ import annotations

import math
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.catalog import load_catalog
from model_manager.quality import (
    EMBEDDING_BENCHMARK,
    TEXT_BENCHMARK,
    VISION_BENCHMARK,
    benchmark_for,
    estimate_quality,
    is_estimate,
)
from model_manager.testing import OllamaDouble
from model_manager.types import CatalogEntry, ModelPurpose


def _entry(
    name: str, family: str, params: float, score: float, caps: tuple[str, ...] = ("completion",)
) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        ollama_tag=name,
        size="",
        purpose=ModelPurpose.BALANCED,
        description="",
        recommended_use="",
        min_vram_gb=None,
        download_size_mb=1,
        capabilities=caps,
        family=family,
        model_info={"general.architecture": family, "general.parameter_count": int(params)},
        quality_score=score,
        quality_source="measured: fixture",
        quality_benchmark=benchmark_for(caps),
    )


FIXTURE = [
    _entry("alpha:1b", "alpha", 1e9, 10.0),
    _entry("alpha:10b", "alpha", 10e9, 30.0),
    _entry("alpha:100b", "alpha", 100e9, 50.0),
    _entry("alpha-r1:10b", "alpha", 10e9, 5.0, ("completion", "thinking")),
    _entry("beta:2b", "beta", 2e9, 20.0),
    _entry("beta:4b", "beta", 4e9, 24.0),
    _entry("eye:7b", "alpha", 7e9, 60.0, ("completion", "vision")),
    _entry("embed:0.3b", "bert", 0.3e9, 62.0, ("embedding",)),
]


@pytest.mark.parametrize(
    ("caps", "benchmark"),
    [
        (("completion",), TEXT_BENCHMARK),
        (("completion", "tools", "thinking"), TEXT_BENCHMARK),
        (("completion", "vision"), VISION_BENCHMARK),
        (("embedding",), EMBEDDING_BENCHMARK),
    ],
)
def test_each_kind_of_model_has_its_benchmark_set(caps: tuple[str, ...], benchmark: str) -> None:
    assert benchmark_for(caps) == benchmark


def test_estimate_interpolates_in_log_parameters_within_the_architecture() -> None:
    found = estimate_quality(FIXTURE, "alpha", math.sqrt(10) * 1e9, ("completion",))
    assert found is not None and found.benchmark == TEXT_BENCHMARK
    assert found.score == pytest.approx(20.0)  # halfway between 1B (10) and 10B (30) on a log scale
    assert is_estimate(found.source) and "alpha:1b (10)" in found.source and "alpha:10b (30)" in found.source


@pytest.mark.parametrize(("params", "score"), [(0.1e9, 10.0), (500e9, 50.0)])
def test_estimate_is_never_extrapolated(params: float, score: float) -> None:
    found = estimate_quality(FIXTURE, "alpha", params, ("completion",))
    assert found is not None and found.score == score and "nearest in size" in found.source


def test_a_thinking_model_is_placed_among_thinking_peers() -> None:
    found = estimate_quality(FIXTURE, "alpha", 10e9, ("completion", "thinking"))
    assert found is not None and found.score == 5.0
    plain = estimate_quality(FIXTURE, "alpha", 10e9, ("completion",))
    assert plain is not None and plain.score == 30.0


def test_an_unknown_architecture_takes_the_mean_of_the_nearest_in_size() -> None:
    found = estimate_quality(FIXTURE, "gamma", 3e9, ("completion",))
    assert found is not None
    # Nearest in log size to 3B: beta:2b, beta:4b, then alpha:1b.
    assert found.score == pytest.approx((20 + 24 + 10) / 3, abs=0.01)
    assert "no scored model of its architecture" in found.source


def test_vision_and_embedding_models_are_placed_on_their_own_sets() -> None:
    vision = estimate_quality(FIXTURE, "alpha", 3e9, ("completion", "vision"))
    embed = estimate_quality(FIXTURE, "nomic", 0.1e9, ("embedding",))
    assert vision is not None and (vision.score, vision.benchmark) == (60.0, VISION_BENCHMARK)
    assert embed is not None and (embed.score, embed.benchmark) == (62.0, EMBEDDING_BENCHMARK)


@pytest.mark.parametrize(("entries", "params"), [(FIXTURE, 0), ([], 7e9), (FIXTURE[-1:], 7e9)])
def test_no_estimate_without_a_size_or_peers(entries: list[CatalogEntry], params: float) -> None:
    assert estimate_quality(entries, "alpha", params, ("completion",)) is None


def test_shipped_catalog_places_a_qwen2_model_between_its_sizes() -> None:
    found = estimate_quality(load_catalog(), "qwen2", 10e9, ("completion", "tools"))
    assert found is not None
    # Between Qwen2.5 7B (35.2) and 14B (41.31), not among the R1 distills that share the architecture.
    assert 35.2 < found.score < 41.31 and "qwen2.5:7b (35.2)" in found.source


def test_installed_model_the_catalog_lacks_gets_a_marked_estimate(
    ollama: OllamaDouble, manager: ModelManager
) -> None:
    info: dict[str, Any] = {
        "general.architecture": "qwen25vl",
        "general.parameter_count": 16_000_000_000,
        "qwen25vl.block_count": 48,
        "qwen25vl.embedding_length": 5120,
        "qwen25vl.context_length": 128000,
        "qwen25vl.attention.head_count": 40,
        "qwen25vl.attention.head_count_kv": 8,
    }
    ollama.install(
        "my-tagger:16b", size=10_000_000_000, model_info=info, capabilities=("completion", "vision")
    )
    meta = manager.get_model_info("my-tagger:16b")
    assert meta is not None and meta["source"] == "ollama"
    assert meta["quality_benchmark"] == VISION_BENCHMARK and meta["quality_source"].startswith("estimate:")
    # Between Qwen2.5-VL 7B (70.9) and 32B (74.8).
    assert 70.9 < meta["quality_score"] < 74.8
    assert meta["speed_source"] == "estimated" and meta["tokens_per_second"] > 0
