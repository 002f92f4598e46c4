"""Liveness and readiness of the served app, and listings that say whether installed state is known."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from helpers import success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.testing import OllamaDouble
from processes import process_env, server_process

SMALL, SMALL_TAG = "llama3.2:1b-instruct", "llama3.2:1b-instruct-q8_0"
BASE = "http://127.0.0.1:8000"


def test_a_server_whose_ollama_is_down_is_alive_but_not_ready(
    down_url: str, isolated_env: Path, tmp_path: Path
) -> None:
    with (
        server_process(process_env(isolated_env, down_url), tmp_path / "log") as (_, url),
        httpx.Client(base_url=url) as http,
    ):
        health = http.get("/api/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["success"] is True and body["store"]["ok"] is True
        assert body["ollama"] == {"host": down_url, "ok": False, "error": body["ollama"]["error"]}
        assert body["ollama"]["error"].startswith("Ollama unreachable")
        ready = http.get("/api/ready")
        assert ready.status_code == 503 and ready.json()["error"] == "ollama_unavailable"
        assert ready.json()["solution"].startswith("Start Ollama")


def test_ready_follows_ollama(client: TestClient, ollama: OllamaDouble) -> None:
    assert success(client.get("/api/ready"))["ok"] is True
    ollama.down = True
    assert client.get("/api/ready").status_code == 503
    assert client.get("/api/health").status_code == 200
    ollama.down = False
    assert success(client.get("/api/ready"))["ollama"]["ok"] is True


def test_listings_say_whether_installed_state_is_known(ollama: OllamaDouble, isolated_env: Path) -> None:
    ollama.install(SMALL_TAG)
    ollama.down = True
    with (
        # Installed state read again on every request, so each one sees Ollama as it is now.
        ModelManager(host=ollama.url, data_dir=isolated_env, installed_max_age_s=0) as manager,
        TestClient(create_app(manager), base_url=BASE) as client,
    ):
        # Never synced and Ollama down: nothing is known to be installed, and the answer says so.
        fresh = success(client.get("/api/model/list"))
        assert fresh["installed_state_known"] is False
        assert success(client.get("/api/model/installed"))["installed_state_known"] is False
        ollama.down = False
        seen = success(client.get("/api/model/list"))
        assert seen["installed_state_known"] is True
        assert next(m for m in seen["models"] if m["name"] == SMALL)["installed"] is True
        installed = success(client.get("/api/model/installed"))
        assert installed["installed_state_known"] is True and installed["count"] == 1
        ollama.down = True
        # The listing is answered from the last state seen, and says that it is not current.
        stale = success(client.get("/api/model/list"))
        assert stale["installed_state_known"] is False
        assert next(m for m in stale["models"] if m["name"] == SMALL)["installed"] is True
        assert success(client.get("/api/model/installed"))["installed_state_known"] is False
