"""Reliability and security of the REST API, over real HTTP to a served ``model_manager.api.server`` process.

The library-level versions of these live in test_faults.py, test_concurrency.py and test_bad_input.py;
here the same promises are checked where a user meets them: a server process on a loopback port,
real sockets, real SQLite files, the Ollama double in this process with its fault switches.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import refused
from model_manager import ModelManager
from model_manager.store import Store
from model_manager.testing import OllamaDouble
from processes import process_env, server_process

SMALL = "llama3.2:1b-instruct"
SMALL_TAG = "llama3.2:1b-instruct-q8_0"
OTHER = "llama3.2:3b-instruct"
OTHER_TAG = "llama3.2:3b-instruct-q4_K_M"
FINAL = {"succeeded", "failed", "cancelled", "interrupted"}
RETRY_SOLUTION = "Retry or check Ollama"


# --- a served process -----------------------------------------------------------------------------


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[str]:
    """A served process until the block ends; yields its URL.

    On the way out the server must still be running, and its log must show no traceback and no
    "database is locked": a failure the client did not see is still a failure.
    """
    with server_process(env, log, "--no-access-log", graceful=True) as (proc, url):
        yield url
        assert proc.poll() is None, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and "database is locked" not in text, text


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status, body
    assert body.get("success", True) is True, body
    return dict(body)


def job_of(http: httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(ok(http.get(f"/api/model/download/{job_id}"))["job"])


def finished(http: httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (job := job_of(http, job_id))["status"] in FINAL and job))


def snapshot(http: httpx.Client) -> dict[str, Any]:
    """Current model, statistics and metadata, as the export endpoint gives them (less its timestamp)."""
    doc = http.post("/api/model/export", json={}).json()
    assert doc["format"] == "model-manager-metadata", doc
    doc.pop("exported_at")
    return dict(doc)


def downloaded_bytes(http: httpx.Client, model: str = SMALL) -> float:
    match = re.search(
        rf'model_manager_download_bytes_total{{model="{re.escape(model)}"}} (\S+)', http.get("/metrics").text
    )
    return float(match.group(1)) if match else 0.0


def model_blob_size(ollama: OllamaDouble, tag: str) -> int:
    model = ollama.library_model(tag)
    assert model is not None
    return max(layer.size for layer in model.layers())


def settled_partial(ollama: OllamaDouble, tag: str) -> int:
    """The double's partial bytes once they stop changing (it may take one step before it sees a hang-up)."""
    time.sleep(0.3)
    partial = ollama.partial_bytes(tag)
    time.sleep(0.3)
    assert ollama.partial_bytes(tag) == partial
    return partial


# --- twenty clients, one download -----------------------------------------------------------------


def test_twenty_clients_starting_one_download_share_one_job_and_one_pull(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    ollama.pull_chunks, ollama.pull_delay_s = 60, 0.05  # a 3 s pull: every client arrives while it runs
    spellings = [SMALL, "llama3.2:1b", "LLAMA3.2:1B-Instruct", SMALL_TAG]  # one model, four ways
    clients = 20
    barrier = threading.Barrier(clients)
    answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * clients

    with served(process_env(isolated_env, ollama.url), tmp_path / "server.log") as url:

        def client(i: int) -> None:
            # Half follow the job to its end ("wait": true), half take the 202 and go.
            body = {"model": spellings[i % len(spellings)], "wait": i % 2 == 0}
            with httpx.Client(base_url=url, timeout=60) as http:
                barrier.wait(10)
                response = http.post("/api/model/download", json=body)
                answers[i] = (response.status_code, response.json())

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - started
        with httpx.Client(base_url=url, timeout=30) as http:
            job_ids = {body["job"]["id"] for _, body in answers}
            assert len(job_ids) == 1, answers
            job = finished(http, job_ids.pop())
            assert ok(http.get("/api/model/downloads"))["count"] == 1

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * (clients // 2) + [202] * (clients // 2), answers
    assert [body["started"] for _, body in answers].count(True) == 1
    assert all(body["job"]["status"] == "succeeded" for status, body in answers if status == 200)
    assert job["status"] == "succeeded" and job["model"] == SMALL
    assert [r.body["model"] for r in ollama.requests_to("/api/pull")] == [SMALL_TAG]
    assert ollama.installed() == [SMALL_TAG]
    print(
        f"\n{clients} clients, 1 job, {len(ollama.requests_to('/api/pull'))} pull, all answered in {elapsed:.1f} s"
    )


# --- Ollama faults through download jobs ----------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    arm: Callable[[OllamaDouble], None]
    says: str
    """What the job's error message must contain."""
    mid_pull: bool = False
    """Armed while the pull runs (after it fetched bytes) rather than before it starts."""


def _down(ollama: OllamaDouble) -> None:
    ollama.faults.down = True


def _http_500(ollama: OllamaDouble) -> None:
    ollama.faults.http_500 = "disk quota exceeded"


def _cut(ollama: OllamaDouble) -> None:
    ollama.faults.cut_pull_after = 12


def _malformed(ollama: OllamaDouble) -> None:
    ollama.faults.malformed_line = True


def _hang(ollama: OllamaDouble) -> None:
    ollama.faults.hang_s = 4.0


FAULTS = {
    "ollama-down-mid-pull": Fault(_down, "connection to Ollama", mid_pull=True),
    "http-500": Fault(_http_500, "disk quota exceeded (HTTP 500)"),
    "cut-pull-stream": Fault(_cut, "incomplete chunked read"),
    "malformed-line": Fault(_malformed, "malformed response"),
    "hang-past-the-timeout": Fault(_hang, "did not answer in time"),
}
PULL_SILENCE_S = 1.0


@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
def test_a_fault_fails_the_job_with_its_reason_changes_nothing_and_the_retry_resumes(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path, fault: Fault
) -> None:
    ollama.install(OTHER_TAG)
    blob = model_blob_size(ollama, SMALL_TAG)
    env = process_env(isolated_env, ollama.url, MODEL_MANAGER_PULL_TIMEOUT=str(PULL_SILENCE_S))
    with served(env, tmp_path / "server.log") as url, httpx.Client(base_url=url, timeout=30) as http:
        # State a fault must not touch: a current model, statistics, a metadata override.
        ok(http.post("/api/model/switch", json={"model": OTHER}))
        for seconds, success in ((1.5, True), (2.5, False)):
            ok(
                http.post(
                    "/api/model/usage", json={"model": OTHER, "inference_time": seconds, "success": success}
                )
            )
        doc = snapshot(http) | {"models": {SMALL: {"metadata": {"description": "kept through faults"}}}}
        ok(http.post("/api/model/import", json=doc))
        before = snapshot(http)
        assert before["current_model"] == OTHER and before["models"][OTHER]["statistics"]["usage_count"] == 2

        # A first attempt, cancelled part-way, leaves partial bytes for every later attempt to resume.
        ollama.pull_chunks, ollama.pull_delay_s = 40, 0.05
        first = ok(http.post("/api/model/download", json={"model": SMALL}), 202)["job"]
        wait_for(lambda: ollama.partial_bytes(SMALL_TAG) > 0)
        http.delete(f"/api/model/download/{first['id']}")
        assert finished(http, first["id"])["status"] == "cancelled"
        partial_before = settled_partial(ollama, SMALL_TAG)
        assert 0 < partial_before < blob

        started = time.monotonic()
        if fault.mid_pull:
            job_id = ok(http.post("/api/model/download", json={"model": SMALL}), 202)["job"]["id"]
            wait_for(lambda: ollama.partial_bytes(SMALL_TAG) > partial_before)
            fault.arm(ollama)
            job = finished(http, job_id)
        else:
            fault.arm(ollama)
            failed = refused(
                http.post("/api/model/download", json={"model": SMALL, "wait": True}), 502, "download_failed"
            )
            assert failed["job"]["error"] == {k: failed[k] for k in ("error", "message", "solution")}
            job = failed["job"]
        elapsed = time.monotonic() - started

        # The job failed with the reason in the error envelope; nothing else changed.
        assert job["status"] == "failed" and job["id"] != first["id"], job
        assert job["error"]["error"] == "download_failed" and job["error"]["solution"] == RETRY_SOLUTION
        assert (
            job["error"]["message"].startswith("Download failed: ") and fault.says in job["error"]["message"]
        )
        if fault is FAULTS["hang-past-the-timeout"]:
            assert elapsed < 4.0 - 0.5, f"the pull waited {elapsed:.1f} s on a silent Ollama"
        ollama.faults.reset()
        assert snapshot(http) == before
        assert ok(http.get("/api/model/current"))["model"] == OTHER
        assert ollama.loaded() == [OTHER_TAG] and ollama.installed() == [OTHER_TAG]
        assert (
            ok(http.get("/api/model/statistics", params={"model": OTHER}))["statistics"]["usage_count"] == 2
        )

        # The retry succeeds and fetches only what is still missing.
        partial_after = settled_partial(ollama, SMALL_TAG)
        assert partial_after >= partial_before
        if fault.mid_pull or fault is FAULTS["cut-pull-stream"]:
            assert partial_after > partial_before  # the faulted attempt's own bytes were kept too
        ollama.pull_delay_s = 0.0
        fetched_before = downloaded_bytes(http)
        retry = ok(http.post("/api/model/download", json={"model": SMALL, "wait": True}))["job"]
        assert retry["status"] == "succeeded" and retry["id"] != job["id"]
        fetched = downloaded_bytes(http) - fetched_before
        assert fetched == blob - partial_after
        assert sorted(ollama.installed()) == sorted([OTHER_TAG, SMALL_TAG])
        after = snapshot(http)
        assert after["current_model"] == OTHER and after["models"][OTHER] == before["models"][OTHER]
    print(
        f"\nfailed after {elapsed:.2f} s: {job['error']['message']!r}; Ollama kept {partial_after} of "
        f"{blob} bytes ({partial_before} before the fault); the retry fetched {fetched:.0f}"
    )


# --- four writers, a reader and the REST server on one store --------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    for i in range(int(sys.argv[2])):
        manager.record_usage("shared:latest", 0.25, success=i % 4 != 0)
    """
)
READER = textwrap.dedent(
    """
    import sys, time
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    reads, last = 0, 0
    stop = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < stop:
        stats = manager.get_all_statistics().get("shared:latest")
        count = stats["usage_count"] if stats else 0
        assert count >= last, (count, last)   # aggregates only ever grow
        last, reads = count, reads + 1
    print(reads)
    """
)
PER_WRITER = 10_000


def test_four_writers_a_reader_and_the_rest_server_lose_nothing(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    ModelManager(host=ollama.url, data_dir=isolated_env).close()  # the store exists before the race
    env = process_env(isolated_env, ollama.url)
    failures: list[str] = []
    posted: list[int] = []  # one entry per REST usage post: 1 when it was recorded as a success
    reads: list[int] = []
    lock = threading.Lock()
    writers_done = threading.Event()

    def poster(url: str, worker: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = 0
            while not writers_done.is_set():
                success = (i + worker) % 2 == 0
                response = http.post(
                    "/api/model/usage",
                    json={"model": "shared:latest", "inference_time": 0.5, "success": success},
                )
                i += 1
                with lock:
                    posted.append(int(success))
                    if response.status_code != 200:
                        failures.append(f"POST usage {response.status_code}: {response.text}")

    def stats_reader(url: str, _worker: int) -> None:
        last = 0
        with httpx.Client(base_url=url, timeout=60) as http:
            while not writers_done.is_set():
                response = http.get("/api/model/statistics")
                with lock:
                    reads.append(response.status_code)
                if response.status_code != 200:
                    with lock:
                        failures.append(f"GET statistics {response.status_code}: {response.text}")
                    continue
                shared = response.json()["statistics"].get("shared:latest")
                count = shared["usage_count"] if shared else 0
                if count < last:
                    with lock:
                        failures.append(f"statistics went back from {last} to {count}")
                last = count

    started = time.monotonic()
    with served(env, tmp_path / "server.log") as url:
        clients = [
            threading.Thread(target=f, args=(url, i)) for i, f in enumerate((poster, poster, stats_reader))
        ]
        for c in clients:
            c.start()
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(isolated_env), str(PER_WRITER)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(isolated_env), "5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        outcomes = [w.communicate(timeout=300) for w in writers]
        writers_done.set()
        for c in clients:
            c.join(60)
        reader_out, reader_err = reader.communicate(timeout=60)
        with httpx.Client(base_url=url, timeout=30) as http:
            served_stats = ok(http.get("/api/model/statistics", params={"model": "shared:latest"}))
    elapsed = time.monotonic() - started

    assert [w.returncode for w in writers] == [0, 0, 0, 0], [err for _, err in outcomes]
    assert reader.returncode == 0 and int(reader_out) > 0, reader_err
    assert not any("locked" in err for _, err in outcomes) and "locked" not in reader_err
    assert failures == []
    assert len(posted) > 0 and len(reads) > 0

    expected = 4 * PER_WRITER + len(posted)
    store = Store(isolated_env / "model_manager.db")
    try:
        stats = store.get_stats("shared:latest")
        assert stats is not None
        assert stats.usage_count == store.count_events() == expected
        assert stats.success_count == 4 * (PER_WRITER - PER_WRITER // 4) + sum(posted)
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert served_stats["statistics"]["usage_count"] == expected
    print(
        f"\n{4 * PER_WRITER} events from 4 processes + {len(posted)} over REST = {expected} counted; "
        f"{int(reader_out)} reader-process reads, {len(reads)} REST statistics reads; {elapsed:.1f} s"
    )


# --- cross-site requests, unknown fields, content types, duplicate keys ---------------------------

FOREIGN_ORIGINS = [None, "http://evil.example", "null"]
FORM_BODIES = {
    "application/x-www-form-urlencoded": b"model=llama3.2%3A1b-instruct",
    "text/plain": b'{"model": "llama3.2:1b-instruct"}',  # a form with enctype=text/plain can send JSON-ish text
    "multipart/form-data; boundary=xyz": (
        b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nllama3.2:1b-instruct\r\n--xyz--\r\n'
    ),
}


def test_a_cross_site_form_post_cannot_delete_a_model(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    ollama.install(SMALL_TAG)
    ollama.install(OTHER_TAG)
    tried: list[tuple[str, str, str | None, int]] = []
    with (
        served(process_env(isolated_env, ollama.url), tmp_path / "server.log") as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        ok(http.post("/api/model/switch", json={"model": OTHER}))  # SMALL is installed and deletable
        before = snapshot(http)
        for origin in FOREIGN_ORIGINS:
            for content_type, body in FORM_BODIES.items():
                for method, path in (
                    ("POST", "/api/model/delete"),  # what an HTML form can send
                    ("POST", f"/api/model/delete?model={SMALL}"),
                    ("DELETE", "/api/model/delete"),  # what no form can, in case a client tries
                    ("DELETE", f"/api/model/delete?model={SMALL}"),
                    ("POST", "/api/model/switch"),
                ):
                    headers = {"Content-Type": content_type} | ({"Origin": origin} if origin else {})
                    response = http.request(method, path, content=body, headers=headers)
                    tried.append((method, path, origin, response.status_code))
                    expected = {403} if origin else {405, 415}
                    assert response.status_code in expected, (method, path, origin, response.text)
                    assert response.json()["success"] is False
        # A fetch() from another site without an Origin header still says where it comes from.
        fetch = http.request(
            "DELETE", f"/api/model/delete?model={SMALL}", headers={"Sec-Fetch-Site": "cross-site"}
        )
        refused(fetch, 403, "forbidden")
        assert "access-control-allow-origin" not in fetch.headers
        assert snapshot(http) == before
        assert sorted(ollama.installed()) == sorted([SMALL_TAG, OTHER_TAG])
        assert ollama.requests_to("/api/delete") == []
        # The same request as the app itself sends it does delete: the refusals above were the guard.
        ok(http.request("DELETE", "/api/model/delete", json={"model": SMALL}))
    assert ollama.installed() == [OTHER_TAG]
    assert len(tried) == 45


IMPORT_DOC: dict[str, Any] = {
    "format": "model-manager-metadata",
    "version": 1,
    "models": {SMALL: {"statistics": {"usage_count": 9, "success_count": 9}}},
}
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/model/switch", {"model": SMALL}),
    ("DELETE", "/api/model/delete", {"model": SMALL}),
    ("POST", "/api/model/recommend", {"available_vram_gb": 8, "priority": "speed"}),
    ("POST", "/api/model/check_compatibility", {"model": SMALL, "available_vram_gb": 8}),
    ("POST", "/api/model/sync", {}),
    ("POST", "/api/model/export", {}),
    ("POST", "/api/model/import", IMPORT_DOC),
    ("POST", "/api/model/usage", {"model": SMALL, "inference_time": 1.0}),
    ("POST", "/api/model/download", {"model": OTHER}),
]
STATE_CHANGING_OLLAMA_CALLS = ("/api/pull", "/api/delete", "/api/generate", "/api/chat", "/api/copy")


@contextmanager
def unchanged_server(ollama: OllamaDouble, home: Path, log: Path) -> Iterator[httpx.Client]:
    """A served process with SMALL installed and usage recorded; on exit, proves nothing changed:
    the export document, Ollama (no pull, delete or load), download jobs, and no import backup."""
    ollama.install(SMALL_TAG)
    with served(process_env(home, ollama.url), log) as url, httpx.Client(base_url=url, timeout=30) as http:
        ok(http.post("/api/model/usage", json={"model": SMALL, "inference_time": 2.0}))
        before = snapshot(http)
        ollama.clear_requests()
        yield http
        assert snapshot(http) == before
        assert [r.path for r in ollama.requests if r.path in STATE_CHANGING_OLLAMA_CALLS] == []
        assert ok(http.get("/api/model/downloads"))["count"] == 0
        assert ollama.installed() == [SMALL_TAG] and ollama.loaded() == []
    assert not (home / "backups").exists()


def test_unknown_fields_are_422_and_change_nothing(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    nested = json.loads(json.dumps(IMPORT_DOC))
    nested["models"][SMALL]["statistics"]["usage_cuont"] = 3
    bodies = [(m, p, body | {"modle": "x"}) for m, p, body in WRITES]
    bodies += [
        ("POST", "/api/model/import", nested),
        ("POST", "/api/model/download", {"model": OTHER, "wiat": 1}),
    ]
    with unchanged_server(ollama, isolated_env, tmp_path / "server.log") as http:
        for method, path, body in bodies:
            answer = refused(http.request(method, path, json=body), 422, "invalid_request")
            assert re.search("modle|usage_cuont|wiat", answer["message"]), (path, answer)
    assert len(bodies) == 11


WRONG_CONTENT_TYPES = [
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "application/vnd.api+json",
    "text/json",
]


def test_writes_in_anything_but_json_are_415_and_change_nothing(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    tried = 0
    with unchanged_server(ollama, isolated_env, tmp_path / "server.log") as http:
        for method, path, body in WRITES:
            for content_type in WRONG_CONTENT_TYPES:
                headers = {"Content-Type": content_type} if content_type else {}
                response = http.request(method, path, content=json.dumps(body).encode(), headers=headers)
                refused(response, 415, "unsupported_media_type")
                tried += 1
    assert tried == len(WRITES) * len(WRONG_CONTENT_TYPES) == 63


DUPLICATE_KEY_IMPORTS = [
    '{"format": "model-manager-metadata", "format": "model-manager-metadata", "version": 1, "models": {}}',
    '{"format": "model-manager-metadata", "version": 1, "version": 1, "models": {}}',
    '{"format": "model-manager-metadata", "version": 1, "models": {}, "models": {"a": {}}}',
    '{"format": "model-manager-metadata", "version": 1, "models": {"llama3.2:1b-instruct": {"statistics": '
    '{"usage_count": 1}}, "llama3.2:1b-instruct": {"statistics": {"usage_count": 50}}}}',
    '{"format": "model-manager-metadata", "version": 1, "models": {"llama3.2:1b-instruct": {"statistics": '
    '{"usage_count": 1, "usage_count": 50}}}}',
    '{"format": "model-manager-metadata", "version": 1, "models": {"llama3.2:1b-instruct": {"metadata": '
    '{"description": "a", "description": "b"}}}}',
    '{"format": "model-manager-metadata", "version": 1, "models": {"llama3.2:1b-instruct": {"metadata": {}, '
    '"metadata": {"description": "b"}}}}',
]


def test_duplicate_keys_in_an_import_body_are_422_and_change_nothing(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    with unchanged_server(ollama, isolated_env, tmp_path / "server.log") as http:
        for raw in DUPLICATE_KEY_IMPORTS:
            response = http.post(
                "/api/model/import", content=raw.encode(), headers={"Content-Type": "application/json"}
            )
            assert "duplicate key" in refused(response, 422, "invalid_request")["message"], raw


def test_an_oversized_body_is_413_over_a_real_socket_and_changes_nothing(
    ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    big = dict(
        IMPORT_DOC, models={f"m{i}:latest": {"statistics": {"usage_count": i}} for i in range(120_000)}
    )
    raw = json.dumps(big).encode()
    assert len(raw) > 4 * 1024 * 1024

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(raw), 64 * 1024):
            yield raw[i : i + 64 * 1024]

    with unchanged_server(ollama, isolated_env, tmp_path / "server.log") as http:
        declared = http.post("/api/model/import", content=raw, headers={"Content-Type": "application/json"})
        refused(declared, 413, "payload_too_large")
        chunked = http.post(
            "/api/model/import", content=chunks(), headers={"Content-Type": "application/json"}
        )
        refused(chunked, 413, "payload_too_large")
