"""The Ollama adapter: host parsing, its one request path, its error translation, loads and pulls."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from model_manager import (
    DownloadFailedError,
    InsufficientVramError,
    InvalidModelNameError,
    LoadTimedOutError,
    ModelNotFoundError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from model_manager.ollama_client import OUT_OF_MEMORY, OllamaClient, is_out_of_memory, parse_host
from model_manager.testing import DEFAULT_VERSION, OllamaDouble

TINY = "tiny:1b"


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ollama/ollama envconfig/config_test.go TestHost and TestConnectableHost: OLLAMA_HOST → the address a client
# dials (Host, then ConnectableHost). Go prints an empty host as "http://:1234"; Go's dialer then dials the
# local system, which is what 127.0.0.1 says here.
GO_HOST_TESTS = [
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":1234", "http://127.0.0.1:1234"),
    ("1.2.3.4:1234", "http://1.2.3.4:1234"),
    ("example.com", "http://example.com:11434"),
    ("example.com:1234", "http://example.com:1234"),
    (":0", "http://127.0.0.1:0"),
    (":66000", "http://127.0.0.1:11434"),
    (":-1", "http://127.0.0.1:11434"),
    ("[::1]", "http://[::1]:11434"),
    ("::1", "http://[::1]:11434"),
    ("[::1]:1337", "http://[::1]:1337"),
    (" 1.2.3.4 ", "http://1.2.3.4:11434"),
    ('"1.2.3.4"', "http://1.2.3.4:11434"),
    (' " 1.2.3.4 " ', "http://1.2.3.4:11434"),
    ("'1.2.3.4'", "http://1.2.3.4:11434"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://1.2.3.4:4321", "https://1.2.3.4:4321"),
    ("https://example.com/ollama", "https://example.com:443/ollama"),
    ("ollama.com", "https://ollama.com:443"),
    # ConnectableHost: unspecified bind addresses are dialled on loopback.
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:1234", "http://127.0.0.1:1234"),
    ("[::]", "http://[::1]:11434"),
    ("[::]:1234", "http://[::1]:1234"),
    ("https://0.0.0.0:4321", "https://127.0.0.1:4321"),
    ("192.168.1.5:8080", "http://192.168.1.5:8080"),
    # Host's other branches (the same function): a bare "::", an IPv4-mapped address, a path kept as
    # written, a port left empty, non-numeric or too large, and any other scheme kept with port 11434.
    ("::", "http://[::1]:11434"),
    ("::ffff:0.0.0.0", "http://127.0.0.1:11434"),
    ("[::1", "http://[::1]:11434"),
    ("example.com/ollama/", "http://example.com:11434/ollama/"),
    ("host:", "http://host:11434"),
    ("host:abc", "http://host:11434"),
    ("host:99999", "http://host:11434"),
    ("\tlocalhost:1\n", "http://localhost:1"),
    ("HTTP://h", "HTTP://h:11434"),
    ("http://", "http://127.0.0.1:80"),
    ("OLLAMA.COM", "http://OLLAMA.COM:11434"),
    (None, "http://127.0.0.1:11434"),
]


@pytest.mark.parametrize(("value", "url"), GO_HOST_TESTS)
def test_ollama_host_is_read_as_ollamas_envconfig_reads_it(value: str | None, url: str) -> None:
    assert parse_host(value) == url


def test_ollama_host_unspecified_address_reaches_the_double(ollama: OllamaDouble) -> None:
    """What Ollama's FAQ tells users to set for the server (``OLLAMA_HOST=0.0.0.0:PORT``) must reach it."""
    client = OllamaClient(f"0.0.0.0:{ollama.port}")
    assert client.host == f"http://127.0.0.1:{ollama.port}"
    assert client.version() == DEFAULT_VERSION
    assert OllamaClient(f'"http://0.0.0.0:{ollama.port}"').version() == DEFAULT_VERSION


def test_light_reads_against_the_double(ollama: OllamaDouble) -> None:
    ollama.install("llama3.2:1b-instruct-q8_0")
    client = OllamaClient(ollama.url)
    assert client.version() == DEFAULT_VERSION
    [model] = client.list_models()
    assert model.name == "llama3.2:1b-instruct-q8_0" and model.size_bytes > 0 and len(model.digest) == 64


def test_light_reads_translate_failures(ollama: OllamaDouble, down_url: str) -> None:
    with pytest.raises(OllamaUnavailableError, match="cannot connect"):
        OllamaClient(down_url).list_models()
    ollama.faults.http_500 = "boom"
    with pytest.raises(OllamaError, match=r"boom \(HTTP 500\)"):
        OllamaClient(ollama.url).list_models()
    ollama.faults.http_500 = False
    ollama.faults.hang_s = 2.0
    with pytest.raises(OllamaUnavailableError, match="did not answer in time"):
        OllamaClient(ollama.url, timeout_s=0.5).list_models()


# --- the one request path, driven through httpx.MockTransport ---------------------------------------


def _mocked(handler: Callable[[httpx.Request], httpx.Response]) -> OllamaClient:
    return OllamaClient("http://ollama.test:11434", transport=httpx.MockTransport(handler))


def test_every_call_goes_through_the_transport_given() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        answers: dict[str, Any] = {
            "/api/version": {"version": "0.30.1"},
            "/api/tags": {"models": []},
            "/api/ps": {"models": []},
            "/api/show": {"model_info": {"general.architecture": "llama"}, "capabilities": ["completion"]},
            "/api/generate": {"done": True, "done_reason": "load"},
        }
        if request.url.path == "/api/delete":
            return httpx.Response(200)
        return httpx.Response(200, json=answers[request.url.path])

    client = _mocked(handler)
    assert client.version() == "0.30.1"
    assert client.list_models() == [] and client.running() == []
    assert client.show("m").capabilities == ("completion",)
    client.load("m")
    client.unload("m")
    client.delete("m")
    assert seen == [
        ("GET", "/api/version"),
        ("GET", "/api/tags"),
        ("GET", "/api/ps"),
        ("POST", "/api/show"),
        ("POST", "/api/generate"),
        ("POST", "/api/generate"),
        ("DELETE", "/api/delete"),
    ]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"error": "model 'm:latest' not found"}, ModelNotInstalledError),
        (400, {"error": "invalid model name"}, InvalidModelNameError),
        (
            500,
            {"error": "model requires more system memory (9.1 GiB) than is available (7.9 GiB)"},
            InsufficientVramError,
        ),
        (500, {"error": "boom"}, OllamaError),
        (502, b"<html>bad gateway</html>", OllamaError),
    ],
)
def test_error_answers_are_translated_once(status: int, body: Any, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    with pytest.raises(error):
        _mocked(handler).show("m")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b'{"models": [{"name": "a"'),
        httpx.Response(200, json={"models": [{"model": "a", "size": "big"}]}),
        httpx.Response(200, json={"models": "all of them"}),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
    ids=["truncated", "wrong-type", "not-a-list", "not-an-object"],
)
def test_garbled_answers_are_ollama_errors(answer: httpx.Response) -> None:
    with pytest.raises(OllamaError, match="malformed"):
        _mocked(lambda request: answer).list_models()


def test_transport_failures_are_ollama_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OllamaUnavailableError, match="cannot connect"):
        _mocked(refuse).version()


def test_an_error_line_in_a_pull_stream_fails_the_pull() -> None:
    lines = b'{"status":"pulling manifest"}\n{"error":"max retries exceeded: EOF"}\n'
    seen: list[str] = []
    client = _mocked(lambda request: httpx.Response(200, content=lines))
    with pytest.raises(DownloadFailedError, match="max retries exceeded"):
        client.pull("m", lambda status, done, total: seen.append(status))
    assert seen == ["pulling manifest"]


# --- loads: which endpoint, out of memory, timeouts ---------------------------------------------------


def test_load_picks_the_endpoint_by_capabilities() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, body))
        if request.url.path == "/api/embed":
            return httpx.Response(200, json={"model": body["model"], "embeddings": []})
        return httpx.Response(200, json={"done": True, "done_reason": "load"})

    client = _mocked(handler)
    client.load("chat:1b", 600, capabilities=("completion", "tools"))
    client.load("embed:1b", -1, capabilities=("embedding",))
    client.load("unknown:1b")
    assert seen == [
        ("/api/generate", {"model": "chat:1b", "prompt": "", "keep_alive": 600, "stream": False}),
        ("/api/embed", {"model": "embed:1b", "input": [], "keep_alive": -1, "stream": False}),
        ("/api/generate", {"model": "unknown:1b", "prompt": "", "stream": False}),
    ]


def test_a_model_that_refuses_generate_is_loaded_through_embed() -> None:
    """Facts can be stale (a model re-pulled under the same name): Ollama's refusal says which it is."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/api/generate":
            return httpx.Response(400, json={"error": '"e:1b" does not support generate'})
        return httpx.Response(200, json={"model": "e:1b", "embeddings": []})

    _mocked(handler).load("e:1b", capabilities=("completion",))
    assert paths == ["/api/generate", "/api/embed"]


# llm/llama_server.go WaitUntilRunning and llm/status.go outOfMemorySubstrings (v0.30 onwards), the
# scheduler's older wording, and x/mlxrunner/client.go for MLX loads.
OOM_TEXTS = [
    "llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory",
    "llama-server reported out-of-memory during startup: ggml_backend_cuda_buffer_type_alloc_buffer: "
    "allocating 8192.00 MiB on device 0: cudaMalloc failed: out of memory",
    "llama-server reported out-of-memory during startup: llama_init_from_model: failed to allocate buffer",
    "llama-server reported out-of-memory during startup: error: Insufficient Memory "
    "(00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)",
    "llama-server reported out-of-memory during startup: hipMalloc failed: out of memory",
    "llama-server reported out-of-memory during startup: vk_error_out_of_device_memory",
    "llama-server reported out-of-memory during startup: not enough memory",
    "llama-server startup failed after projector CPU offload retry: llama-server reported out-of-memory "
    "during startup: allocation failed",
    "model requires more system memory (9.1 GiB) than is available (7.9 GiB)",
    "model requires 12.0 GiB but only 7.5 GiB are available (after 1.0 GiB overhead)",
]


@pytest.mark.parametrize("text", OOM_TEXTS)
def test_every_out_of_memory_wording_is_insufficient_vram(text: str) -> None:
    assert is_out_of_memory(text)
    answer = httpx.Response(500, json={"error": text})
    with pytest.raises(InsufficientVramError) as caught:
        _mocked(lambda request: answer).load("m:1b")
    assert text in caught.value.message


@pytest.mark.parametrize("needle", OUT_OF_MEMORY)
def test_the_out_of_memory_list_matches_in_any_case(needle: str) -> None:
    assert is_out_of_memory(f"llama-server process has terminated: {needle.upper()}")


@pytest.mark.parametrize(
    "text",
    [
        "llama-server process has terminated: exit status 2",
        "timed out waiting for llama-server to start - ",
        "model requires a newer version of Ollama",
    ],
)
def test_other_load_failures_stay_ollama_errors(text: str) -> None:
    answer = httpx.Response(500, json={"error": text})
    with pytest.raises(OllamaError):
        _mocked(lambda request: answer).load("m:1b")


def test_a_silent_load_past_the_limit_is_a_load_timeout(ollama: OllamaDouble) -> None:
    ollama.install(TINY, size=20_000)
    ollama.load_delay_s = 5.0
    client = OllamaClient(ollama.url, load_timeout_s=0.3)
    with pytest.raises(LoadTimedOutError) as caught:
        client.load(TINY)
    assert caught.value.http_status == 504 and caught.value.exit_code == 1
    assert caught.value.message.startswith("Load timed out: ")
    # Hanging up aborted the load there, as Ollama's WaitUntilRunning does.
    wait_until(lambda: ollama.aborted_loads == [TINY])
    assert ollama.loaded() == []


def test_a_refused_connection_during_load_is_still_unreachable(down_url: str) -> None:
    with pytest.raises(OllamaUnavailableError):
        OllamaClient(down_url, load_timeout_s=0.3).load(TINY)


# --- pulls: the verification silence and the blob that is gone ------------------------------------------


def test_verification_silence_has_its_own_limit_scaled_to_the_bytes(ollama: OllamaDouble) -> None:
    """Ollama hashes every fetched blob after ``verifying sha256 digest`` and sends nothing meanwhile."""
    ollama.add_library_model(TINY, size=8_000_000)
    ollama.verify_delay_s = 1.0
    client = OllamaClient(ollama.url, pull_silence_timeout_s=0.3, verify_mb_s=8.0)
    assert client.verify_limit_s(8_000_000) == pytest.approx(1.3)
    statuses: list[str] = []
    client.pull(TINY, lambda status, done, total: statuses.append(status))
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert ollama.installed() == [TINY]


def test_verification_silence_past_its_limit_fails_the_pull(ollama: OllamaDouble) -> None:
    ollama.add_library_model(TINY, size=8_000_000)
    ollama.verify_delay_s = 3.0
    client = OllamaClient(ollama.url, pull_silence_timeout_s=0.3, verify_mb_s=80.0)
    with pytest.raises(DownloadFailedError, match="did not answer in time"):
        client.pull(TINY)


def test_a_re_pull_of_blobs_on_disk_verifies_nothing(ollama: OllamaDouble) -> None:
    ollama.add_library_model(TINY, size=8_000_000)
    ollama.install(TINY)
    ollama.verify_delay_s = 3.0  # not reached: nothing was fetched
    OllamaClient(ollama.url, pull_silence_timeout_s=0.5, verify_mb_s=1.0).pull(TINY)


def test_a_blob_missing_mid_pull_is_download_failed_not_model_not_found(ollama: OllamaDouble) -> None:
    ollama.add_library_model(TINY, size=8_000_000)
    ollama.faults.missing_blob = True
    with pytest.raises(DownloadFailedError) as caught:
        OllamaClient(ollama.url).pull(TINY)
    assert caught.value.message == f"Download failed: {TINY}: file does not exist"
    with pytest.raises(ModelNotFoundError, match="pull model manifest: file does not exist"):
        OllamaClient(ollama.url).pull("nothing:like-it")


def test_a_non_object_tensor_is_a_malformed_answer() -> None:
    answer = httpx.Response(200, json={"model_info": {}, "tensors": ["token_embd.weight"]})
    with pytest.raises(OllamaError, match="malformed"):
        _mocked(lambda request: answer).show("m")
