"""Benchmarks, measured speed and recommendations on the fleet's hosts: a benchmark runs on the host named
and is kept for it, a timed use adds to its host's measured speed, and a host's recommendation for a
capability is a single manager's in that host's memory. Three Ollama doubles on their own loopback ports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import API_BASE
from fleet_helpers import EIGHT_B, EIGHT_B_TAG, SMALL, Doubles
from helpers import refused, success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.testing import OllamaDouble


def generated(ollama: OllamaDouble) -> list[str]:
    return [r.body["model"] for r in ollama.requests_to("/api/generate", "POST") if isinstance(r.body, dict)]


def test_a_benchmark_on_a_host_runs_there_and_is_kept_for_it(
    fleet_manager: ModelManager, fleet_doubles: Doubles
) -> None:
    local, gpu2, _ = fleet_doubles
    run = fleet_manager.fleet.manager("gpu2").benchmark(EIGHT_B)
    assert run.host == "gpu2" and run.tokens_per_second == pytest.approx(
        gpu2.generation_rate(EIGHT_B_TAG), abs=0.06
    )
    assert EIGHT_B_TAG in generated(gpu2) and generated(local) == []
    stored = fleet_manager.store.measured_speed(EIGHT_B, "gpu2")
    assert stored is not None and stored.eval_tokens == run.eval_tokens
    assert fleet_manager.store.measured_speed(EIGHT_B, "local") is None
    # Each host's statistics show what was measured there, and only there.
    assert fleet_manager.fleet.manager("gpu2").statistics(EIGHT_B).to_dict()["benchmark"] == run.to_dict()
    assert fleet_manager.statistics(EIGHT_B).to_dict()["benchmark"] is None


def test_a_timed_use_on_a_host_adds_to_that_hosts_speed(fleet_manager: ModelManager) -> None:
    fleet_manager.record_usage(SMALL, 1.5, True, host="gpu3", eval_count=100, eval_duration_s=2.0)
    gpu3 = fleet_manager.store.measured_speed(SMALL, "gpu3")
    assert gpu3 is not None and (gpu3.eval_tokens, gpu3.samples) == (100, 1)
    assert fleet_manager.store.measured_speed(SMALL, "local") is None
    shares = fleet_manager.store.stats_by_host(SMALL)
    assert shares["gpu3"][SMALL].usage_count == 1 and "local" not in shares
    with pytest.raises(Exception, match="Unknown host: nosuch"):
        fleet_manager.record_usage(SMALL, 1.0, host="nosuch", eval_count=10, eval_duration_s=1.0)
    assert fleet_manager.store.count_events() == 1  # the refused use recorded nothing


def test_a_hosts_recommendation_for_a_capability_is_made_in_its_own_memory(
    fleet_manager: ModelManager,
) -> None:
    on_gpu2 = fleet_manager.recommend_model(priority="quality", host="gpu2", capability="vision")
    assert on_gpu2 is not None and on_gpu2 == fleet_manager.recommend_model(
        24, "quality", capability="vision"
    )
    assert "vision" in fleet_manager.model_info(on_gpu2).capabilities
    answers = fleet_manager.fleet.recommend("all", priority="balanced", capability="vision")
    picks = {a.host.name: a.value.model for a in answers if a.value is not None}
    assert set(picks) == {"local", "gpu2", "gpu3"}
    for host, model in picks.items():
        assert model is not None and "vision" in fleet_manager.model_info(model).capabilities, host


def _cli(manager: ModelManager, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    base = ["--ollama-host", str(manager.settings.ollama_host), "--data-dir", str(manager.settings.home)]
    code = main([*base, *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_bench_and_recommend_all_on_hosts(
    fleet_manager: ModelManager, fleet_doubles: Doubles, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _cli(fleet_manager, capsys, "bench", EIGHT_B, "--host", "gpu2")
    assert code == 0 and doc["benchmark"]["host"] == "gpu2" and EIGHT_B_TAG in generated(fleet_doubles[1])
    code, doc = _cli(fleet_manager, capsys, "recommend", "--all", "--host", "all", "--capability", "vision")
    assert code == 0 and doc["capability"] == "vision"
    by_host = {h["name"]: h["recommendations"] for h in doc["hosts"]}
    assert set(by_host) == {"local", "gpu2", "gpu3"}
    for host, recs in by_host.items():
        assert [r["priority"] for r in recs] == ["speed", "balanced", "quality"], host
    expected = [r.model for r in fleet_manager.fleet.manager("gpu2").recommend_all(capability="vision")]
    assert [r["model"] for r in by_host["gpu2"]] == expected


def test_rest_benchmarks_on_a_host(fleet_manager: ModelManager, fleet_doubles: Doubles) -> None:
    with TestClient(create_app(fleet_manager), base_url=API_BASE) as api:
        # Not installed on the server's own host: refused at once; on gpu2 it runs there.
        refused(api.post("/api/model/benchmark", json={"model": EIGHT_B}), 409, "model_not_installed")
        refused(
            api.post("/api/model/benchmark", json={"model": EIGHT_B, "host": "nosuch"}), 404, "unknown_host"
        )
        done = success(
            api.post("/api/model/benchmark", json={"model": EIGHT_B, "host": "gpu2", "wait": True})
        )
        job = done["job"]
        assert job["status"] == "succeeded" and job["host"] == "gpu2" and job["result"]["host"] == "gpu2"
        assert EIGHT_B_TAG in generated(fleet_doubles[1]) and generated(fleet_doubles[0]) == []
        answer = success(api.post("/api/model/recommend/all", json={"host": "gpu2", "capability": "vision"}))
        assert answer["host"] == "gpu2" and round(answer["available_vram_gb"]) == 24
