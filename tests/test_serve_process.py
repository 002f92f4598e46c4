"""The API served by a real ``python -m model_manager.api.server`` process, called over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from model_manager.store import Store
from model_manager.testing import OllamaDouble
from processes import process_env, server_process

SMALL = "llama3.2:1b-instruct"
SMALL_TAG = "llama3.2:1b-instruct-q8_0"


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_serve_answers_over_http(ollama: OllamaDouble, isolated_env: Path, tmp_path: Path) -> None:
    ollama.install(SMALL_TAG)
    with (
        server_process(process_env(isolated_env, ollama.url), tmp_path / "log") as (_, url),
        httpx.Client(base_url=url) as http,
    ):
        listed = http.get("/api/model/installed").json()
        assert listed["success"] is True and [m["name"] for m in listed["models"]] == [SMALL]
        recorded = http.post("/api/model/usage", json={"model": SMALL, "inference_time": 1.0})
        assert recorded.status_code == 200
        assert http.get(f"/api/model/statistics?model={SMALL}").json()["statistics"]["usage_count"] == 1
        assert http.get("/api/health").json()["ok"] is True
        assert "Bearer" not in http.get("/openapi.json").text


def test_sigterm_stops_gracefully_and_records_running_downloads_as_interrupted(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 100, 0.05
    with (
        server_process(process_env(isolated_env, ollama.url), tmp_path / "log") as (proc, url),
        httpx.Client(base_url=url) as http,
    ):
        job = http.post("/api/model/download", json={"model": SMALL}).json()["job"]
        wait_until(lambda: http.get(f"/api/model/download/{job['id']}").json()["job"]["status"] == "running")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert "Application shutdown complete" in (tmp_path / "log").read_text()
    store = Store(isolated_env / "model_manager.db")
    try:
        assert (store.get_job(job["id"]) or {})["status"] == "interrupted"
    finally:
        store.close()


def test_serve_refuses_a_public_bind_without_a_token(ollama: OllamaDouble, isolated_env: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "model_manager.api.server", "--host", "0.0.0.0", "--port", "0"],
        env=process_env(isolated_env, ollama.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "MODEL_MANAGER_API_TOKEN" in result.stderr


def test_a_public_bind_with_a_token_requires_it(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    env = process_env(isolated_env, ollama.url, MODEL_MANAGER_API_TOKEN="tok-123")
    with (
        server_process(env, tmp_path / "log", "--host", "0.0.0.0") as (_, url),
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/api/model/list").status_code == 401
        authorized = {"Authorization": "Bearer tok-123"}
        assert http.get("/api/model/list", headers=authorized).status_code == 200
        # Beyond loopback the token, not the Host header, is the guard: a LAN name is fine.
        lan = http.get("/api/model/list", headers=authorized | {"Host": "models.lan:8000"})
        assert lan.status_code == 200


def test_a_killed_server_leaves_its_download_interrupted_and_a_new_one_resumes_it(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 50, 0.05
    env = process_env(isolated_env, ollama.url)
    with server_process(env, tmp_path / "first.log") as (proc, url), httpx.Client(base_url=url) as http:
        job = http.post("/api/model/download", json={"model": SMALL}).json()["job"]
        wait_until(lambda: http.get(f"/api/model/download/{job['id']}").json()["job"]["completed"] > 0)
        proc.kill()
        proc.wait(10)
    time.sleep(0.3)  # let the double notice the hang-up
    partial = ollama.partial_bytes(SMALL_TAG)
    assert partial > 0
    ollama.pull_delay_s = 0.0
    with (
        server_process(env, tmp_path / "second.log") as (_, url),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        assert http.get(f"/api/model/download/{job['id']}").json()["job"]["status"] == "interrupted"
        resumed = http.post("/api/model/download", json={"model": SMALL, "wait": True}).json()
        assert resumed["job"]["id"] == job["id"] and resumed["job"]["attempts"] == 2
        assert resumed["job"]["status"] == "succeeded"
        # Only the rest of the model blob was fetched: Ollama resumed from the partial bytes.
        metrics = http.get("/metrics").text
    fetched = float(metrics.split(f'model_manager_download_bytes_total{{model="{SMALL}"}} ')[1].split()[0])
    model = ollama.library_model(SMALL_TAG)
    assert model is not None
    assert fetched == max(layer.size for layer in model.layers()) - partial
    assert ollama.installed() == [SMALL_TAG]


@pytest.mark.parametrize("args", [["--port", "not-a-number"], ["--log-level", "loud"]])
def test_bad_arguments_exit_with_usage(ollama: OllamaDouble, isolated_env: Path, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "model_manager.api.server", *args],
        env=process_env(isolated_env, ollama.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "usage:" in result.stderr
