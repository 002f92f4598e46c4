"""The Ollama adapter: host parsing, its one request path and its error translation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ollama._client import _parse_host

from model_manager import (
    DownloadFailedError,
    InsufficientVramError,
    InvalidModelNameError,
    InvalidRequestError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from model_manager.ollama_client import OllamaClient, parse_host
from model_manager.testing import DEFAULT_VERSION, OllamaDouble

# What the official Python client's _parse_host (ollama/ollama-python, _client.py) makes of each value, plus
# IPv6 and path forms.
HOSTS = [
    (None, "http://127.0.0.1:11434"),
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("1.2.3.4:5678", "http://1.2.3.4:5678"),
    (":5678", "http://127.0.0.1:5678"),
    ("http://example.com", "http://example.com:80"),
    ("https://example.com", "https://example.com:443"),
    ("example.com/ollama", "http://example.com:11434/ollama"),
    ("example.com/ollama/", "http://example.com:11434/ollama"),
    ("[::1]", "http://[::1]:11434"),
    ("[::1]:8080", "http://[::1]:8080"),
    ("https://[::1]/x", "https://[::1]:443/x"),
]


@pytest.mark.parametrize(("value", "url"), HOSTS)
def test_parse_host_table(value: str | None, url: str) -> None:
    assert parse_host(value) == url == _parse_host(value)


_hostish = st.text(alphabet="abc019.:/[]-_", max_size=25) | st.sampled_from(
    ["http://", "https://", "ftp://"]
).flatmap(lambda scheme: st.text(alphabet="abc019.:/-", max_size=20).map(lambda rest: scheme + rest))


@given(_hostish)
def test_parse_host_agrees_with_the_official_client(value: str) -> None:
    try:
        expected = _parse_host(value)
    except ValueError:
        with pytest.raises(InvalidRequestError):
            parse_host(value)
        return
    assert parse_host(value) == expected


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
