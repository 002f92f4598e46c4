"""Download jobs through the REST API: followed to the end, joined, cancelled, streamed, restarted."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.api.server import bind_socket
from model_manager.testing import OllamaDouble

SMALL = "llama3.2:1b-instruct"
SMALL_TAG = "llama3.2:1b-instruct-q8_0"
OTHER = "llama3.2:3b-instruct"
BASE = "http://127.0.0.1:8000"
FINAL = {"succeeded", "failed", "cancelled", "interrupted"}


@pytest.fixture
def client(manager: ModelManager) -> Iterator[TestClient]:
    with TestClient(create_app(manager), base_url=BASE) as c:
        yield c


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def job_of(client: TestClient | httpx.Client, job_id: str) -> dict[str, Any]:
    body = client.get(f"/api/model/download/{job_id}").json()
    assert body["success"] is True, body
    return dict(body["job"])


def finished(client: TestClient | httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (job := job_of(client, job_id))["status"] in FINAL and job))


def start(client: TestClient | httpx.Client, model: str = SMALL) -> dict[str, Any]:
    response = client.post("/api/model/download", json={"model": model})
    assert response.status_code == 202, response.json()
    return dict(response.json())


def largest_blob(ollama: OllamaDouble, tag: str) -> int:
    model = ollama.library_model(tag)
    assert model is not None
    return max(layer.size for layer in model.layers())


def settled_partial(ollama: OllamaDouble, tag: str) -> int:
    """Partial bytes once they stop changing: the double may take a step before it sees the hang-up,
    but a pull stream left open would keep it fetching."""
    time.sleep(0.3)
    partial = ollama.partial_bytes(tag)
    time.sleep(0.3)
    assert ollama.partial_bytes(tag) == partial
    return partial


def downloaded_bytes(client: TestClient, model: str = SMALL) -> float:
    match = re.search(
        rf'model_manager_download_bytes_total{{model="{re.escape(model)}"}} (\S+)',
        client.get("/metrics").text,
    )
    return float(match.group(1)) if match else 0.0


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on a loopback port, in a thread."""
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a Server-Sent Events stream; comments are skipped."""
    event, data = "message", ""
    for line in lines:
        if line == "":
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data += line[6:]


# --- a job from start to end ----------------------------------------------------------------------


def test_download_job_runs_to_success(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.pull_delay_s = 0.02
    body = start(client)
    assert body["success"] is True and body["started"] is True
    assert body["job"]["model"] == SMALL and body["job"]["status"] in ("queued", "running")
    job = finished(client, body["job"]["id"])
    assert job["status"] == "succeeded" and job["percent"] == 100.0 and job["error"] is None
    assert job["completed"] == job["total"] >= largest_blob(ollama, SMALL_TAG)
    assert job["detail"] == "success" and SMALL in job["message"]
    assert ollama.installed() == [SMALL_TAG]
    assert [m["name"] for m in client.get("/api/model/installed").json()["models"]] == [SMALL]
    listed = client.get("/api/model/downloads").json()
    assert listed["count"] == 1 and listed["jobs"][0]["id"] == job["id"]
    assert downloaded_bytes(client) >= largest_blob(ollama, SMALL_TAG) * 0.5


def test_wait_true_answers_when_the_download_ends(client: TestClient, ollama: OllamaDouble) -> None:
    response = client.post("/api/model/download", json={"model": SMALL, "wait": True})
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert body["job"]["status"] == "succeeded" and body["message"] == body["job"]["message"]
    assert ollama.installed() == [SMALL_TAG]


def test_one_job_per_model_joins_by_any_of_its_names(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 20, 0.05
    first = start(client)
    again = start(client, "llama3.2:1b")  # the catalog alias of the same model
    assert again["started"] is False and again["job"]["id"] == first["job"]["id"]
    assert finished(client, first["job"]["id"])["status"] == "succeeded"
    assert len(ollama.requests_to("/api/pull")) == 1
    assert start(client)["job"]["id"] != first["job"]["id"]  # ended: a new job


def test_pulls_beyond_the_limit_wait_queued(manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 20, 0.05
    with TestClient(create_app(manager, max_parallel_downloads=1), base_url=BASE) as c:
        running, queued = start(c)["job"], start(c, OTHER)["job"]
        wait_for(lambda: job_of(c, running["id"])["status"] == "running")
        assert job_of(c, queued["id"])["status"] == "queued"
        cancelled = c.delete(f"/api/model/download/{queued['id']}").json()["job"]
        assert cancelled["status"] == "cancelled" and cancelled["error"]["error"] == "download_cancelled"
        assert finished(c, running["id"])["status"] == "succeeded"
    assert [r.body["model"] for r in ollama.requests_to("/api/pull")] == [SMALL_TAG]


# --- failures -------------------------------------------------------------------------------------


def test_unknown_model_fails_the_job_with_model_not_found(client: TestClient) -> None:
    job = finished(client, start(client, "nosuchmodel:7b")["job"]["id"])
    assert job["status"] == "failed" and job["error"]["error"] == "model_not_found"
    waited = client.post("/api/model/download", json={"model": "nosuchmodel:7b", "wait": True})
    assert waited.status_code == 404 and waited.json()["success"] is False
    assert waited.json()["error"] == "model_not_found" and waited.json()["job"]["status"] == "failed"


def test_a_failing_pull_is_download_failed_502(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.faults.pull_error = "max retries exceeded: connection reset"
    response = client.post("/api/model/download", json={"model": SMALL, "wait": True})
    body = response.json()
    assert response.status_code == 502 and body["error"] == "download_failed"
    assert "connection reset" in body["message"] and body["solution"] == "Retry or check Ollama"
    assert body["job"]["error"]["error"] == "download_failed"
    metrics = client.get("/metrics").text
    assert f'model_manager_download_failures_total{{error="download_failed",model="{SMALL}"}} 1.0' in metrics
    assert 'model_manager_downloads_total{status="failed"} 1.0' in metrics


def test_an_invalid_name_is_422_and_starts_nothing(client: TestClient, ollama: OllamaDouble) -> None:
    response = client.post("/api/model/download", json={"model": "no spaces allowed"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert client.get("/api/model/downloads").json()["count"] == 0
    assert ollama.requests_to("/api/pull") == []


def test_job_lookups_and_cancels_of_unknown_or_ended_jobs(client: TestClient) -> None:
    assert client.get("/api/model/download/nope").status_code == 404
    gone = client.delete("/api/model/download/nope")
    assert gone.status_code == 404 and gone.json()["error"] == "job_not_found"
    done = client.post("/api/model/download", json={"model": SMALL, "wait": True}).json()["job"]
    ended = client.delete(f"/api/model/download/{done['id']}")
    assert ended.status_code == 409 and ended.json()["error"] == "job_conflict"


# --- cancel and resume ----------------------------------------------------------------------------


def test_cancel_closes_the_pull_and_the_next_download_resumes(
    client: TestClient, ollama: OllamaDouble
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 40, 0.05
    job_id = start(client)["job"]["id"]
    wait_for(lambda: job_of(client, job_id)["completed"] > 0)
    response = client.delete(f"/api/model/download/{job_id}")
    job = response.json()["job"] if response.status_code == 200 else finished(client, job_id)
    assert job["status"] == "cancelled" and job["error"]["error"] == "download_cancelled"
    partial = settled_partial(ollama, SMALL_TAG)
    assert 0 < partial < largest_blob(ollama, SMALL_TAG) and ollama.installed() == []

    before = downloaded_bytes(client)
    resumed = start(client)["job"]
    assert resumed["id"] != job_id
    assert finished(client, resumed["id"])["status"] == "succeeded"
    assert downloaded_bytes(client) - before == largest_blob(ollama, SMALL_TAG) - partial


def test_a_stopped_server_leaves_jobs_interrupted_and_starting_again_resumes(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 40, 0.05
    with TestClient(create_app(manager), base_url=BASE) as first:
        job_id = start(first)["job"]["id"]
        wait_for(lambda: job_of(first, job_id)["completed"] > 0)
    partial = settled_partial(ollama, SMALL_TAG)
    assert 0 < partial < largest_blob(ollama, SMALL_TAG) and ollama.installed() == []
    with TestClient(create_app(manager), base_url=BASE) as second:
        interrupted = job_of(second, job_id)
        assert interrupted["status"] == "interrupted" and interrupted["completed"] > 0
        ollama.pull_delay_s = 0.0
        again = start(second)
        assert again["job"]["id"] == job_id and again["job"]["attempts"] == 2 and again["started"] is True
        done = finished(second, job_id)
        assert done["status"] == "succeeded" and done["error"] is None
        assert downloaded_bytes(second) == largest_blob(ollama, SMALL_TAG) - partial


def test_an_interrupted_job_can_be_cancelled(manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 40, 0.05
    with TestClient(create_app(manager), base_url=BASE) as first:
        job_id = start(first)["job"]["id"]
        wait_for(lambda: job_of(first, job_id)["status"] == "running")
    with TestClient(create_app(manager), base_url=BASE) as second:
        assert second.delete(f"/api/model/download/{job_id}").json()["job"]["status"] == "cancelled"
        assert start(second)["job"]["id"] != job_id  # cancelled jobs are not resumed


# --- over real HTTP: events and disconnects -------------------------------------------------------


def test_events_stream_progress_until_the_end(manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 8, 0.05
    with served(create_app(manager)) as url, httpx.Client(base_url=url, timeout=30) as http:
        job_id = start(http)["job"]["id"]
        with http.stream("GET", f"/api/model/download/{job_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = list(sse_events(stream.iter_lines()))
    names = [name for name, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"progress"} and len(names) > 8
    completed = [data["completed"] for _, data in events]
    assert completed == sorted(completed)
    assert events[-1][1]["status"] == "succeeded" and events[-1][1]["id"] == job_id


def test_events_of_an_ended_job_are_one_end_event(client: TestClient) -> None:
    job = client.post("/api/model/download", json={"model": SMALL, "wait": True}).json()["job"]
    response = client.get(f"/api/model/download/{job['id']}/events")
    assert list(sse_events(iter(response.text.splitlines()))) == [("end", job)]
    assert client.get("/api/model/download/nope/events").json()["error"] == "job_not_found"


def test_closing_the_event_stream_does_not_cancel_the_job(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 20, 0.05
    with served(create_app(manager)) as url, httpx.Client(base_url=url, timeout=30) as http:
        job_id = start(http)["job"]["id"]
        with http.stream("GET", f"/api/model/download/{job_id}/events") as stream:
            assert next(sse_events(stream.iter_lines()))[0] == "progress"
        assert finished(http, job_id)["status"] == "succeeded"


def test_a_client_that_stops_waiting_does_not_cancel_the_job(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 20, 0.05
    with served(create_app(manager)) as url, httpx.Client(base_url=url, timeout=30) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/api/model/download", json={"model": SMALL, "wait": True}, timeout=0.3)
        job = http.get("/api/model/downloads").json()["jobs"][0]
        assert finished(http, job["id"])["status"] == "succeeded"
    assert ollama.installed() == [SMALL_TAG]
