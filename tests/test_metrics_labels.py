"""``/metrics`` of the served app labels only the models the manager knows; client-supplied names that
name nothing known are counted under one ``other`` label, so they cannot grow the output."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from model_manager import ModelManager
from model_manager.testing import OllamaDouble

CUSTOM = "hf.co/org/repo:Q4_K_M"
SMALL = "llama3.2:1b-instruct"


def labels(text: str) -> set[str]:
    return set(re.findall(r'model="([^"]*)"', text))


def value(text: str, series: str, model: str) -> float:
    match = re.search(rf'^{re.escape(series)}{{model="{re.escape(model)}"}} (\S+)$', text, re.M)
    assert match is not None, f"no {series} for {model}"
    return float(match.group(1))


def test_twenty_thousand_unknown_names_do_not_grow_the_metrics(
    client: TestClient, manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.install(CUSTOM, size=2_000_000_000)
    manager.sync()
    for name in ("llama3.2:1b", CUSTOM, "stranger-0"):  # a catalog alias, an installed model, a stranger
        assert client.post("/api/model/usage", json={"model": name, "inference_time": 1.0}).status_code == 200
    before = client.get("/metrics").text
    assert labels(before) == {SMALL, CUSTOM, "other"}

    # 20,000 names recorded by other processes (in the store) and 300 more through this server.
    for i in range(1, 20_001):
        manager.record_usage(f"stranger-{i}", 1.0)
    for i in range(20_001, 20_301):
        response = client.post("/api/model/usage", json={"model": f"stranger-{i}", "inference_time": 0.5})
        assert response.status_code == 200
    after = client.get("/metrics").text

    assert labels(after) == {SMALL, CUSTOM, "other"}
    assert len(after.splitlines()) == len(before.splitlines())
    assert value(after, "model_manager_model_uses_total", "other") == 1 + 20_000 + 300
    assert value(after, "model_manager_model_uses_total", SMALL) == 1
    observed = re.search(
        r'^model_manager_inference_seconds_count\{model="other",outcome="success"\} (\S+)$', after, re.M
    )
    assert observed is not None and float(observed.group(1)) == 1 + 300
    print(f"/metrics: {len(before):,} bytes before, {len(after):,} bytes after 20,300 unknown names")
