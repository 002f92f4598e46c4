"""Ollama model names: parsing and validation by Ollama's own rules.

A name goes through the steps Ollama's server takes (ollama/ollama ``internal/modelref/modelref.go``
``ParseRef`` and ``NormalizePullName``, then ``types/model/name.go`` ``ParseName``):

1. Surrounding white space is trimmed (Go's ``strings.TrimSpace``: Unicode white space, tabs and
   newlines included).
2. A trailing source marker is taken off: ``:local`` (the installed model), ``:cloud`` or a tag ending
   in ``-cloud`` (a cloud model, whose local stub is ``model:tag-cloud``, or ``model:cloud`` without a
   tag). Two markers (``qwen3:cloud:local``) are refused.
3. The rest is ``[scheme://host/][namespace/]model[:tag]``, parsed from the right; the scheme is kept
   apart and never shown. Parts are ASCII; each starts with a letter, digit or ``_``.

Lookups are case-insensitive in Ollama, so ``name_key`` folds case for comparisons while the spelling
the user gave is kept for display.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

from .errors import InvalidModelNameError

# Go's unicode.IsSpace, which strings.TrimSpace uses: Latin-1 space characters, then Unicode White_Space.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_MODEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_TAG = _MODEL
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
LOCAL, CLOUD = "local", "cloud"


@dataclass(frozen=True)
class ModelName:
    """A parsed model name; ``host``/``namespace`` are empty when not given.

    ``source`` is the marker the name carried (``local``, ``cloud`` or empty); a cloud name's parts are
    its local stub's (``gpt-oss:20b:cloud`` → tag ``20b-cloud``). ``scheme`` is what came before
    ``://``; Ollama never shows it.
    """

    host: str
    namespace: str
    model: str
    tag: str
    source: str = ""
    scheme: str = ""

    def display(self) -> str:
        """Ollama's display form (``DisplayShortest``): default host and namespace omitted, tag always
        shown, no scheme, no marker."""
        host = "" if self.host.lower() == DEFAULT_HOST else self.host
        namespace = "" if not host and self.namespace.lower() == DEFAULT_NAMESPACE else self.namespace
        prefix = "/".join(p for p in (host, namespace) if p)
        return f"{prefix + '/' if prefix else ''}{self.model}:{self.tag or 'latest'}"


def trim(raw: str) -> str:
    """``raw`` without surrounding white space, as Go's ``strings.TrimSpace`` trims it."""
    return raw.strip(GO_SPACE)


def parse_model_name(raw: object) -> ModelName:
    """Parse ``raw`` as Ollama does.

    Raises InvalidModelNameError with the reason when the name breaks a rule.
    """
    if not isinstance(raw, str):
        raise InvalidModelNameError(f"expected a string, got {type(raw).__name__}")
    return _parse(raw)


def _source_suffix(name: str) -> tuple[str, str]:
    """(base, source) with a trailing marker taken off (modelref.go ``parseSourceSuffix``)."""
    colon = name.rfind(":")
    if colon < 0:
        return name, ""
    suffix = trim(name[colon + 1 :])
    if suffix.lower() in (LOCAL, CLOUD):
        return name[:colon], suffix.lower()
    if "/" not in suffix and suffix.lower().endswith("-cloud"):
        return name[: colon + 1] + suffix[: -len("-cloud")], CLOUD
    return name, ""


def _local_name(raw: str, name: str) -> tuple[str, str]:
    """(the installed name, source): modelref.go ``ParseRef`` then ``NormalizePullName``, whose cloud
    stub is ``base-cloud`` when the base has a tag and ``base:cloud`` when it has none."""
    base, source = _source_suffix(name)
    if source and _source_suffix(base)[1]:
        raise InvalidModelNameError(
            f"use either :local or :cloud, not both: {json.dumps(name, ensure_ascii=False)}"
        )
    if source != CLOUD:
        return base, source
    return (f"{base}-cloud" if base.rfind(":") > base.rfind("/") else f"{base}:cloud"), source


@functools.lru_cache(maxsize=4096)
def _parse(raw: str) -> ModelName:
    # Cached: the same few names are parsed on every usage record and lookup.
    name = trim(raw)
    if not name:
        raise InvalidModelNameError("the name is empty")
    name, source = _local_name(raw, name)
    tag = ""
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        _check(raw, "tag", tag, _TAG)
    parts = name.rsplit("/", 2)
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else ""
    host = parts[0] if len(parts) == 3 else ""
    scheme, sep, rest = host.partition("://")
    if sep:
        host = rest
    else:
        scheme = ""
    _check(raw, "model part", model, _MODEL)
    if len(parts) >= 2:
        _check(raw, "namespace", namespace, _NAMESPACE)
    if len(parts) == 3:
        _check(raw, "host", host, _HOST)
    return ModelName(host, namespace, model, tag, source, scheme)


def _check(raw: str, what: str, part: str, rule: re.Pattern[str]) -> None:
    if rule.fullmatch(part):
        return
    if not part.isascii() or not part.isprintable():
        raise InvalidModelNameError(f"{raw!r} has non-ASCII or control characters in its {what}")
    raise InvalidModelNameError(f"{raw!r}: {what} {part!r} is not valid")


def validate_model_name(raw: object) -> str:
    """Return the name with surrounding white space trimmed, or raise InvalidModelNameError."""
    parse_model_name(raw)
    assert isinstance(raw, str)
    return trim(raw)


def display_name(name: str) -> str:
    """Ollama's display form of ``name`` (``mymodel`` → ``mymodel:latest``), the spelling kept.

    Raises InvalidModelNameError when ``name`` is not a valid name.
    """
    return parse_model_name(name).display()


def name_key(name: str) -> str:
    """Comparison key: case folded, ``:latest`` implied when no tag is given, markers resolved to the
    installed name they mean.

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
