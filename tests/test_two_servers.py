"""Two server processes on one home: a job whose server was killed is seen as interrupted by the other.

Each job row names its owner by pid and process start time (``model_manager.liveness``), so any process
tells a dead owner from a live one, whenever it reads, cancels or starts a job (not only when it starts).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.liveness import process_token
from model_manager.store import Store, utc_now
from model_manager.testing import OllamaDouble
from processes import process_env, server_process

SMALL, SMALL_TAG = "llama3.2:1b-instruct", "llama3.2:1b-instruct-q8_0"
OTHER, OTHER_TAG = "llama3.2:3b-instruct", "llama3.2:3b-instruct-q4_K_M"
BASE = "http://127.0.0.1:8000"


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def job_of(http: httpx.Client | TestClient, job_id: str) -> dict[str, Any]:
    body = http.get(f"/api/model/download/{job_id}").json()
    assert body["success"] is True, body
    return dict(body["job"])


def fetched_bytes(http: httpx.Client, model: str) -> float:
    prefix = f'model_manager_download_bytes_total{{model="{model}"}} '
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def largest_blob(ollama: OllamaDouble, tag: str) -> int:
    model = ollama.library_model(tag)
    assert model is not None
    return max(layer.size for layer in model.layers())


def test_a_server_killed_mid_pull_leaves_jobs_the_other_server_reports_cancels_and_resumes(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 200, 0.05
    env = process_env(isolated_env, ollama.url)
    with (
        server_process(env, tmp_path / "b.log") as (_, url_b),
        httpx.Client(base_url=url_b, timeout=30) as b,
    ):
        # B is up before A's jobs exist: what B checked at its start cannot be what finds them.
        with server_process(env, tmp_path / "a.log") as (proc_a, url_a), httpx.Client(base_url=url_a) as a:
            small = a.post("/api/model/download", json={"model": SMALL}).json()["job"]
            other = a.post("/api/model/download", json={"model": OTHER}).json()["job"]
            for job in (small, other):  # A has stored some progress of each
                wait_until(lambda job=job: job_of(b, job["id"])["completed"] > 0)
            assert job_of(b, small["id"])["status"] == "running"  # A is alive: B leaves its jobs alone
            refused = b.delete(f"/api/model/download/{small['id']}")
            assert refused.status_code == 409 and "another server process" in refused.json()["message"]
            proc_a.send_signal(signal.SIGKILL)
            proc_a.wait(10)
        time.sleep(0.3)  # let the double notice the hang-up
        partial = ollama.partial_bytes(OTHER_TAG)
        assert partial > 0 and ollama.installed() == []

        seen = job_of(b, small["id"])
        assert seen["status"] == "interrupted" and seen["completed"] > 0
        listed = {j["id"]: j["status"] for j in b.get("/api/model/downloads").json()["jobs"]}
        assert listed == {small["id"]: "interrupted", other["id"]: "interrupted"}

        cancelled = b.delete(f"/api/model/download/{small['id']}")
        assert cancelled.status_code == 200, cancelled.json()
        assert cancelled.json()["job"]["status"] == "cancelled"
        assert job_of(b, small["id"])["status"] == "cancelled"

        ollama.pull_delay_s = 0.0
        resumed = b.post("/api/model/download", json={"model": OTHER, "wait": True}).json()
        assert resumed["job"]["id"] == other["id"] and resumed["job"]["attempts"] == 2
        assert resumed["started"] is True and resumed["job"]["status"] == "succeeded"
        # Only the rest was fetched: Ollama continued from the bytes A's pull left.
        fetched = fetched_bytes(b, OTHER)
        assert fetched == largest_blob(ollama, OTHER_TAG) - partial
        print(
            f"after kill -9 of A: B resumed {OTHER} from {partial:,} bytes, fetching the other {fetched:,.0f}"
        )
        assert ollama.installed() == [OTHER_TAG]
    assert "Traceback" not in (tmp_path / "b.log").read_text()


def dead_owner() -> str:
    """The owner token of a process that has ended (an owner as ``api/jobs.py`` writes it)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_token(child.pid)
    child.wait()
    return f"{token}/0123abcd"


def orphan_row(home: Path, job_id: str, model: str, status: str = "running") -> None:
    """A job row left by a server process that died, written after this server started."""
    store = Store(home / "model_manager.db")
    try:
        now = utc_now()
        store.save_job(
            {
                "id": job_id,
                "model": model,
                "model_key": model.lower(),
                "status": status,
                "completed": 10,
                "total": 100,
                "owner": dead_owner(),
                "created_at": now,
                "updated_at": now,
            }
        )
    finally:
        store.close()


def test_cancelling_a_job_of_a_dead_server_works_without_reading_it_first(
    manager: ModelManager, isolated_env: Path
) -> None:
    with TestClient(create_app(manager), base_url=BASE) as client:
        orphan_row(isolated_env, "feedface00000001", SMALL)
        response = client.delete("/api/model/download/feedface00000001")
        assert response.status_code == 200, response.json()
        assert response.json()["job"]["status"] == "cancelled"


def test_starting_a_model_whose_job_a_dead_server_ran_resumes_that_job(
    manager: ModelManager, isolated_env: Path, ollama: OllamaDouble
) -> None:
    with TestClient(create_app(manager), base_url=BASE) as client:
        orphan_row(isolated_env, "feedface00000002", SMALL, status="queued")
        started = client.post("/api/model/download", json={"model": SMALL, "wait": True}).json()
        assert started["job"]["id"] == "feedface00000002" and started["job"]["attempts"] == 2
        assert started["job"]["status"] == "succeeded"
        assert ollama.requests_to("/api/pull") and ollama.installed() == [SMALL_TAG]


def test_a_job_of_a_live_process_stays_running(manager: ModelManager, isolated_env: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with TestClient(create_app(manager), base_url=BASE) as client:
            store = Store(isolated_env / "model_manager.db")
            try:
                now = utc_now()
                owner = f"{process_token(child.pid)}/0123abcd"
                store.save_job(
                    {
                        "id": "feedface00000003",
                        "model": SMALL,
                        "model_key": SMALL,
                        "status": "running",
                        "owner": owner,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            finally:
                store.close()
            assert job_of(client, "feedface00000003")["status"] == "running"
            assert client.delete("/api/model/download/feedface00000003").status_code == 409
            child.kill()
            child.wait()
            assert job_of(client, "feedface00000003")["status"] == "interrupted"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
