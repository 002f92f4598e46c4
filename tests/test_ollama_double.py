"""The Ollama double, driven over real HTTP by raw httpx and by the official ``ollama`` client.

Expected strings and shapes come from Ollama's own source (ollama/ollama: server/routes.go, api/types.go).
"""

from __future__ import annotations

import ast
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

import model_manager
from model_manager.catalog import load_catalog
from model_manager.testing import (
    DEFAULT_VERSION,
    OOM_MESSAGES,
    LibraryModel,
    OllamaDouble,
    human_bytes2,
    parse_go_duration,
)
from model_manager.testing._go import go_time

TINY = "tiny:1b"
TINY_SIZE = 8_000_000
EMBED = "embed:small"
FOREVER_S = (2**63 - 1) / 1e9
"""Go's maximum duration (about 292 years): what a negative keep_alive becomes."""
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TLS = ssl.create_default_context()
"""Shared by every client: building one per client (loading CA certificates) dominates setup time."""


@pytest.fixture
def double() -> Iterator[OllamaDouble]:
    with OllamaDouble(catalog=False) as server:
        server.add_library_model(TINY, size=TINY_SIZE, family="llama")
        server.add_library_model(EMBED, size=2_000_000, capabilities=["embedding"], family="bert")
        yield server


@pytest.fixture
def http(double: OllamaDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=double.url, timeout=5, verify=TLS) as client:
        yield client


@pytest.fixture
def client(double: OllamaDouble) -> ollama.Client:
    return ollama.Client(host=double.url, timeout=5, verify=TLS)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def error_of(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.status_code, response.json()["error"]


def seconds_until(stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()


# -- health, version, tags, show --------------------------------------------------------------------


def test_root_answers_get_and_head(http: httpx.Client) -> None:
    got = http.get("/")
    assert (got.status_code, got.text) == (200, "Ollama is running")
    assert got.headers["content-type"] == "text/plain; charset=utf-8"
    head = http.head("/")
    assert (head.status_code, head.content) == (200, b"")
    assert http.get("/api/version").json() == {"version": DEFAULT_VERSION} == {"version": "0.32.15"}
    assert http.head("/api/tags").status_code == 200


def test_tags_is_empty_list_then_newest_first(double: OllamaDouble, http: httpx.Client) -> None:
    assert http.get("/api/tags").json() == {"models": []}
    old = datetime.now().astimezone() - timedelta(hours=2)
    double.install(TINY, modified_at=old)
    double.install("newer:7b", size=50_000, family="qwen2")
    models = http.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["newer:7b", TINY]
    tiny = models[1]
    assert tiny["model"] == TINY and tiny["size"] == TINY_SIZE and HEX64.match(tiny["digest"])
    assert datetime.fromisoformat(tiny["modified_at"]) == old
    assert list(tiny["details"]) == [
        "parent_model", "format", "family", "families", "parameter_size", "quantization_level",
        "context_length", "embedding_length",
    ]  # fmt: skip
    assert tiny["details"]["family"] == "llama" and tiny["details"]["quantization_level"] == "Q4_K_M"
    assert tiny["capabilities"] == ["completion"]


def test_tags_through_official_client(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(TINY)
    listed = client.list().models
    assert [(m.model, m.size) for m in listed] == [(TINY, TINY_SIZE)]
    assert listed[0].modified_at is not None and listed[0].modified_at.tzinfo is not None


def test_show_reports_facts_with_arrays_null_unless_verbose(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    doc = http.post("/api/show", json={"model": TINY}).json()
    assert doc["capabilities"] == ["completion"]
    assert doc["details"]["family"] == "llama"
    assert doc["model_info"]["general.architecture"] == "llama"
    assert doc["model_info"]["tokenizer.ggml.tokens"] is None
    assert doc["model_info"]["llama.block_count"] > 0 and doc["tensors"]
    assert datetime.fromisoformat(doc["modified_at"]).tzinfo is not None
    verbose = http.post("/api/show", json={"name": TINY, "verbose": True}).json()
    assert isinstance(verbose["model_info"]["tokenizer.ggml.tokens"], list)


def test_show_through_official_client(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(EMBED)
    shown = client.show(EMBED)
    assert shown.capabilities == ["embedding"]
    assert shown.modelinfo is not None and shown.modelinfo["bert.pooling_type"] == 1
    with pytest.raises(ollama.ResponseError) as caught:
        client.show("missing:1b")
    assert (caught.value.status_code, caught.value.error) == (404, "model 'missing:1b' not found")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "model is required"),
        ({"model": "bad name"}, 400, "invalid model name"),
        ({"model": "nope"}, 404, "model 'nope:latest' not found"),
        ({"model": " Nope:local\t"}, 404, "model 'Nope:latest' not found"),
        ({"model": "x:cloud:local"}, 400, 'use either :local or :cloud, not both: "x:cloud:local"'),
        ({"model": "   "}, 400, "model is required"),
    ],
)
def test_show_errors(http: httpx.Client, body: dict[str, Any], status: int, message: str) -> None:
    assert error_of(http.post("/api/show", json=body)) == (status, message)


def test_lookup_ignores_case_and_keeps_stored_spelling(double: OllamaDouble, http: httpx.Client) -> None:
    double.install("Llama3", size=40_000)
    assert double.installed() == ["Llama3:latest"]
    assert http.post("/api/show", json={"model": "llama3:LATEST"}).status_code == 200
    assert http.post("/api/show", json={"model": "llama3:8b"}).status_code == 404
    copied = http.post("/api/copy", json={"source": "LLAMA3", "destination": "llama3"})
    assert copied.status_code == 200
    assert double.installed() == ["Llama3:latest"]


# -- pull -------------------------------------------------------------------------------------------


def _big_layer_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for x in lines if x["status"] == lines[1]["status"]]


def test_pull_streams_ollamas_status_sequence(double: OllamaDouble, http: httpx.Client) -> None:
    double.pull_chunks = 4
    lines = ndjson(http.post("/api/pull", json={"model": TINY}))
    assert lines[0] == {"status": "pulling manifest"}
    assert [x["status"] for x in lines[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]
    big = _big_layer_lines(lines)
    assert "completed" not in big[0] and len(big) == 5
    completed = [x["completed"] for x in big[1:]]
    assert completed == sorted(completed) and completed[-1] == big[0]["total"]
    layers = lines[1 + len(big) : -3]
    assert len(layers) >= 3 and all(x["completed"] == x["total"] for x in layers)
    for line in lines[1:-3]:
        assert line["status"] == f"pulling {line['digest'][7:19]}" and HEX64.match(line["digest"][7:])
    assert big[0]["total"] + sum(x["total"] for x in layers) == TINY_SIZE
    assert double.installed() == [TINY]


def test_pull_through_official_client(double: OllamaDouble, client: ollama.Client) -> None:
    statuses = [p.status for p in client.pull(TINY, stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert client.pull(EMBED).status == "success"
    assert sorted(double.installed()) == [EMBED, TINY]


def test_pull_accepts_name_alias_and_stream_false(double: OllamaDouble, http: httpx.Client) -> None:
    answer = http.post("/api/pull", json={"name": "Tiny:1B", "stream": False})
    assert (answer.status_code, answer.json()) == (200, {"status": "success"})
    assert double.installed() == ["Tiny:1B"]


def test_pull_unknown_model_fails_inside_the_stream(http: httpx.Client, client: ollama.Client) -> None:
    streamed = http.post("/api/pull", json={"model": "nope:7b"})
    assert streamed.status_code == 200
    assert ndjson(streamed) == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    whole = http.post("/api/pull", json={"model": "nope:7b", "stream": False})
    assert error_of(whole) == (500, "pull model manifest: file does not exist")
    with pytest.raises(ollama.ResponseError) as caught:
        list(client.pull("nope:7b", stream=True))
    assert (caught.value.status_code, caught.value.error) == (-1, "pull model manifest: file does not exist")


@pytest.mark.parametrize("name", ["bad name", "a/b/c/d", "llama3:", ""])
def test_pull_invalid_name_is_400(http: httpx.Client, name: str) -> None:
    assert error_of(http.post("/api/pull", json={"model": name})) == (400, "invalid model name")


def test_pull_of_installed_model_reports_each_blob_once(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    lines = ndjson(http.post("/api/pull", json={"model": TINY}))
    layers = lines[1:-3]
    assert len(layers) == len({x["digest"] for x in layers})
    assert all(x["completed"] == x["total"] for x in layers)


def test_pull_cut_midway_resumes_from_completed(double: OllamaDouble, http: httpx.Client) -> None:
    double.faults.cut_pull_after = 3
    received: list[dict[str, Any]] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/api/pull", json={"model": TINY}) as r,
    ):
        received.extend(json.loads(line) for line in r.iter_lines())
    assert len(received) == 3 and "success" not in [x.get("status") for x in received]
    done = received[-1]["completed"]
    assert 0 < done < received[-1]["total"] and double.partial_bytes(TINY) == done
    assert double.installed() == []
    double.faults.cut_pull_after = None
    resumed = _big_layer_lines(ndjson(http.post("/api/pull", json={"model": TINY})))
    assert resumed[0]["completed"] == done
    assert resumed[-1]["completed"] == resumed[-1]["total"]
    assert double.installed() == [TINY] and double.partial_bytes(TINY) == 0


def test_concurrent_pulls_of_one_model_both_succeed(double: OllamaDouble) -> None:
    double.pull_delay_s = 0.02
    results: list[list[dict[str, Any]]] = []

    def pull() -> None:
        results.append(
            ndjson(httpx.post(f"{double.url}/api/pull", json={"model": TINY}, timeout=10, verify=TLS))
        )

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    for lines in results:
        assert lines[-1] == {"status": "success"}
        completed = [x.get("completed", 0) for x in _big_layer_lines(lines)]
        assert completed == sorted(completed) and completed[-1] == TINY_SIZE - sum(
            x["total"] for x in lines[1:-3] if x["status"] != lines[1]["status"]
        )
    assert double.installed() == [TINY]


# -- delete, copy -----------------------------------------------------------------------------------


def test_delete_answers_empty_200_then_404(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    gone = http.request("DELETE", "/api/delete", json={"model": TINY})
    assert (gone.status_code, gone.content) == (200, b"")
    again = http.request("DELETE", "/api/delete", json={"name": TINY})
    assert error_of(again) == (404, f"model '{TINY}' not found")
    bad = http.request("DELETE", "/api/delete", json={"model": "bad name"})
    assert error_of(bad) == (400, 'name "bad name" is invalid')
    assert error_of(http.request("DELETE", "/api/delete")) == (400, "missing request body")


def test_delete_through_official_client(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(TINY)
    assert client.delete(TINY).status == "success"
    with pytest.raises(ollama.ResponseError) as caught:
        client.delete(TINY)
    assert caught.value.status_code == 404
    assert double.installed() == []


def test_copy_duplicates_the_manifest(
    double: OllamaDouble, http: httpx.Client, client: ollama.Client
) -> None:
    double.install(TINY)
    answer = http.post("/api/copy", json={"source": TINY, "destination": "backup"})
    assert (answer.status_code, answer.content) == (200, b"")
    assert client.copy(TINY, "second:v1").status == "success"
    digests = {m["name"]: m["digest"] for m in http.get("/api/tags").json()["models"]}
    assert digests["backup:latest"] == digests[TINY] == digests["second:v1"]
    missing = http.post("/api/copy", json={"source": "nope", "destination": "x"})
    assert error_of(missing) == (404, 'model "nope" not found')
    bad = http.post("/api/copy", json={"source": TINY, "destination": "a b"})
    assert error_of(bad) == (400, 'destination "a b" is invalid')


# -- generate, chat, runners ------------------------------------------------------------------------


def test_empty_prompt_loads_and_ps_shows_runner(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    loaded = http.post("/api/generate", json={"model": "TINY:1b"}).json()
    assert loaded["model"] == "TINY:1b" and loaded["done"] is True and loaded["done_reason"] == "load"
    assert loaded["created_at"].endswith("Z") and loaded["response"] == ""
    (runner,) = http.get("/api/ps").json()["models"]
    assert runner["name"] == runner["model"] == TINY and HEX64.match(runner["digest"])
    assert runner["size"] > TINY_SIZE and runner["size_vram"] == runner["size"]
    assert runner["context_length"] == 4096
    assert 290 < seconds_until(runner["expires_at"]) <= 300
    assert double.loaded() == [TINY]


def test_keep_alive_zero_unloads(double: OllamaDouble, http: httpx.Client, client: ollama.Client) -> None:
    double.install(TINY)
    double.load(TINY)
    unloaded = http.post("/api/generate", json={"model": TINY, "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload" and double.loaded() == []
    again = client.chat(model=TINY, messages=[], keep_alive="0s")
    assert again.done_reason == "unload" and again.message.content == ""
    missing = http.post("/api/generate", json={"model": "nope", "keep_alive": 0})
    assert error_of(missing) == (404, "model 'nope' not found")


@pytest.mark.parametrize(
    ("keep_alive", "seconds"),
    [("10m", 600), (30, 30), (2.5, 2.5), ("1h30m", 5400), (-1, FOREVER_S), ("-1m", FOREVER_S)],
)
def test_keep_alive_sets_expiry(
    double: OllamaDouble, http: httpx.Client, keep_alive: object, seconds: float
) -> None:
    double.install(TINY)
    http.post("/api/generate", json={"model": TINY, "keep_alive": keep_alive}).raise_for_status()
    (runner,) = http.get("/api/ps").json()["models"]
    assert seconds - 10 < seconds_until(runner["expires_at"]) <= seconds


@pytest.mark.parametrize(
    ("keep_alive", "message"),
    [
        ("300", 'time: missing unit in duration "300"'),
        ("abc", 'time: invalid duration "abc"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        (True, "Unsupported type: 'bool'"),
        ([1], "Unsupported type: '[]interface {}'"),
    ],
)
def test_keep_alive_bad_values_are_400(
    double: OllamaDouble, http: httpx.Client, keep_alive: object, message: str
) -> None:
    double.install(TINY)
    assert error_of(http.post("/api/generate", json={"model": TINY, "keep_alive": keep_alive})) == (
        400,
        message,
    )


def test_go_duration_parser_matches_go() -> None:
    assert parse_go_duration("1h2m3.5s") == 3723_500_000_000
    assert parse_go_duration("0") == 0 and parse_go_duration("-0") == 0
    assert parse_go_duration("1.5ms") == 1_500_000 and parse_go_duration("+2us") == 2_000


def test_short_keep_alive_expires(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    http.post("/api/generate", json={"model": TINY, "keep_alive": "300ms"}).raise_for_status()
    assert double.loaded() == [TINY]
    time.sleep(0.45)
    assert http.get("/api/ps").json() == {"models": []}


def test_generate_streams_chunks_then_final_metrics(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    lines = ndjson(http.post("/api/generate", json={"model": TINY, "prompt": "why is the sky blue"}))
    *chunks, final = lines
    assert chunks and all(c["done"] is False and c["response"] for c in chunks)
    assert "".join(c["response"] for c in chunks) == f"{TINY} heard: why is the sky blue"
    assert final["done"] is True and final["done_reason"] == "stop" and final["response"] == ""
    metrics = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration")
    for key in (*metrics, "eval_count", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0
    assert final["eval_count"] == len(chunks) and final["prompt_eval_count"] == 5
    assert final["total_duration"] >= final["eval_duration"] + final["prompt_eval_duration"]


def test_generate_and_chat_through_official_client(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(TINY)
    whole = client.generate(model=TINY, prompt="hello")
    assert whole.response == f"{TINY} heard: hello" and whole.done_reason == "stop"
    assert whole.eval_count and whole.eval_duration and whole.load_duration
    parts = list(client.chat(model=TINY, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(p.message.content or "" for p in parts) == f"{TINY} heard: hi"
    assert parts[-1].done and parts[-1].total_duration
    assert client.generate(model=TINY, options={"num_predict": 1}).done_reason == "load"
    assert client.generate(model=TINY, prompt="a b", options={"num_predict": 1}).done_reason == "length"


def test_embedding_model_refuses_generate_and_chat(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(EMBED)
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model=EMBED)
    assert (caught.value.status_code, caught.value.error) == (400, f'"{EMBED}" does not support generate')
    with pytest.raises(ollama.ResponseError) as chat:
        client.chat(model=EMBED, messages=[{"role": "user", "content": "x"}])
    assert chat.value.error == f'"{EMBED}" does not support chat'
    assert double.loaded() == []


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/generate", {"prompt": "x"}, 404, "model '' not found"),
        ("/api/chat", {"messages": []}, 400, "model is required"),
        ("/api/generate", {"model": "a b"}, 400, "invalid model name"),
        ("/api/chat", {"model": "nope:1b"}, 404, "model 'nope:1b' not found"),
        ("/api/generate", {"model": TINY, "raw": True, "system": "s"}, 400,
         "raw mode does not support template, system, or context"),
        ("/api/generate", {"model": TINY, "think": True}, 400, f'"{TINY}" does not support thinking'),
        ("/api/chat", {"model": TINY, "tools": [{"type": "function"}], "messages": [{"role": "user"}]}, 400,
         f"registry.ollama.ai/library/{TINY} does not support tools"),
    ],
)  # fmt: skip
def test_generate_and_chat_errors(
    double: OllamaDouble, http: httpx.Client, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    double.install(TINY)
    assert error_of(http.post(path, json=body)) == (status, message)


def test_embed_returns_unit_vectors(double: OllamaDouble, http: httpx.Client, client: ollama.Client) -> None:
    double.install(EMBED)
    result = client.embed(model=EMBED, input=["first", "second"])
    assert len(result.embeddings) == 2
    for vector in result.embeddings:
        assert abs(sum(v * v for v in vector) - 1.0) < 1e-9
    assert result.embeddings[0] != result.embeddings[1]
    preload = http.post("/api/embed", json={"model": EMBED, "input": []}).json()
    assert preload == {"model": EMBED, "embeddings": []} and double.loaded() == [EMBED]
    bad = http.post("/api/embed", json={"model": EMBED, "input": [1, 2]})
    assert error_of(bad) == (400, "invalid input type")
    missing = http.post("/api/embed", json={"model": "nope", "input": "x"})
    assert error_of(missing) == (404, 'model "nope" not found, try pulling it first')


def test_memory_budget_offloads_partially_then_refuses(double: OllamaDouble, http: httpx.Client) -> None:
    model = double.install(TINY)
    loaded_size = TINY_SIZE + model.kv_cache_bytes(4096)
    double.vram_bytes, double.ram_bytes = loaded_size // 2, loaded_size
    http.post("/api/generate", json={"model": TINY}).raise_for_status()
    (runner,) = http.get("/api/ps").json()["models"]
    assert (runner["size"], runner["size_vram"]) == (loaded_size, loaded_size // 2)
    double.unload(TINY)
    double.ram_bytes = 1_000_000
    refused = http.post("/api/generate", json={"model": TINY, "prompt": "x"})
    assert error_of(refused) == (500, OOM_MESSAGES[0])
    assert double.loaded() == []


def test_loaded_model_limit_evicts_shortest_keep_alive(double: OllamaDouble, http: httpx.Client) -> None:
    double.max_loaded_models = 2
    for name, keep in (("a:1", "1h"), ("b:1", "1m"), ("c:1", "10m")):
        double.install(name, size=20_000)
        http.post("/api/generate", json={"model": name, "keep_alive": keep}).raise_for_status()
    assert double.loaded() == ["a:1", "c:1"]


def test_human_bytes_and_go_time_match_go() -> None:
    assert [human_bytes2(n) for n in (512, 2048, 5 << 20, int(12.44 * (1 << 30)))] == [
        "512 B", "2.0 KiB", "5.0 MiB", "12.4 GiB",
    ]  # fmt: skip
    moment = datetime(2025, 5, 10, 8, 6, 48, 639712, tzinfo=timezone(timedelta(hours=-7)))
    assert go_time(moment) == "2025-05-10T08:06:48.639712-07:00"
    assert go_time(moment.replace(microsecond=500000).astimezone(UTC)) == "2025-05-10T15:06:48.5Z"


# -- request handling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "missing request body"),
        (b"  \n", "missing request body"),
        (b"xyz", "invalid character 'x' looking for beginning of value"),
        (b'{"model": "a"', "unexpected EOF"),
        (b'{"model": 5}', "json: cannot unmarshal number into Go struct field PullRequest.model of type string"),
        (b'{"model": "a", "stream": "yes"}',
         "json: cannot unmarshal string into Go struct field PullRequest.stream of type bool"),
        (b"[1]", "json: cannot unmarshal array into Go value of type api.PullRequest"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_in_gos_words(http: httpx.Client, content: bytes, message: str) -> None:
    assert error_of(http.post("/api/pull", content=content)) == (400, message)


def test_unknown_route_and_wrong_method_are_plain_text(http: httpx.Client) -> None:
    missing = http.get("/api/nothing")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    wrong = http.get("/api/pull")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")
    assert http.post("/api/delete", json={"model": TINY}).status_code == 405


def test_foreign_host_header_is_forbidden(http: httpx.Client) -> None:
    refused = http.get("/api/tags", headers={"Host": "attacker.example.com"})
    assert (refused.status_code, refused.content) == (403, b"")
    assert http.get("/api/tags", headers={"Host": "box.local"}).status_code == 200


def test_request_log_shows_keep_alive_zero(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(TINY)
    client.generate(model=TINY, keep_alive=0)
    (record,) = double.requests_to("/api/generate")
    assert (record.method, record.body["model"], record.body["keep_alive"]) == ("POST", TINY, 0)
    double.clear_requests()
    assert double.requests == []


# -- fault switches ---------------------------------------------------------------------------------


def test_down_refuses_connections_and_comes_back_on_same_port(
    double: OllamaDouble, client: ollama.Client
) -> None:
    double.install(TINY)
    url = double.url
    double.faults.down = True
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/tags", verify=TLS)
    with pytest.raises(ConnectionError):
        client.list()
    double.down = False
    assert double.url == url
    assert [m.model for m in client.list().models] == [TINY]


def test_down_drops_a_pull_in_progress(double: OllamaDouble, http: httpx.Client) -> None:
    double.pull_delay_s = 0.2

    def go_down_after_first_step() -> None:
        while double.partial_bytes(TINY) == 0:
            time.sleep(0.01)
        double.faults.down = True

    threading.Thread(target=go_down_after_first_step, daemon=True).start()
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/api/pull", json={"model": TINY})
    assert 0 < double.partial_bytes(TINY) < TINY_SIZE


def test_slow_s_delays_every_answer(double: OllamaDouble, http: httpx.Client) -> None:
    double.faults.slow_s = 0.3
    started = time.monotonic()
    assert http.get("/").status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/tags", timeout=0.1)


def test_hang_s_accepts_then_says_nothing(double: OllamaDouble, http: httpx.Client) -> None:
    double.faults.hang_s = 0.2
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/tags")
    assert time.monotonic() - started >= 0.2
    double.faults.hang_s = 30
    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/version", timeout=0.2)


def test_http_500_answers_every_api_call(
    double: OllamaDouble, http: httpx.Client, client: ollama.Client
) -> None:
    double.faults.http_500 = True
    assert error_of(http.get("/api/tags")) == (500, "internal server error")
    double.faults.http_500 = "disk on fire"
    with pytest.raises(ollama.ResponseError) as caught:
        client.ps()
    assert (caught.value.status_code, caught.value.error) == (500, "disk on fire")
    assert http.get("/").status_code == 200


def test_malformed_line_breaks_the_json_stream(
    double: OllamaDouble, http: httpx.Client, client: ollama.Client
) -> None:
    double.faults.malformed_line = True
    raw = http.post("/api/pull", json={"model": TINY}).text.splitlines()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw[1])
    assert json.loads(raw[0]) == {"status": "pulling manifest"}
    with pytest.raises(json.JSONDecodeError):
        list(client.pull(EMBED, stream=True))


def test_pull_error_arrives_in_stream_and_keeps_bytes(double: OllamaDouble, http: httpx.Client) -> None:
    double.faults.pull_error = "max retries exceeded: connection reset"
    lines = ndjson(http.post("/api/pull", json={"model": TINY}))
    assert lines[-1] == {"error": "max retries exceeded: connection reset"}
    assert lines[-2]["completed"] == double.partial_bytes(TINY) > 0
    whole = http.post("/api/pull", json={"model": TINY, "stream": False})
    assert error_of(whole) == (500, "max retries exceeded: connection reset")
    assert double.installed() == []


def test_fail_next_load_fails_once(double: OllamaDouble, client: ollama.Client) -> None:
    double.install(TINY)
    double.faults.fail_next_load = "llama runner process has terminated: exit status 2"
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model=TINY, prompt="hi")
    assert (caught.value.status_code, caught.value.error) == (
        500,
        "llama runner process has terminated: exit status 2",
    )
    assert client.generate(model=TINY, prompt="hi").done
    assert double.faults.fail_next_load is None


# -- default library and the subprocess form --------------------------------------------------------


def test_default_library_is_the_catalog() -> None:
    double = OllamaDouble()
    for entry in load_catalog():
        model = double.library_model(entry.ollama_tag)
        assert isinstance(model, LibraryModel)
        if entry.file_size_bytes:  # the catalog's file size leaves a separate projector out
            assert model.size == entry.file_size_bytes + entry.projector_bytes
        else:
            assert model.size == entry.download_size_mb * 1_000_000
        assert model.capabilities == entry.capabilities
        assert model.details()["parameter_size"] and model.details()["quantization_level"]
        assert model.model_info["general.architecture"] == model.family


def test_module_runs_as_subprocess() -> None:
    tag = next(iter(load_catalog())).ollama_tag
    src = str(Path(model_manager.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src, "TZ": "IST-5:30"}
    command = [sys.executable, "-m", "model_manager.testing", "--port", "0", "--install", tag]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", proc.stdout.readline())
            assert match is not None
            (model,) = httpx.get(f"{match.group(1)}/api/tags", verify=TLS).json()["models"]
            assert model["name"] == tag and model["modified_at"].endswith("+05:30")
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0


# -- held to Ollama's own answers (tests/data/ollama/answers.json, from Ollama's source) ---------------

ANSWERS = json.loads((Path(__file__).parent / "data" / "ollama" / "answers.json").read_text())


def _keys(name: str) -> list[str]:
    return list(ANSWERS["shapes"][name]["keys"])


def test_answers_have_ollamas_fields_in_ollamas_order(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    double.install(EMBED)
    assert list(http.get("/api/version").json()) == _keys("version")
    for model in http.get("/api/tags").json()["models"]:
        assert list(model) == _keys("tags_model") and list(model["details"]) == _keys("tags_details")
    load = http.post("/api/generate", json={"model": TINY}).json()
    assert list(load) == _keys("generate_load") and load["done_reason"] == "load"
    assert http.post("/api/embed", json={"model": EMBED}).json() == {"model": EMBED, "embeddings": []}
    assert _keys("embed_load") == ["model", "embeddings"]
    for model in http.get("/api/ps").json()["models"]:
        assert list(model) == _keys("ps_model") and list(model["details"]) == _keys("ps_details")
    unload = http.post("/api/generate", json={"model": TINY, "keep_alive": 0}).json()
    assert list(unload) == _keys("generate_unload") and unload["done_reason"] == "unload"
    show = ANSWERS["shapes"]["show"]
    doc = http.post("/api/show", json={"model": TINY}).json()
    assert list(doc) == [k for k in show["order"] if k in doc] and set(show["always"]) <= set(doc)
    assert all(list(t) == _keys("tensor") for t in doc["tensors"])
    for line in ndjson(http.post("/api/pull", json={"model": TINY})):
        assert list(line) == [k for k in _keys("pull_progress") if k in line]


@pytest.mark.parametrize(
    "case", ANSWERS["refusals"], ids=lambda c: f"{c['path']} {c['status']} {c['error'][:30]}"
)
def test_refusals_have_ollamas_status_and_words(double: OllamaDouble, http: httpx.Client, case: Any) -> None:
    double.install(TINY)
    double.install(EMBED)
    content = b"" if case["body"] is None else json.dumps(case["body"]).encode()
    answer = http.request(case["method"], case["path"], content=content)
    assert error_of(answer) == (case["status"], case["error"]), case["source"]


@pytest.mark.parametrize("case", ANSWERS["stream_errors"], ids=lambda c: c["lines"][-1]["error"][:30])
def test_stream_errors_have_ollamas_words(http: httpx.Client, case: Any) -> None:
    assert ndjson(http.post("/api/pull", json=case["body"])) == case["lines"], case["source"]


def test_the_double_has_its_own_name_rules() -> None:
    """So that a name bug in the manager or in the double shows as a disagreement, not a shared belief."""
    testing = Path(model_manager.__file__).parent / "testing"
    for path in testing.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = node.module or ""
                names = {alias.name for alias in node.names}
                assert target not in ("names", "model_manager.names") and not (
                    node.level == 2 and (target == "names" or (not target and "names" in names))
                ), f"{path.name} imports the manager's name rules"


# -- what current Ollama does -----------------------------------------------------------------------


def test_tags_and_show_carry_capabilities_lengths_projector_and_vocabulary(
    double: OllamaDouble, http: httpx.Client
) -> None:
    info = {"general.architecture": "qwen2", "qwen2.context_length": 32768, "qwen2.embedding_length": 1536,
            "qwen2.vocab_size": 151936, "qwen2.block_count": 28}  # fmt: skip
    double.add_library_model(
        "vis:7b", size=50_000_000, model_info=info, capabilities=["completion", "vision"]
    )
    double.install("vis:7b")
    double.install(EMBED)
    tags = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
    assert tags[EMBED]["capabilities"] == ["embedding"]
    assert tags["vis:7b"]["details"].items() >= {"context_length": 32768, "embedding_length": 1536}.items()
    shown = http.post("/api/show", json={"model": "vis:7b"}).json()
    token_embd = next(t for t in shown["tensors"] if t["name"] == "token_embd.weight")
    assert token_embd["shape"] == [1536, 151936]
    assert "qwen2.vocab_size" not in shown["model_info"]  # a GGUF has no such key: the tensor says it


def test_a_separate_projector_shows_as_projector_info(http: httpx.Client) -> None:
    with OllamaDouble() as double:
        entry = next(e for e in load_catalog() if e.projector_bytes)
        double.install(entry.ollama_tag)
        with httpx.Client(base_url=double.url, timeout=5, verify=TLS) as client:
            shown = client.post("/api/show", json={"model": entry.ollama_tag}).json()
            (model,) = client.get("/api/tags").json()["models"]
    projector = shown["projector_info"]
    assert projector["general.architecture"] == "clip" and projector["clip.has_vision_encoder"] is True
    assert projector["clip.vision.image_mean"] is None  # arrays are null unless verbose
    assert "vision" in shown["capabilities"] and model["capabilities"][-1] == "vision"
    layers = double.library_model(entry.ollama_tag).layers()  # type: ignore[union-attr]
    assert [x.size for x in layers if x.media_type.endswith(".projector")] == [entry.projector_bytes]


def test_a_client_that_hangs_up_aborts_the_load(double: OllamaDouble) -> None:
    tiny = double.install(TINY)
    double.install("other:1b", size=20_000)
    double.load("other:1b")
    double.vram_bytes = TINY_SIZE + tiny.kv_cache_bytes(4096)  # room for one: "other" is evicted for tiny
    double.load_delay_s = 5.0
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{double.url}/api/generate", json={"model": TINY}, timeout=0.3, verify=TLS)
    deadline = time.monotonic() + 5
    while double.aborted_loads != [TINY]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert double.loaded() == []  # the evicted model stays evicted; the aborted one never arrives


def test_a_load_in_progress_is_not_in_ps_yet(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    double.load_delay_s = 0.5
    thread = threading.Thread(target=lambda: http.post("/api/generate", json={"model": TINY}, timeout=5))
    thread.start()
    time.sleep(0.2)
    assert http.get("/api/ps").json() == {"models": []}
    thread.join()
    assert double.loaded() == [TINY]


@pytest.mark.parametrize("text", [True, *OOM_MESSAGES[1:]])
def test_out_of_memory_evicts_every_other_model_then_fails(
    double: OllamaDouble, http: httpx.Client, text: bool | str
) -> None:
    double.install(TINY)
    double.install("other:1b", size=20_000)
    double.load("other:1b")
    double.faults.oom_next_load = text
    refused = http.post("/api/generate", json={"model": TINY})
    assert error_of(refused) == (500, OOM_MESSAGES[0] if text is True else text)
    assert double.loaded() == [] and double.faults.oom_next_load is False
    assert http.post("/api/generate", json={"model": TINY}).status_code == 200


def test_embed_loads_an_embedding_model_and_keep_alive_applies(
    double: OllamaDouble, http: httpx.Client
) -> None:
    double.install(EMBED)
    assert http.post("/api/embed", json={"model": EMBED, "input": [], "keep_alive": -1}).status_code == 200
    (runner,) = http.get("/api/ps").json()["models"]
    assert seconds_until(runner["expires_at"]) > 100 * 365 * 86400


def test_pull_verification_is_a_silent_pause(double: OllamaDouble) -> None:
    double.verify_delay_s = 2.0
    seen: list[str] = []
    timeout = httpx.Timeout(5, read=0.3)
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream(
            "POST", f"{double.url}/api/pull", json={"model": TINY}, timeout=timeout, verify=TLS
        ) as r,
    ):
        seen.extend(json.loads(line)["status"] for line in r.iter_lines())
    assert seen[-1] == "verifying sha256 digest"  # then nothing, longer than the client waits
    double.verify_delay_s = 0.0
    assert ndjson(httpx.post(f"{double.url}/api/pull", json={"model": TINY}, verify=TLS))[-1] == {
        "status": "success"
    }


def test_a_missing_blob_fails_the_pull_without_the_manifest_prefix(
    double: OllamaDouble, http: httpx.Client
) -> None:
    double.faults.missing_blob = True
    lines = ndjson(http.post("/api/pull", json={"model": TINY}))
    assert lines[0] == {"status": "pulling manifest"} and lines[-1] == {"error": "file does not exist"}


def test_source_markers_on_pull_and_generate(double: OllamaDouble, http: httpx.Client) -> None:
    assert ndjson(http.post("/api/pull", json={"model": f" {TINY}:local\n"}))[-1] == {"status": "success"}
    assert double.installed() == [TINY]
    assert http.post("/api/generate", json={"model": f"{TINY}:local"}).status_code == 200
    cloud = http.post("/api/generate", json={"model": f"{TINY}:cloud"})
    assert cloud.status_code == 502 and "ollama.com" in cloud.json()["error"]
    stub = ndjson(http.post("/api/pull", json={"model": "gpt-oss:20b:cloud"}))  # the stub gpt-oss:20b-cloud
    assert stub[-1] == {"error": "pull model manifest: file does not exist"}


def test_garbled_answer_faults(double: OllamaDouble, http: httpx.Client) -> None:
    double.install(TINY)
    double.faults.not_http = True
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{double.url}/api/tags", verify=TLS)
    double.faults.not_http = False
    double.faults.truncate_body = True
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{double.url}/api/tags", verify=TLS)
    double.faults.truncate_body = False
    double.faults.model_fields = {"size": "big"}
    assert [m["size"] for m in http.get("/api/tags").json()["models"]] == ["big"]
    double.faults.reset()
    assert http.get("/api/tags").json()["models"][0]["size"] == TINY_SIZE


def test_the_doubles_generation_time_grows_with_the_model(ollama: OllamaDouble) -> None:
    small, large = "llama3.2:1b-instruct-q8_0", "llama3.1:8b-instruct-q4_K_M"
    per_token = {}
    for tag in (small, large):
        ollama.install(tag)
        answer = httpx.post(
            f"{ollama.url}/api/generate",
            json={"model": tag, "prompt": "one two three", "stream": False},
            timeout=30,
        ).json()
        per_token[tag] = answer["eval_duration"] / answer["eval_count"]
        assert answer["eval_count"] / (answer["eval_duration"] / 1e9) == pytest.approx(
            ollama.generation_rate(tag), rel=1e-6
        )
    sizes = {tag: ollama.library_model(tag).size for tag in (small, large)}  # type: ignore[union-attr]
    assert per_token[large] / per_token[small] == pytest.approx(sizes[large] / sizes[small], rel=1e-6)
    ollama.memory_bandwidth_gbps = 50.0
    assert ollama.generation_rate(small) == pytest.approx(50e9 / sizes[small])
    with pytest.raises(ValueError, match="memory_bandwidth_gbps"):
        ollama.memory_bandwidth_gbps = 0
