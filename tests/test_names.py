"""Ollama's model-name rules (types/model/name.go), table-driven and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_manager.errors import InvalidModelNameError
from model_manager.names import name_key, parse_model_name, validate_model_name


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("llama3", "llama3:latest"),
        ("llama3.1:8b-instruct", "llama3.1:8b-instruct"),
        ("user/model", "user/model:latest"),
        ("library/llama3:8b", "llama3:8b"),
        ("registry.ollama.ai/library/llama3:8b", "llama3:8b"),
        ("hf.co/bartowski/Foo-GGUF:Q4_K_M", "hf.co/bartowski/Foo-GGUF:Q4_K_M"),
        ("localhost:5000/ns/m:v1", "localhost:5000/ns/m:v1"),
        ("  qwen2.5vl:7b ", "qwen2.5vl:7b"),
    ],
)
def test_valid_names(raw: str, display: str) -> None:
    assert parse_model_name(raw).display() == display


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "llama3:",
        "/model",
        "ns/model/",
        "a/b/c/d",
        "my.ns/model",
        "localhost:5000/model",
        "model@sha256:abc",
        "name:tag:extra",
        "../../etc/passwd",
        "mo del",
        "model;rm -rf /",
        "$(reboot)",
        "mödel",
        "model\x00",
        "model\n",
        "a" * 81,
        "x" * 1000,
        "-leading",
        ".hidden",
    ],
)
def test_invalid_names(raw: str) -> None:
    with pytest.raises(InvalidModelNameError) as info:
        validate_model_name(raw)
    assert info.value.message.startswith("Invalid model name")
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize("raw", [None, 3, b"llama3", ["llama3"]])
def test_non_strings_are_invalid(raw: object) -> None:
    with pytest.raises(InvalidModelNameError):
        parse_model_name(raw)


def test_lookup_key_ignores_case_and_implied_tag() -> None:
    assert name_key("Llama3:Latest") == name_key("llama3") == "llama3:latest"


_part = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(model=_part, tag=_part)
def test_generated_valid_names_round_trip(model: str, tag: str) -> None:
    name = f"{model}:{tag}"
    assert parse_model_name(name).display() == name
    assert parse_model_name(parse_model_name(name).display()) == parse_model_name(name)


@given(st.text(max_size=60))
def test_any_text_is_parsed_or_rejected_cleanly(text: str) -> None:
    try:
        parsed = parse_model_name(text)
    except InvalidModelNameError:
        return
    assert parsed.display().isascii()
    assert parse_model_name(parsed.display()).display() == parsed.display()
