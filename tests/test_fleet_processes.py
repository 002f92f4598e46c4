"""A fleet for real: a PostgreSQL server the test starts, three Ollama doubles as processes on their own
loopback ports, and two managers serving in processes of their own, with separate homes, on the one
database. Both see the same hosts and jobs; usage recorded through both at once adds up exactly, per host
and in total; placement lands where the model fits, judged in the memory each serving manager publishes;
a host that is killed is marked unreachable while the rest keep working; the database URL's password
shows up in no answer, log or metric."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleet_helpers import (
    EIGHT_B,
    EIGHT_B_TAG,
    SMALL,
    SMALL_TAG,
    THIRTEEN_B,
    DoubleProcess,
    vram_args,
    wait_until,
)
from processes import process_env, server_process

THREADS, EVENTS = 4, 60
"""Per server: threads recording at once, and events each records."""


@dataclass
class Fleet:
    doubles: dict[str, DoubleProcess]
    a: httpx.Client
    b: httpx.Client
    logs: list[Path]
    password: str


@pytest.fixture
def fleet(pg_url: str, pg_server: Any, tmp_path: Path) -> Iterator[Fleet]:
    with ExitStack() as stack:
        doubles = {
            "box-a": DoubleProcess(*vram_args(8, SMALL_TAG)),
            "box-b": DoubleProcess(*vram_args(24)),
            "box-c": DoubleProcess(*vram_args(12, EIGHT_B_TAG)),
        }
        for double in doubles.values():
            stack.callback(double.kill)
        clients = []
        logs = []
        for name, vram in (("box-a", "8"), ("box-b", "24")):
            env = process_env(
                tmp_path / name,
                doubles[name].url,
                MODEL_MANAGER_DATABASE_URL=pg_url,
                MODEL_MANAGER_HOST_NAME=name,
                MODEL_MANAGER_VRAM_GB=vram,
                MODEL_MANAGER_HEARTBEAT_S="0.5",
            )
            log = tmp_path / f"{name}.log"
            _, url = stack.enter_context(server_process(env, log, "--no-access-log", graceful=True))
            clients.append(stack.enter_context(httpx.Client(base_url=url, timeout=60)))
            logs.append(log)
        yield Fleet(doubles, clients[0], clients[1], logs, pg_server.password)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status and body["success"] is True, body
    return dict(body)


def test_two_managers_on_one_database_share_hosts_usage_jobs_and_placement(fleet: Fleet) -> None:
    a, b, doubles = fleet.a, fleet.b, fleet.doubles
    # Each serving manager's own host is the Ollama beside it; the store names every host for both.
    ok(a.post("/api/hosts", json={"name": "box-b", "url": doubles["box-b"].url}), 201)
    ok(b.post("/api/hosts", json={"name": "box-a", "url": doubles["box-a"].url}), 201)
    ok(a.post("/api/hosts", json={"name": "box-c", "url": doubles["box-c"].url, "vram_gb": 12}), 201)
    seen_a = {h["name"]: h for h in ok(a.get("/api/hosts"))["hosts"]}
    seen_b = {h["name"]: h for h in ok(b.get("/api/hosts"))["hosts"]}
    assert set(seen_a) == set(seen_b) == {"box-a", "box-b", "box-c"}
    assert seen_a["box-a"]["own"] and seen_b["box-b"]["own"] and all(h["reachable"] for h in seen_a.values())
    # Each one's heartbeat tells the other its memory: box-b's report (24 GB) is what box-a sees.
    assert (
        seen_a["box-b"]["memory"]["status"] == "reported" and seen_a["box-b"]["memory"]["available_gb"] == 24
    )
    assert (
        seen_b["box-a"]["memory"]["status"] == "reported" and seen_b["box-a"]["memory"]["available_gb"] == 8
    )
    assert seen_a["box-c"]["memory"]["status"] == seen_b["box-c"]["memory"]["status"] == "vram"

    _usage_from_both_at_once_adds_up(a, b)
    _placement_lands_where_the_model_fits_and_both_see_the_job(a, b, doubles)
    _a_killed_host_leaves_the_rest_working(a, b, doubles)

    for client in (a, b):
        for path in ("/api/hosts", "/api/model/list?host=all", "/metrics", "/api/health"):
            assert fleet.password not in client.get(path).text
    for log in fleet.logs:
        assert fleet.password not in log.read_text()


def _usage_from_both_at_once_adds_up(a: httpx.Client, b: httpx.Client) -> None:
    failures: list[str] = []

    def record(client: httpx.Client, host: str | None) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            for i in range(EVENTS):
                body = {"model": SMALL, "inference_time": 0.5, "success": i % 3 != 0}
                if host is not None:
                    body["host"] = host
                answer = own.post("/api/model/usage", json=body)
                if answer.status_code != 200:
                    failures.append(answer.text)

    plan = [(a, None), (a, "box-c"), (b, None), (b, "box-c")] * (THREADS // 2)
    threads = [threading.Thread(target=record, args=spec) for spec in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == []
    total = THREADS * 2 * EVENTS
    for client in (a, b):
        stats = ok(client.get("/api/model/statistics", params={"model": SMALL, "host": "all"}))["statistics"]
        shares = {h: s["usage_count"] for h, s in stats["hosts"].items()}
        assert stats["usage_count"] == total
        assert shares == {"box-a": total // 4, "box-b": total // 4, "box-c": total // 2}
        assert abs(stats["success_rate"] - 2 / 3) < 1e-9
    one = ok(b.get("/api/model/statistics", params={"model": SMALL, "host": "box-a"}))["statistics"]
    assert one["usage_count"] == total // 4


def _placement_lands_where_the_model_fits_and_both_see_the_job(
    a: httpx.Client, b: httpx.Client, doubles: dict[str, DoubleProcess]
) -> None:
    # 13B needs 10 GB: it fits fully on box-b (24 GB, reported) and box-c (12 GB, as added), not on
    # box-a (8 GB); the most free memory wins.
    started = ok(a.post("/api/model/download", json={"model": THIRTEEN_B, "host": "auto"}), 202)["job"]
    assert started["host"] == "box-b"
    seen = wait_until(
        lambda: next((j for j in ok(b.get("/api/model/downloads"))["jobs"] if j["id"] == started["id"]), None)
    )
    assert seen["host"] == "box-b"  # the other manager sees the job, from the shared store
    done = wait_until(
        lambda: (j := ok(b.get(f"/api/model/download/{started['id']}"))["job"])["status"] == "succeeded" and j
    )
    assert done["host"] == "box-b"
    # The switch goes where the model is installed and fits fully: 8B is installed only on box-c.
    switched = ok(b.post("/api/model/switch", json={"model": EIGHT_B, "host": "auto"}))
    assert switched["host"] == "box-c" and switched["placement"]["reason"].startswith("installed on box-c")
    assert ok(a.get("/api/model/current", params={"host": "box-c"}))["model"] == EIGHT_B
    running = ok(a.get("/api/model/running", params={"host": "all"}))["models"]
    assert [(m["host"], m["name"]) for m in running] == [("box-c", EIGHT_B)]
    listed = ok(b.get("/api/model/list", params={"host": "all", "installed_only": True}))["models"]
    where = {m["name"]: m["installed_on"] for m in listed}
    assert where == {SMALL: ["box-a"], THIRTEEN_B: ["box-b"], EIGHT_B: ["box-c"]}


def _a_killed_host_leaves_the_rest_working(
    a: httpx.Client, b: httpx.Client, doubles: dict[str, DoubleProcess]
) -> None:
    doubles["box-c"].kill()
    for client in (a, b):
        listed = ok(client.get("/api/model/list", params={"host": "all", "installed_only": True}))
        reachable = {h["name"]: h["reachable"] for h in listed["hosts"]}
        assert reachable == {"box-a": True, "box-b": True, "box-c": False}
        assert {m["name"] for m in listed["models"]} == {SMALL, THIRTEEN_B, EIGHT_B}  # box-c's as last seen
    # The rest keep working: a pull placed while box-c is down lands on a host that answers.
    job = ok(a.post("/api/model/download", json={"model": EIGHT_B, "host": "auto", "wait": True}))["job"]
    assert job["host"] == "box-b" and job["status"] == "succeeded"
    synced = {h["name"]: h for h in ok(b.post("/api/model/sync", json={"host": "all"}))["hosts"]}
    assert synced["box-c"]["reachable"] is False and synced["box-c"]["sync"] is None
    assert sorted(synced["box-b"]["sync"]["installed"]) == sorted([EIGHT_B_TAG, "llama2:13b-chat"])
    ok(b.post("/api/model/usage", json={"model": SMALL, "inference_time": 1.0, "host": "box-c"}))
