"""Download jobs on hosts: a job pulls on its host; a pull to another host that stops answering mid-way is
an interrupted job, and starting the model again (on that host, or with ``auto``) resumes it there under
the same id, fetching only what is missing. A job's end is counted in the metrics before a client waiting
on it sees it end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import API_BASE
from fleet_helpers import SMALL, SMALL_TAG, wait_until
from helpers import success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.api.jobs import DownloadJobs
from model_manager.testing import OllamaDouble


@pytest.fixture
def remote() -> Iterator[OllamaDouble]:
    with OllamaDouble(pull_chunks=60, pull_delay_s=0.03) as double:
        yield double


def _job(c: TestClient, job_id: str) -> dict[str, Any]:
    return dict(success(c.get(f"/api/model/download/{job_id}"))["job"])


def test_a_pull_to_a_host_that_dies_mid_way_is_interrupted_and_resumes_on_that_host(
    manager: ModelManager, ollama: OllamaDouble, remote: OllamaDouble
) -> None:
    manager.add_host("gpu2", remote.url)
    with TestClient(create_app(manager), base_url=API_BASE) as c:
        job = success(c.post("/api/model/download", json={"model": SMALL, "host": "gpu2"}), 202)["job"]
        assert job["host"] == "gpu2" and job["status"] in ("queued", "running")
        wait_until(lambda: remote.partial_bytes(SMALL_TAG) > 0)
        remote.down = True  # the host goes away mid-pull
        ended = wait_until(lambda: (j := _job(c, job["id"]))["status"] not in ("queued", "running") and j)
        assert ended["status"] == "interrupted" and ended["host"] == "gpu2"
        assert ended["error"]["error"] == "download_interrupted"
        assert ended["error"]["message"].startswith(f"Download interrupted: {SMALL} on gpu2: Download failed")
        kept = remote.partial_bytes(SMALL_TAG)
        assert kept > 0 and ollama.requests_to("/api/pull") == []  # nothing was pulled anywhere else

        remote.down = False
        remote.pull_delay_s = 0.0
        # auto resumes the interrupted job on its host, whatever placement would say now.
        again = success(c.post("/api/model/download", json={"model": SMALL, "host": "auto", "wait": True}))
        assert again["job"]["id"] == job["id"] and again["job"]["host"] == "gpu2"
        assert again["job"]["status"] == "succeeded" and again["job"]["attempts"] == 2
        assert remote.installed() == [SMALL_TAG] and ollama.installed() == []


def test_a_pull_on_the_servers_own_host_still_fails_when_its_ollama_goes(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    """Without a host the jobs answer as they always have (the server's own Ollama is its own to restart)."""
    ollama.pull_chunks, ollama.pull_delay_s = 60, 0.03
    with TestClient(create_app(manager), base_url=API_BASE) as c:
        job = success(c.post("/api/model/download", json={"model": SMALL}), 202)["job"]
        wait_until(lambda: ollama.partial_bytes(SMALL_TAG) > 0)
        ollama.down = True
        ended = wait_until(lambda: (j := _job(c, job["id"]))["status"] not in ("queued", "running") and j)
        assert ended["status"] == "failed" and ended["error"]["error"] == "download_failed"
        assert ended["host"] == "local"


def test_the_same_model_on_two_hosts_is_two_jobs_and_on_one_host_one(
    manager: ModelManager, ollama: OllamaDouble, remote: OllamaDouble
) -> None:
    manager.add_host("gpu2", remote.url)
    ollama.pull_chunks, ollama.pull_delay_s = 60, 0.03
    with TestClient(create_app(manager), base_url=API_BASE) as c:
        here = success(c.post("/api/model/download", json={"model": SMALL}), 202)
        there = success(c.post("/api/model/download", json={"model": SMALL, "host": "gpu2"}), 202)
        joined = success(c.post("/api/model/download", json={"model": SMALL, "host": "GPU2"}), 202)
        assert here["job"]["id"] != there["job"]["id"] and joined["job"]["id"] == there["job"]["id"]
        assert (here["started"], there["started"], joined["started"]) == (True, True, False)
        for started in (here, there):
            wait_until(lambda s=started: _job(c, s["job"]["id"])["status"] == "succeeded")
    assert ollama.installed() == [SMALL_TAG] and remote.installed() == [SMALL_TAG]


def test_a_jobs_end_is_counted_before_a_waiting_client_sees_it(
    manager: ModelManager, ollama: OllamaDouble, isolated_env: Path
) -> None:
    """The metrics' hook is slow here; a waiter that returns must still find the job counted."""
    counted: list[str] = []

    def on_finish(job: dict[str, Any]) -> None:
        time.sleep(0.3)
        counted.append(job["status"])

    jobs = DownloadJobs(manager, on_finish=on_finish)
    try:
        job, _ = jobs.start(SMALL)
        done = threading.Event()
        final: dict[str, Any] = {}

        def wait() -> None:
            final.update(jobs.wait(job["id"], timeout_s=30))
            done.set()

        threading.Thread(target=wait).start()
        assert done.wait(30)
        assert final["status"] == "succeeded" and counted == ["succeeded"]
    finally:
        jobs.close()
