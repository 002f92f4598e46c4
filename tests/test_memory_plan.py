"""Plan mode, the inverse question: for one model, the memory at each context from 2k to its maximum (per KV
cache type), the largest context that fits, and the layers on the GPU where it does not — from the core,
the CLI and the REST API alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import refused, success
from model_manager import GPUManager, InvalidRequestError, ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.testing import OllamaDouble

EIGHT_B = "llama3.1:8b-instruct"


@pytest.fixture(autouse=True)
def held_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GPUManager, "get_host_available_gb", lambda self: 16.0)


def test_plan_rows_cover_2k_to_the_trained_context_for_three_cache_types(manager: ModelManager) -> None:
    plan = manager.plan(EIGHT_B, 8.0)
    assert plan.contexts == (2048, 4096, 8192, 16384, 32768, 65536, 131072)
    assert plan.kv_cache_types == ("f16", "q8_0", "q4_0")
    assert len(plan.rows) == 7 * 3
    for kind in plan.kv_cache_types:
        sizes = [row.footprint_bytes for row in plan.rows if row.kv_cache_type == kind]
        assert sizes == sorted(sizes), kind  # more context, more memory
    f16, q8, q4 = (plan.row(32768, k) for k in ("f16", "q8_0", "q4_0"))
    assert f16 and q8 and q4 and f16.footprint_bytes > q8.footprint_bytes > q4.footprint_bytes


def test_each_row_is_the_verdict_check_gives_at_that_setting(manager: ModelManager) -> None:
    plan = manager.plan(EIGHT_B, 8.0)
    info = manager.model_info(EIGHT_B)
    for row in plan.rows:
        verdict = manager.verdict(
            info, 8.0, context_length=row.context_length, kv_cache_type=row.kv_cache_type
        )
        assert verdict.placement is not None
        assert (row.level, row.footprint_bytes) == (verdict.level, verdict.placement.needed_bytes)
        if row.level == "partial":
            assert row.layers_total == 32 and 0 < (row.layers_on_gpu or 0) < 32


def test_the_largest_context_fits_and_the_next_step_does_not(manager: ModelManager) -> None:
    plan = manager.plan(EIGHT_B, 8.0)
    info = manager.model_info(EIGHT_B)
    assert plan.largest_context["q4_0"] > plan.largest_context["q8_0"] > plan.largest_context["f16"] > 4096
    for kind, context in plan.largest_context.items():
        fits = manager.verdict(info, 8.0, context_length=context, kv_cache_type=kind)
        more = manager.verdict(info, 8.0, context_length=context + 256, kv_cache_type=kind)
        assert (fits.level, more.level) == ("full", "partial"), kind
    assert plan.summary().startswith("Largest context that fits fully in 8.0 GB VRAM: f16 ")


def test_asked_settings_narrow_and_extend_the_plan(manager: ModelManager) -> None:
    plan = manager.plan(EIGHT_B, 12.0, context_length=12000, kv_cache_type="Q8_0", num_parallel=2)
    assert plan.kv_cache_types == ("q8_0",) and 12000 in plan.contexts
    assert plan.verdict.run is not None and plan.verdict.run.num_parallel == 2
    assert plan.verdict.context_length == 12000
    with pytest.raises(InvalidRequestError):
        manager.plan(EIGHT_B, 8.0, kv_cache_type="q3_k")
    with pytest.raises(InvalidRequestError):
        manager.plan(EIGHT_B, 8.0, context_length=0)


def test_cli_plan_prints_a_table_and_one_json_document(
    manager: ModelManager, ollama: OllamaDouble, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--ollama-host", ollama.url, "--data-dir", str(isolated_env)]
    assert main([*base, "plan", EIGHT_B, "8"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{EIGHT_B} in 8.0 GB VRAM"
    assert lines[1].startswith("Ollama's settings: fits fully on the GPU at 4,096 context")
    row = next(line.split() for line in lines if line.strip().startswith("32,768"))
    assert row[1:3] == [f"{manager.plan(EIGHT_B, 8.0).row(32768, 'f16').footprint_gb:.1f}GB", "partial"]  # type: ignore[union-attr]
    assert lines[-1] == manager.plan(EIGHT_B, 8.0).summary()
    assert main([*base, "plan", EIGHT_B, "8", "--kv-cache-type", "q4_0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kv_cache_types"] == ["q4_0"] and doc["vram_source"] == "argument"
    assert doc["largest_context"] == manager.plan(EIGHT_B, 8.0, kv_cache_type="q4_0").largest_context


def test_cli_plan_refuses_bad_options(ollama: OllamaDouble, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--context", "0"], ["--parallel", "x"], ["--kv-cache-type", "q3_k"]):
        with pytest.raises(SystemExit) as exc:
            main(["--ollama-host", ollama.url, "plan", EIGHT_B, *bad])
        assert exc.value.code == 2
    capsys.readouterr()


def test_rest_plan_answers_what_the_core_plans(manager: ModelManager) -> None:
    with TestClient(create_app(manager), base_url="http://127.0.0.1:8000") as client:
        body = success(client.post("/api/model/plan", json={"model": EIGHT_B, "available_vram_gb": 8}))
        assert body == {"success": True, **manager.plan(EIGHT_B, 8.0).to_dict()}
        narrowed = success(
            client.post(
                "/api/model/plan",
                json={
                    "model": EIGHT_B,
                    "available_vram_gb": 8,
                    "kv_cache_type": "q8_0",
                    "context_length": 6000,
                },
            )
        )
        assert narrowed["kv_cache_types"] == ["q8_0"] and 6000 in narrowed["contexts"]
        refused(
            client.post("/api/model/plan", json={"model": EIGHT_B, "kv_cache_type": "q3_k"}),
            422,
            "invalid_request",
        )
        refused(client.post("/api/model/plan", json={"model": "nosuch:1b"}), 404, "model_not_found")
