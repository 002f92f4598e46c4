"""What Ollama answers, read: its error texts into the error table's classes, and its JSON documents into
typed records (``Malformed`` for one that is not what the endpoint sends). ``ollama_client`` sends the
requests and translates ``Malformed`` once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import (
    InsufficientVramError,
    InvalidModelNameError,
    ModelManagerError,
    ModelNotInstalledError,
    OllamaError,
)
from .types import InstalledModel, ModelFacts, PullProgress, RunningModel

OUT_OF_MEMORY = (
    "out of memory",
    "out of device memory",
    "cudamalloc failed",
    "hipmalloc failed",
    "failed to allocate",
    "allocation failed",
    "not enough memory",
    "insufficient memory",
    "vk_error_out_of_device_memory",
    "erroroutofmemory",
)
"""ollama/ollama llm/status.go ``outOfMemorySubstrings`` (``IsOutOfMemoryMessage`` matches them in any
case): llama-server's out-of-memory lines, which reach a client as ``llama-server reported out-of-memory
during startup: <line>`` (llm/llama_server.go ``WaitUntilRunning``)."""
_OLDER_MEMORY_ERRORS = ("model requires more system memory", "unable to load full model")
"""Wordings of Ollama before its llama-server loads (v0.30)."""
VERIFYING = "verifying sha256 digest"


def is_out_of_memory(text: str) -> bool:
    """Whether Ollama's error text says a load ran out of memory (MLX loads say ``model requires <X> but
    only <Y> are available``, x/mlxrunner/client.go)."""
    lower = text.lower()
    mlx = lower.startswith("model requires ") and " are available" in lower
    return mlx or lower.startswith(_OLDER_MEMORY_ERRORS) or any(s in lower for s in OUT_OF_MEMORY)


def response_error(text: str, status: int, name: str | None) -> ModelManagerError:
    """Map an error Ollama answered with (its ``error`` text and HTTP status; -1 in a stream) to ours."""
    if status == 404:
        return ModelNotInstalledError(name or text, ollama_message=text)
    if "invalid model name" in text or (status == 400 and " is invalid" in text):
        return InvalidModelNameError(f"{name!r}: {text}" if name else text)
    if is_out_of_memory(text):
        return InsufficientVramError(f"{name}: {text}" if name else text, ollama_message=text)
    return OllamaError(f"{text} (HTTP {status})" if status > 0 else text, status_code=status)


def error_text(body: bytes) -> str:
    """Ollama's ``{"error": …}`` text, else the body as it came."""
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])
    return text.strip()


class Malformed(Exception):
    """An answer that is not what the endpoint sends."""


def field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(key, default)
    if value is None:
        return default
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise Malformed(f"{key!r} is {type(value).__name__}, expected {getattr(kind, '__name__', kind)}")
    return value


def json_object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is {type(value).__name__}, expected an object")
    return value


def installed_models(answer: Any) -> list[InstalledModel]:
    """``/api/tags``: what Ollama has on disk."""
    doc = json_object(answer, "the answer")
    out = []
    for raw in field(doc, "models", list, []):
        m = json_object(raw, "a model entry")
        details = json_object(m.get("details") or {}, "details")
        out.append(
            InstalledModel(
                name=str(field(m, "model", str, "") or field(m, "name", str, "")),
                size_bytes=field(m, "size", int, 0),
                digest=field(m, "digest", str, ""),
                modified_at=field(m, "modified_at", str, ""),
                family=field(details, "family", str, ""),
                parameter_size=field(details, "parameter_size", str, ""),
                quantization_level=field(details, "quantization_level", str, ""),
            )
        )
    return out


def running_models(answer: Any) -> list[RunningModel]:
    """``/api/ps``: what Ollama has loaded, with how much of it is in VRAM."""
    doc = json_object(answer, "the answer")
    out = []
    for raw in field(doc, "models", list, []):
        m = json_object(raw, "a model entry")
        out.append(
            RunningModel(
                name=str(field(m, "model", str, "") or field(m, "name", str, "")),
                size_bytes=field(m, "size", int, 0),
                size_vram_bytes=field(m, "size_vram", int, 0),
                expires_at=field(m, "expires_at", str, ""),
                context_length=field(m, "context_length", int, 0),
            )
        )
    return out


def model_facts(name: str, answer: Any) -> ModelFacts:
    """``/api/show``. The token-embedding tensor's shape gives the vocabulary size the memory estimate
    needs (non-verbose ``model_info`` sends the token list as null)."""
    raw = json_object(answer, "the answer")
    details = json_object(raw.get("details") or {}, "details")
    info = dict(json_object(raw.get("model_info") or {}, "model_info"))
    arch = str(info.get("general.architecture") or "")
    for tensor in field(raw, "tensors", list, []):
        tensor = json_object(tensor, "a tensor")
        shape = tensor.get("shape")
        if tensor.get("name") == "token_embd.weight" and isinstance(shape, list) and len(shape) == 2:
            info.setdefault(f"{arch}.vocab_size", int(shape[1]))
    return ModelFacts(
        name=name,
        model_info=info,
        capabilities=tuple(str(c) for c in field(raw, "capabilities", list, [])),
        family=field(details, "family", str, ""),
        parameter_size=field(details, "parameter_size", str, ""),
        quantization_level=field(details, "quantization_level", str, ""),
        projector_info=dict(json_object(raw.get("projector_info") or {}, "projector_info")),
    )


def pull_progress(doc: Mapping[str, Any]) -> PullProgress:
    """One line of ``/api/pull``'s stream."""
    return PullProgress(
        status=field(doc, "status", str, ""),
        digest=field(doc, "digest", str, ""),
        total=field(doc, "total", int, 0),
        completed=field(doc, "completed", int, 0),
    )
