"""Go-compatible formatting and parsing, so the double's bytes match what a Go Ollama server sends.

Clients match on error strings and parse timestamps, durations and sizes, so these follow the Go
standard library (``time.ParseDuration``, ``encoding/json`` messages, RFC 3339 with nanoseconds) and
Ollama's ``format`` package (``HumanBytes2``, ``HumanNumber``) rather than Python's own spellings.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

NS_PER_S = 1_000_000_000
MAX_DURATION_NS = 2**63 - 1
"""Go's ``math.MaxInt64`` nanoseconds (about 292 years): what a negative keep_alive becomes."""

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}
_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_UNIT = re.compile(r"[^0-9.]*")


class GoError(ValueError):
    """A failure whose text is exactly what the Go server would report."""


def go_quote(text: str) -> str:
    """Go's ``%q`` for ordinary strings (double quotes, backslash escapes)."""
    return json.dumps(text, ensure_ascii=False)


def parse_go_duration(text: str) -> int:
    """``time.ParseDuration``: nanoseconds from "1h30m", "-1m", "0", "1.5s".

    Raises GoError with Go's message, e.g. ``time: missing unit in duration "300"``.
    """
    invalid = GoError(f"time: invalid duration {go_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        number = _NUMBER.match(rest)
        assert number is not None
        whole, frac = number.group(1), number.group(2)
        if not whole and not frac:
            raise invalid
        rest = rest[number.end() :]
        unit = _UNIT.match(rest)
        assert unit is not None
        if not unit.group():
            raise GoError(f"time: missing unit in duration {go_quote(text)}")
        if unit.group() not in _UNIT_NS:
            raise GoError(f"time: unknown unit {go_quote(unit.group())} in duration {go_quote(text)}")
        scale = _UNIT_NS[unit.group()]
        rest = rest[unit.end() :]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        if total > MAX_DURATION_NS:
            raise invalid
    return -total if negative else total


def parse_keep_alive(value: object) -> int | None:
    """The ``keep_alive`` request field as Ollama's ``api.Duration`` decodes it.

    Returns nanoseconds, ``MAX_DURATION_NS`` for any negative value (forever), or None when absent.
    Raises GoError for a unitless string or an unsupported JSON type.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise GoError("Unsupported type: 'bool'")
    if isinstance(value, int | float):
        return MAX_DURATION_NS if value < 0 else int(value * NS_PER_S)
    if isinstance(value, str):
        ns = parse_go_duration(value)
        return MAX_DURATION_NS if ns < 0 else ns
    kind = "[]interface {}" if isinstance(value, list) else "map[string]interface {}"
    raise GoError(f"Unsupported type: '{kind}'")


def human_bytes2(n: int) -> str:
    """Ollama's ``format.HumanBytes2``: binary units, one decimal ("12.4 GiB", "512 B")."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def human_number(n: int) -> str:
    """Ollama's ``format.HumanNumber`` as used for ``parameter_size``: "8.0B", "7B", "137M"."""
    if n >= 1_000_000_000:
        value = n / 1_000_000_000
        return f"{value:.0f}B" if value == math.floor(value) else f"{value:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.0f}M"
    if n >= 1_000:
        return f"{n / 1_000:.0f}K"
    return str(n)


def go_time(moment: datetime) -> str:
    """RFC 3339 with up to 9 fractional digits and trailing zeros trimmed (Go's RFC3339Nano).

    UTC is written ``Z``; other offsets as ``+hh:mm``, the way Go prints local time.
    """
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset()
    if offset is None or offset == timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def local_now() -> datetime:
    """Now with the machine's local offset, as Go's ``time.Now()`` prints it."""
    return datetime.now().astimezone()


def go_json(value: Any) -> bytes:
    """Compact JSON the way Go's encoder writes it: UTF-8, ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _go_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + go_quote(char)[1:-1] + "'"


def _inside_object(doc: str, pos: int) -> bool:
    """Whether ``pos`` sits directly inside an object (True) or an array (False)."""
    stack: list[str] = []
    in_string = escaped = False
    for char in doc[:pos]:
        if in_string:
            escaped = not escaped and char == "\\"
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return bool(stack) and stack[-1] == "{"


def _reject_constant(name: str) -> Any:
    raise GoError(f"invalid character {_go_char(name[0])} looking for beginning of value")


def decode_go_json(doc: str) -> Any:
    """Decode the first JSON value of ``doc`` as Go's ``json.Decoder`` would (trailing data ignored).

    Raises GoError with Go's message text for malformed input.
    """
    start = len(doc) - len(doc.lstrip(" \t\r\n"))
    try:
        value, _ = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(doc, start)
    except json.JSONDecodeError as exc:
        raise GoError(_translate(doc, exc)) from None
    return value


def _translate(doc: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(doc) or exc.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = _go_char(doc[exc.pos])
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character {char} looking for beginning of object key string"
    if exc.msg == "Expecting ':' delimiter":
        return f"invalid character {char} after object key"
    if exc.msg == "Expecting ',' delimiter":
        where = "object key:value pair" if _inside_object(doc, exc.pos) else "array element"
        return f"invalid character {char} after {where}"
    if exc.msg.startswith("Invalid control character"):
        return f"invalid character {char} in string literal"
    if exc.msg.startswith("Invalid \\escape"):
        return f"invalid character {char} in string escape code"
    return f"invalid character {char} looking for beginning of value"


def json_kind(value: object) -> str:
    """The JSON type name Go uses in ``cannot unmarshal <kind>`` messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True)
class Field:
    """One request field: the JSON kinds Go accepts for it and the Go type named in errors."""

    accepts: tuple[str, ...]
    go_type: str
    items: str = ""
    """JSON kind each element of an array must have, when the field is an array."""


STR = Field(("string",), "string")
BOOL = Field(("bool",), "bool")
INT = Field(("number",), "int")
OBJECT = Field(("object",), "map[string]interface {}")
ANY = Field(("string", "number", "bool", "array", "object"), "interface {}")
STRINGS = Field(("array",), "[]string", items="string")
INTS = Field(("array",), "[]int", items="number")


def check_fields(struct: str, body: Mapping[str, Any], fields: Mapping[str, Field]) -> None:
    """Reject a known field of the wrong JSON type, in Go's words; unknown fields are ignored.

    Raises GoError, e.g. ``json: cannot unmarshal number into Go struct field PullRequest.model of
    type string``.
    """
    for key, value in body.items():
        spec = fields.get(key)
        if spec is None or value is None:
            continue
        where = f"Go struct field {struct}.{key}"
        kind = json_kind(value)
        if kind not in spec.accepts:
            raise GoError(f"json: cannot unmarshal {kind} into {where} of type {spec.go_type}")
        if spec is INT and isinstance(value, float) and not value.is_integer():
            raise GoError(f"json: cannot unmarshal number {value} into {where} of type int")
        if spec.items:
            for item in value:
                if item is not None and json_kind(item) != spec.items:
                    element = spec.go_type.removeprefix("[]")
                    raise GoError(f"json: cannot unmarshal {json_kind(item)} into {where} of type {element}")
