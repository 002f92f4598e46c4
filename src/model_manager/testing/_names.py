"""The double's own model-name rules, a line-by-line port of Ollama's Go source.

Kept apart from the manager's ``model_manager.names`` on purpose: the two are written independently, so a
name bug in either shows as a disagreement in the tests instead of being shared. Sources (ollama/ollama):

* ``internal/modelref/modelref.go``: ``ParseRef``, ``parseSourceSuffix``, ``NormalizePullName``;
* ``server/model_resolver.go``: ``parseAndValidateModelRef``, ``parseNormalizePullModelRef``;
* ``types/model/name.go``: ``ParseNameBare``, ``Merge``, ``IsValid``, ``isValidPart``, ``DisplayShortest``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ._go import go_quote

MISSING = "!MISSING!"
DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG, DEFAULT_SCHEME = (
    "registry.ollama.ai",
    "library",
    "latest",
    "https",
)
SOURCE_NONE, SOURCE_LOCAL, SOURCE_CLOUD = 0, 1, 2


class NameError_(ValueError):
    """A name Ollama refuses; ``kind`` is which of Go's errors it is."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "required", "conflict" or "unqualified"


def _is_go_space(char: str) -> bool:
    """Go's ``unicode.IsSpace``."""
    if ord(char) < 0x100:
        return char in "\t\n\v\f\r \x85\xa0"
    return char in "\u1680\u2028\u2029\u202f\u205f\u3000" or 0x2000 <= ord(char) <= 0x200A


def trim_space(s: str) -> str:
    """Go's ``strings.TrimSpace``."""
    start, end = 0, len(s)
    while start < end and _is_go_space(s[start]):
        start += 1
    while end > start and _is_go_space(s[end - 1]):
        end -= 1
    return s[start:end]


def _parse_source_suffix(raw: str) -> tuple[str, int, bool]:
    idx = raw.rfind(":")
    if idx >= 0:
        suffix_raw = trim_space(raw[idx + 1 :])
        suffix = suffix_raw.lower()
        if suffix == "cloud":
            return raw[:idx], SOURCE_CLOUD, True
        if suffix == "local":
            return raw[:idx], SOURCE_LOCAL, True
        if "/" not in suffix_raw and suffix.endswith("-cloud"):
            return raw[: idx + 1] + suffix_raw[: len(suffix_raw) - len("-cloud")], SOURCE_CLOUD, True
    return raw, SOURCE_NONE, False


@dataclass(frozen=True)
class Ref:
    """``modelref.ParsedRef``: the trimmed input, the name without its marker, and the marker."""

    original: str
    base: str
    source: int


def parse_ref(raw: str) -> Ref:
    raw = trim_space(raw)
    if raw == "":
        raise NameError_("required", "model is required")
    base, source, explicit = _parse_source_suffix(raw)
    if explicit and _parse_source_suffix(base)[2]:
        raise NameError_("conflict", f"use either :local or :cloud, not both: {go_quote(raw)}")
    return Ref(raw, base, source)


def _has_explicit_tag(name: str) -> bool:
    return name.rfind(":") > name.rfind("/")


def normalize_pull_name(raw: str) -> str:
    ref = parse_ref(raw)
    if ref.source != SOURCE_CLOUD:
        return ref.base
    return ref.base + "-cloud" if _has_explicit_tag(ref.base) else ref.base + ":cloud"


@dataclass(frozen=True)
class Name:
    host: str = ""
    namespace: str = ""
    model: str = ""
    tag: str = ""
    scheme: str = ""

    def display_shortest(self) -> str:
        out = ""
        if self.host.lower() != DEFAULT_HOST:
            out += self.host + "/" + self.namespace + "/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            out += self.namespace + "/"
        return out + self.model + ":" + self.tag

    def fold(self) -> tuple[str, str, str, str]:
        """What ``EqualFold`` compares. Go's ``strings.EqualFold`` is simple Unicode case folding;
        valid names are ASCII, where it is ``lower()``."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def is_valid(self) -> bool:
        return all(
            _valid_part(kind, part)
            for kind, part in (
                ("host", self.host),
                ("namespace", self.namespace),
                ("model", self.model),
                ("tag", self.tag),
            )
        )


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    before, after = s[:i], s[i + len(sep) :]
    return before or MISSING, after or MISSING, True


def parse_name_bare(s: str) -> Name:
    tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        return Name(model=s, tag=tag)
    s, namespace, promised = _cut_promised(s, "/")
    if not promised:
        return Name(namespace=s, model=model, tag=tag)
    scheme, sep, host = s.partition("://")
    if not sep:
        scheme, host = "", scheme
    return Name(host, namespace, model, tag, scheme)


def parse_name(s: str) -> Name:
    """``ParseName``: the bare parse merged with the defaults."""
    n = parse_name_bare(s)
    return replace(
        n,
        host=n.host or DEFAULT_HOST,
        namespace=n.namespace or DEFAULT_NAMESPACE,
        tag=n.tag or DEFAULT_TAG,
        scheme=n.scheme or DEFAULT_SCHEME,
    )


def _alnum_or_underscore(byte: int) -> bool:
    return 65 <= byte <= 90 or 97 <= byte <= 122 or 48 <= byte <= 57 or byte == 95


def _valid_part(kind: str, s: str) -> bool:
    data = s.encode()
    limit = 350 if kind == "host" else 80
    if not 1 <= len(data) <= limit:
        return False
    # Go ranges over runes and looks at the first byte of each: any non-ASCII rune fails.
    for index, char in enumerate(s):
        byte = ord(char) if ord(char) < 0x80 else 0x80
        if index == 0:
            if not _alnum_or_underscore(byte):
                return False
        elif char in "_-":
            continue
        elif char == ".":
            if kind == "namespace":
                return False
        elif char == ":":
            if kind != "host":
                return False
        elif not _alnum_or_underscore(byte):
            return False
    return True


@dataclass(frozen=True)
class ModelRef:
    """``server.parsedModelRef``."""

    original: str
    base: str
    name: Name
    source: int


def parse_and_validate(raw: str) -> ModelRef:
    """``parseAndValidateModelRef`` (generate, chat, embed, show)."""
    ref = parse_ref(raw)
    name = parse_name(ref.base)
    if not name.is_valid():
        raise NameError_("unqualified", "invalid model name")
    return ModelRef(ref.original, ref.base, name, ref.source)


def parse_normalize_pull(raw: str) -> ModelRef:
    """``parseNormalizePullModelRef`` (pull, delete): a cloud marker becomes the stub's name."""
    ref = parse_ref(raw)
    base = normalize_pull_name(raw)
    name = parse_name(base)
    if not name.is_valid():
        raise NameError_("unqualified", "invalid model name")
    return ModelRef(ref.original, base, name, ref.source)


def plain_name(raw: str) -> Name | None:
    """``ParseName`` without trimming or markers (copy; and the double's own API), None when invalid."""
    name = parse_name(raw)
    return name if name.is_valid() else None


def display(raw: str) -> str:
    """DisplayShortest of a plain name; raises NameError_ when it is not valid."""
    name = plain_name(raw)
    if name is None:
        raise NameError_("unqualified", "invalid model name")
    return name.display_shortest()


def fold_key(raw: str) -> tuple[str, str, str, str]:
    """The case-folded parts of a plain name (``EqualFold``); raises NameError_ when invalid."""
    name = plain_name(raw)
    if name is None:
        raise NameError_("unqualified", "invalid model name")
    return name.fold()
