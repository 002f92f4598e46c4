"""Ollama model names: parsing and validation by Ollama's own rules (types/model/name.go).

Form ``[host/][namespace/]model[:tag]``. Parts are ASCII; each starts with a letter, digit or ``_``.
Lookups are case-insensitive in Ollama, so ``name_key`` folds case for comparisons while the
spelling the user gave is kept for display.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import InvalidModelNameError

_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_MODEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_TAG = _MODEL
MAX_NAME_LENGTH = 350 + 80 + 80 + 80 + 3
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"


@dataclass(frozen=True)
class ModelName:
    """A parsed model name; ``host``/``namespace`` are empty when not given."""

    host: str
    namespace: str
    model: str
    tag: str

    def display(self) -> str:
        """Ollama's display form: default host and namespace omitted, tag always shown."""
        host = "" if self.host.lower() == DEFAULT_HOST else self.host
        namespace = "" if not host and self.namespace.lower() == DEFAULT_NAMESPACE else self.namespace
        prefix = "/".join(p for p in (host, namespace) if p)
        return f"{prefix + '/' if prefix else ''}{self.model}:{self.tag or 'latest'}"


def parse_model_name(raw: object) -> ModelName:
    """Parse ``raw`` as Ollama does, from the right.

    Raises InvalidModelNameError with the reason when the name breaks a rule.
    """
    if not isinstance(raw, str):
        raise InvalidModelNameError(f"expected a string, got {type(raw).__name__}")
    return _parse(raw)


@functools.lru_cache(maxsize=4096)
def _parse(raw: str) -> ModelName:
    # Cached: the same few names are parsed on every usage record and lookup.
    name = raw.strip(" ")
    if not name:
        raise InvalidModelNameError("the name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidModelNameError(f"the name is longer than {MAX_NAME_LENGTH} characters")
    if not name.isascii() or not name.isprintable():
        raise InvalidModelNameError(f"{name!r} has non-ASCII or control characters")
    tag = ""
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidModelNameError(f"{raw!r}: tag {tag!r} is not valid")
    parts = name.split("/")
    if len(parts) > 3:
        raise InvalidModelNameError(f"{raw!r} has too many '/' parts")
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else ""
    host = parts[0] if len(parts) == 3 else ""
    if not _MODEL.fullmatch(model):
        raise InvalidModelNameError(f"{raw!r}: model part {model!r} is not valid")
    if len(parts) >= 2 and not _NAMESPACE.fullmatch(namespace):
        raise InvalidModelNameError(f"{raw!r}: namespace {namespace!r} is not valid")
    if len(parts) == 3 and not _HOST.fullmatch(host):
        raise InvalidModelNameError(f"{raw!r}: host {host!r} is not valid")
    return ModelName(host, namespace, model, tag)


def validate_model_name(raw: object) -> str:
    """Return the name stripped of surrounding space, or raise InvalidModelNameError."""
    parse_model_name(raw)
    assert isinstance(raw, str)
    return raw.strip(" ")


def display_name(name: str) -> str:
    """Ollama's display form of ``name`` (``mymodel`` → ``mymodel:latest``), the spelling kept.

    Raises InvalidModelNameError when ``name`` is not a valid name.
    """
    return parse_model_name(name).display()


def name_key(name: str) -> str:
    """Comparison key: case folded, ``:latest`` implied when no tag is given.

    Raises InvalidModelNameError when ``name`` is not a valid name.
    """
    return _key(parse_model_name(name))


@functools.lru_cache(maxsize=4096)
def _key(parsed: ModelName) -> str:
    return parsed.display().lower()


def stored_name_key(name: str) -> str:
    """``name_key`` of a name read back from the store; one recorded before names were checked (not a
    valid name) keys as itself, case folded, so it stays reachable."""
    try:
        return name_key(name)
    except InvalidModelNameError:
        return name.lower()
