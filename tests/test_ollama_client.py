"""The Ollama adapter: host parsing as the official client does it, and its light read path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ollama._client import _parse_host

from model_manager import InvalidRequestError, OllamaError, OllamaUnavailableError
from model_manager.ollama_client import OllamaClient, parse_host
from model_manager.testing import DEFAULT_VERSION, OllamaDouble

# The table of ../shared/reference/ollama-api.md §1 (python column), plus IPv6 and path forms.
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
    assert client._clients is None  # the official client was not needed for these reads


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
