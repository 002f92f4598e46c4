"""Ollama's model-name rules, table-driven and as properties.

The tables come from Ollama's source (ollama/ollama): types/model/name.go ``ParseName``/``IsValid``/
``DisplayShortest``, internal/modelref/modelref.go ``ParseRef``/``NormalizePullName`` and the server's
``parseNormalizePullModelRef`` (server/model_resolver.go). The Ollama double keeps its own port of those
functions (``model_manager.testing._names``); the property tests hold the two to the same answers, so a
name bug in either shows as a disagreement.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from model_manager.errors import InvalidModelNameError
from model_manager.names import name_key, parse_model_name, trim, validate_model_name
from model_manager.testing import _names as ollama_names


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("llama3", "llama3:latest"),
        ("llama3.1:8b-instruct", "llama3.1:8b-instruct"),
        ("user/model", "user/model:latest"),
        ("library/llama3:8b", "llama3:8b"),
        ("registry.ollama.ai/library/llama3:8b", "llama3:8b"),
        ("REGISTRY.OLLAMA.AI/Library/x", "x:latest"),
        ("hf.co/bartowski/Foo-GGUF:Q4_K_M", "hf.co/bartowski/Foo-GGUF:Q4_K_M"),
        ("localhost:5000/ns/m:v1", "localhost:5000/ns/m:v1"),
        ("h:1:2/n/m", "h:1:2/n/m:latest"),
        ("_x", "_x:latest"),
        ("x.y", "x.y:latest"),
        ("m:1.5b-q4_K_M", "m:1.5b-q4_K_M"),
        # A scheme before the host is accepted and never shown (name.go ParseNameBare, DisplayShortest).
        ("http://localhost:5000/ns/m:v1", "localhost:5000/ns/m:v1"),
        ("https://registry.ollama.ai/library/llama3:8b", "llama3:8b"),
        # Surrounding white space is trimmed as Go's strings.TrimSpace does (modelref.go ParseRef).
        ("  qwen2.5vl:7b ", "qwen2.5vl:7b"),
        ("\tllama3\n", "llama3:latest"),
        ("\u3000llama3\u00a0", "llama3:latest"),
        # Source markers (modelref.go parseSourceSuffix); a cloud name is its local stub
        # (NormalizePullName: base-cloud with a tag, base:cloud without).
        ("llama3:local", "llama3:latest"),
        ("llama3:latest:local", "llama3:latest"),
        ("llama3.2:3b:LOCAL", "llama3.2:3b"),
        ("llama3:cloud", "llama3:cloud"),
        ("gpt-oss:20b:cloud", "gpt-oss:20b-cloud"),
        ("gpt-oss:20b-cloud", "gpt-oss:20b-cloud"),
        ("m:foo-CLOUD", "m:foo-cloud"),
        ("m: cloud", "m:cloud"),
        ("foo-cloud", "foo-cloud:latest"),
    ],
)
def test_valid_names(raw: str, display: str) -> None:
    assert parse_model_name(raw).display() == display
    assert ollama_names.parse_normalize_pull(raw).name.display_shortest() == display


@pytest.mark.parametrize(
    ("raw", "source"),
    [("llama3:local", "local"), ("llama3:cloud", "cloud"), ("a:b-cloud", "cloud"), ("llama3", "")],
)
def test_the_marker_is_kept_apart(raw: str, source: str) -> None:
    assert parse_model_name(raw).source == source


def test_two_markers_are_refused_in_ollamas_words() -> None:
    with pytest.raises(InvalidModelNameError) as info:
        parse_model_name(" qwen3:cloud:local ")
    assert info.value.detail == 'use either :local or :cloud, not both: "qwen3:cloud:local"'
    with pytest.raises(ollama_names.NameError_, match="not both"):
        ollama_names.parse_ref("x:a-cloud:local")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "llama3:",
        "/model",
        "ns/model/",
        "a/b/c/d",
        "my.ns/model",
        "localhost:5000/model",
        "a:b/c",
        "https://ns/model",
        "model@sha256:abc",
        "name:tag:extra",
        "../../etc/passwd",
        "mo del",
        "llama3 :local",
        "model;rm -rf /",
        "$(reboot)",
        "mödel",
        "模型",
        "model\x00",
        "model\x1c",
        ":local",
        "m:-cloud",
        "a" * 81,
        "x" * 1000,
        "-leading",
        ".hidden",
        "model:-tag",
    ],
)
def test_invalid_names(raw: str) -> None:
    with pytest.raises(InvalidModelNameError) as info:
        validate_model_name(raw)
    assert info.value.message.startswith("Invalid model name")
    assert info.value.code == "invalid_request"
    with pytest.raises(ollama_names.NameError_):
        ollama_names.parse_normalize_pull(raw)


@pytest.mark.parametrize("raw", [None, 3, b"llama3", ["llama3"]])
def test_non_strings_are_invalid(raw: object) -> None:
    with pytest.raises(InvalidModelNameError):
        parse_model_name(raw)


def test_lookup_key_ignores_case_implied_tag_scheme_and_markers() -> None:
    assert name_key("Llama3:Latest") == name_key("llama3") == name_key(" llama3:local\n") == "llama3:latest"
    assert name_key("http://Localhost:5000/ns/m:v1") == "localhost:5000/ns/m:v1"
    assert name_key("gpt-oss:20b:cloud") == name_key("gpt-oss:20b-cloud")


def test_validate_trims_as_go_does() -> None:
    assert validate_model_name("\tllama3:8b\r\n") == "llama3:8b"
    # Python's str.strip() would take U+001C (a file separator) off as well; Go's TrimSpace does not.
    assert trim("\x1cllama3") == "\x1cllama3"


_part = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(model=_part, tag=_part)
def test_generated_valid_names_round_trip(model: str, tag: str) -> None:
    name = f"{model}:{tag}"
    parsed = parse_model_name(name)
    assert parsed.display() == ollama_names.parse_normalize_pull(name).name.display_shortest()
    assert parse_model_name(parsed.display()).display() == parsed.display()


_name_text = st.text(alphabet="abAB019_.-:/ \t\n", max_size=40) | st.builds(
    lambda scheme, host, ns, model, tag, marker, pad: f"{pad}{scheme}{host}/{ns}/{model}{tag}{marker}{pad}",
    st.sampled_from(["", "http://", "https://", "ftp://"]),
    st.sampled_from(["localhost:5000", "registry.ollama.ai", "hf.co", "h_1.x"]),
    st.sampled_from(["library", "ns", "Bad.ns", "user-1"]),
    _part,
    st.sampled_from(["", ":8b", ":Q4_K_M", ":latest", ":x-cloud", ":"]),
    st.sampled_from(["", ":local", ":cloud", ":LOCAL", ": cloud", ":cloud:local"]),
    st.sampled_from(["", " ", "\t", "\n "]),
)


@given(_name_text)
@example("gpt-oss:20b:cloud")
@example(" qwen3:cloud:local")
@example("http://localhost:5000/ns/m:v1")
def test_the_manager_and_the_double_agree_on_every_name(text: str) -> None:
    """Two independent readings of Ollama's rules: validity and display form must match."""
    try:
        ours: str | None = parse_model_name(text).display()
    except InvalidModelNameError:
        ours = None
    try:
        theirs: str | None = ollama_names.parse_normalize_pull(text).name.display_shortest()
    except ollama_names.NameError_:
        theirs = None
    assert ours == theirs


@given(st.text(max_size=60))
def test_any_text_is_parsed_or_rejected_cleanly(text: str) -> None:
    try:
        parsed = parse_model_name(text)
    except InvalidModelNameError:
        return
    assert parsed.display().isascii()
    assert parse_model_name(parsed.display()).display() == parsed.display()
