"""Benchmarks on this machine, end to end against the Ollama double (whose generation time grows with the
model's size): the Python API, the CLI and the REST job; the test photo; timed uses that add to the measured
speed; and what cannot be benchmarked."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from helpers import catalog_tag, refused, success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.benchmark import OPTIONS, PHOTO_PATH, PHOTO_PROMPT, TEXT_PROMPT, Benchmarks, photo_base64
from model_manager.cli import main
from model_manager.errors import InvalidRequestError, ModelNotFoundError, ModelNotInstalledError, OllamaError
from model_manager.measured import Generation
from model_manager.ollama_client import OllamaClient
from model_manager.testing import OllamaDouble

SMALL, MEDIUM, VISION, EMBED = (
    "llama3.2:1b-instruct",
    "llama3.1:8b-instruct",
    "qwen2.5vl:3b",
    "nomic-embed-text",
)
REPO = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8000"


def installed(manager: ModelManager, ollama: OllamaDouble, *names: str) -> list[str]:
    tags = [catalog_tag(manager, n) for n in names]
    for tag in tags:
        ollama.install(tag)
    manager.sync()
    return tags


def generate_bodies(ollama: OllamaDouble) -> list[dict[str, Any]]:
    return [r.body for r in ollama.requests_to("/api/generate", "POST") if isinstance(r.body, dict)]


# --- the test photo and the double's timing -------------------------------------------------------


def test_the_test_photo_is_the_one_the_script_draws(tmp_path: Path) -> None:
    drawn = tmp_path / "photo.png"
    script = REPO / "scripts" / "make_bench_photo.py"
    subprocess.run([sys.executable, str(script), "--out", str(drawn)], check=True, capture_output=True)
    shipped = PHOTO_PATH.read_bytes()
    assert drawn.read_bytes() == shipped
    assert shipped[:8] == b"\x89PNG\r\n\x1a\n" and shipped[12:16] == b"IHDR"
    assert struct.unpack(">II", shipped[16:24]) == (256, 192) and len(shipped) < 16_000


# --- the Python API ------------------------------------------------------------------------------


def test_a_benchmark_times_ollamas_own_fields_and_keeps_them(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    [tag] = installed(manager, ollama, SMALL)
    ollama.clear_requests()
    run = manager.benchmark(SMALL)
    rate = ollama.generation_rate(tag)
    assert (run.model, run.host, run.ollama_tag, run.cold, run.with_image) == (
        SMALL,
        "local",
        tag,
        True,
        False,
    )
    assert run.tokens_per_second == pytest.approx(rate, abs=0.06)
    assert run.prompt_tokens_per_second == pytest.approx(rate * ollama.prompt_speedup, rel=0.01)
    assert run.first_token_s == pytest.approx(run.load_s + run.prompt_s) and run.load_s > 0
    [body] = generate_bodies(ollama)
    assert body == {"model": tag, "prompt": TEXT_PROMPT, "stream": False, "options": OPTIONS}
    stats = manager.get_model_statistics(SMALL)
    assert stats is not None and stats["benchmark"] == run.to_dict()
    assert stats["measured_tokens_per_second"] == run.tokens_per_second and stats["speed_samples"] == 1
    meta = manager.get_model_info(SMALL)
    assert meta is not None and meta["speed_source"] == "measured"
    assert (
        meta["tokens_per_second"] == run.tokens_per_second
        and "measured on Ollama host local" in meta["speed_basis"]
    )
    again = manager.benchmark(SMALL)
    assert again.cold is False and manager.statistics(SMALL).to_dict()["speed_samples"] == 2


def test_a_larger_model_measures_slower_in_proportion(manager: ModelManager, ollama: OllamaDouble) -> None:
    small_tag, large_tag = installed(manager, ollama, SMALL, MEDIUM)
    small, large = manager.benchmark(SMALL), manager.benchmark(MEDIUM)
    assert small.tokens_per_second and large.tokens_per_second
    sizes = [ollama.library_model(t).size for t in (small_tag, large_tag)]  # type: ignore[union-attr]
    assert small.tokens_per_second / large.tokens_per_second == pytest.approx(sizes[1] / sizes[0], rel=0.01)


def test_a_vision_model_is_benchmarked_with_the_test_photo(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    [tag] = installed(manager, ollama, VISION)
    ollama.clear_requests()
    run = manager.benchmark(VISION)
    [body] = generate_bodies(ollama)
    assert body["images"] == [photo_base64()] and body["prompt"] == PHOTO_PROMPT and run.with_image
    assert run.tokens_per_second == pytest.approx(ollama.generation_rate(tag), abs=0.06)


def test_what_cannot_be_benchmarked_is_refused_and_nothing_is_kept(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    installed(manager, ollama, EMBED)
    ollama.clear_requests()
    with pytest.raises(ModelNotInstalledError):
        manager.benchmark(SMALL)
    with pytest.raises(ModelNotFoundError):
        manager.benchmark("no-such-model:1b")
    with pytest.raises(InvalidRequestError, match="generates no text"):
        manager.benchmark(EMBED)
    assert generate_bodies(ollama) == [] and manager.store.measured_speeds("local") == {}


def test_an_answer_without_generation_timing_is_an_error_and_nothing_is_kept(
    manager: ModelManager, ollama: OllamaDouble
) -> None:
    installed(manager, ollama, SMALL)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/ps":
            return httpx.Response(200, json={"models": []})
        return httpx.Response(200, json={"model": SMALL, "response": "hi", "done": True, "load_duration": 5})

    client = OllamaClient("http://127.0.0.1:9", transport=httpx.MockTransport(answer))
    with pytest.raises(OllamaError, match="no generation timing"):
        Benchmarks(manager.store, lambda: client).run(manager.model_info(SMALL))
    assert manager.store.measured_speeds("local") == {}


def test_generate_reads_ollamas_timing_fields_and_refuses_malformed_ones() -> None:
    sent: list[dict[str, Any]] = []
    answer: dict[str, Any] = {"response": "a tag", "eval_count": 3, "eval_duration": 10, "load_duration": 7}

    def reply(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=answer)

    client = OllamaClient("http://127.0.0.1:9", transport=httpx.MockTransport(reply))
    done = client.generate("m:1b", "tag it", images=("aGk=",), options={"num_predict": 3})
    assert done == Generation("a tag", 0, 7, 0, 0, 3, 10)
    assert sent == [
        {
            "model": "m:1b",
            "prompt": "tag it",
            "stream": False,
            "options": {"num_predict": 3},
            "images": ["aGk="],
        }
    ]
    answer["eval_count"] = "3"
    with pytest.raises(OllamaError, match="malformed"):
        client.generate("m:1b", "tag it")


def test_timed_uses_add_to_the_measured_speed(manager: ModelManager) -> None:
    manager.record_usage(SMALL, 2.0, True, eval_count=100, eval_duration_s=2.0)
    manager.record_usage(SMALL, 3.0, False, eval_count=300, eval_duration_s=3.0)
    manager.record_usage(SMALL, 1.0)  # the quick reference's call, unchanged
    manager.record_usage(SMALL, 1.0, eval_count=0, eval_duration_s=0.5)  # generated nothing: a plain use
    stats = manager.get_model_statistics(SMALL)
    assert stats is not None and stats["usage_count"] == 4 and stats["success_rate"] == 0.75
    assert (stats["measured_tokens_per_second"], stats["speed_samples"], stats["benchmark"]) == (
        80.0,
        2,
        None,
    )
    meta = manager.get_model_info(SMALL)
    assert meta is not None and (meta["tokens_per_second"], meta["speed_source"]) == (80.0, "measured")


@pytest.mark.parametrize(
    "timing",
    [
        {"eval_count": 10},
        {"eval_duration_s": 1.0},
        {"eval_count": -1, "eval_duration_s": 1.0},
        {"eval_count": True, "eval_duration_s": 1.0},
        {"eval_count": 1.5, "eval_duration_s": 1.0},
        {"eval_count": 10, "eval_duration_s": math.nan},
        {"eval_count": 10, "eval_duration_s": "1"},
    ],
)
def test_bad_token_counts_record_nothing(manager: ModelManager, timing: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError, match="eval_"):
        manager.record_usage(SMALL, 1.0, True, **timing)
    assert manager.store.count_events() == 0 and manager.store.measured_speeds("local") == {}


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli(ollama: OllamaDouble, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--ollama-host", ollama.url, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_the_bench_command(
    manager: ModelManager, ollama: OllamaDouble, cli: Callable[..., tuple[int, str, str]]
) -> None:
    [tag] = installed(manager, ollama, SMALL)
    code, out, _ = cli("bench", SMALL, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["success"] is True
    assert doc["benchmark"]["tokens_per_second"] == pytest.approx(ollama.generation_rate(tag), abs=0.06)
    code, out, _ = cli("bench", SMALL)
    assert code == 0 and out.startswith(f"Benchmarked {SMALL}: ") and "Generation" in out and "Load" in out
    code, out, _ = cli("stats", SMALL)
    assert code == 0 and "Measured speed" in out and "over 2 run(s)" in out and "first token" in out
    code, out, err = cli("bench", MEDIUM)
    assert code == 1 and err.startswith(f"Model not installed: {MEDIUM}")
    code, out, err = cli("bench", MEDIUM, "--json")
    assert code == 1 and json.loads(out)["error"] == "model_not_installed"


# --- the REST API --------------------------------------------------------------------------------


@pytest.fixture
def api(manager: ModelManager) -> Iterator[TestClient]:
    with TestClient(create_app(manager), base_url=BASE) as c:
        yield c


def finished(api: TestClient, job_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = success(api.get(f"/api/model/benchmark/{job_id}"))["job"]
        if job["status"] not in ("queued", "running"):
            return dict(job)
        time.sleep(0.02)
    raise AssertionError(f"benchmark job {job_id} did not end")


def test_a_benchmark_runs_as_a_rest_job(api: TestClient, manager: ModelManager, ollama: OllamaDouble) -> None:
    [tag] = installed(manager, ollama, SMALL)
    started = success(api.post("/api/model/benchmark", json={"model": SMALL}), 202)
    assert started["started"] is True and started["job"]["model"] == SMALL
    job = finished(api, started["job"]["id"])
    assert job["status"] == "succeeded" and job["message"].startswith(f"Benchmarked {SMALL}: ")
    assert job["result"]["tokens_per_second"] == pytest.approx(ollama.generation_rate(tag), abs=0.06)
    assert job["result"] == manager.statistics(SMALL).to_dict()["benchmark"]
    listed = success(api.get("/api/model/benchmarks"))
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and success(api.get("/api/model/downloads"))[
        "jobs"
    ] == []
    refused(api.get(f"/api/model/download/{job['id']}"), 404, "job_not_found")
    refused(api.get("/api/model/benchmark/nope"), 404, "benchmark_job_not_found")
    waited = success(api.post("/api/model/benchmark", json={"model": SMALL, "wait": True}))
    assert waited["job"]["status"] == "succeeded" and waited["job"]["result"]["cold"] is False
    stats = success(api.get("/api/model/statistics", params={"model": SMALL}))["statistics"]
    assert stats["speed_samples"] == 2 and stats["benchmark"] == waited["job"]["result"]
    with api.stream("GET", f"/api/model/benchmark/{job['id']}/events") as events:
        text = "".join(events.iter_text())
    assert "event: end" in text and '"status": "succeeded"' in text


def test_rest_refuses_what_cannot_be_benchmarked_at_once(
    api: TestClient, manager: ModelManager, ollama: OllamaDouble
) -> None:
    installed(manager, ollama, EMBED)
    refused(api.post("/api/model/benchmark", json={"model": "no-such-model:1b"}), 404, "model_not_found")
    refused(api.post("/api/model/benchmark", json={"model": SMALL}), 409, "model_not_installed")
    refused(api.post("/api/model/benchmark", json={"model": EMBED}), 422, "invalid_request")
    refused(api.post("/api/model/benchmark", json={"modle": SMALL}), 422, "invalid_request")
    assert success(api.get("/api/model/benchmarks"))["jobs"] == []


def test_a_queued_benchmark_can_be_cancelled(
    api: TestClient, manager: ModelManager, ollama: OllamaDouble
) -> None:
    installed(manager, ollama, SMALL, MEDIUM)
    ollama.load_delay_s = 1.0  # the first benchmark's cold load holds the one benchmark slot a while
    first = success(api.post("/api/model/benchmark", json={"model": SMALL}), 202)["job"]
    second = success(api.post("/api/model/benchmark", json={"model": MEDIUM}), 202)["job"]
    cancelled = success(api.delete(f"/api/model/benchmark/{second['id']}"))["job"]
    assert cancelled["status"] == "cancelled" and cancelled["error"]["error"] == "benchmark_cancelled"
    assert finished(api, first["id"])["status"] == "succeeded"
    refused(api.delete(f"/api/model/benchmark/{first['id']}"), 409, "benchmark_job_conflict")
    assert manager.statistics(MEDIUM).to_dict()["benchmark"] is None


def test_a_benchmark_cancelled_while_ollama_generates_keeps_nothing(
    api: TestClient, manager: ModelManager, ollama: OllamaDouble
) -> None:
    installed(manager, ollama, SMALL)
    ollama.load_delay_s = 0.5  # a cold load: the benchmark waits on Ollama meanwhile
    job = success(api.post("/api/model/benchmark", json={"model": SMALL}), 202)["job"]
    deadline = time.monotonic() + 10
    while success(api.get(f"/api/model/benchmark/{job['id']}"))["job"]["detail"] != "loading and generating":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    api.delete(f"/api/model/benchmark/{job['id']}")
    ended = finished(api, job["id"])
    assert ended["status"] == "cancelled" and ended["result"] is None
    assert generate_bodies(ollama) and manager.statistics(SMALL).to_dict()["benchmark"] is None


def test_rest_usage_takes_token_counts(api: TestClient, manager: ModelManager) -> None:
    body = {"model": SMALL, "inference_time": 2.0, "timing": {"eval_count": 120, "eval_duration_s": 2.0}}
    success(api.post("/api/model/usage", json=body))
    for timing in ({"eval_count": -1, "eval_duration_s": 1.0}, {"eval_count": 5}, {"eval_count": 5, "x": 1}):
        refused(api.post("/api/model/usage", json={**body, "timing": timing}), 422, "invalid_request")
    stats = success(api.get("/api/model/statistics", params={"model": SMALL}))["statistics"]
    assert (stats["usage_count"], stats["measured_tokens_per_second"]) == (1, 60.0)
