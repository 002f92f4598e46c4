"""The request fields and response shapes of a fleet's hosts (``host`` in queries and bodies, ``/api/hosts``).

As every request model here, each field states the rule the server applies, so that a request the schema
calls valid is accepted and one it calls invalid is refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from ..config import FLEET_WORDS, HOST_NAME_PATTERN, HOST_URL_PATTERN
from ..units import MAX_GB

_STRICT = ConfigDict(strict=True, extra="forbid")
_OPEN = ConfigDict(extra="allow")

HOST_PATTERN = f"^{HOST_NAME_PATTERN}$"
"""A host's name (``config.parse_host_name``); ``local`` is this server's own."""


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


def _not_words(words: list[str]) -> JsonDict:
    return {"pattern": "^(?:" + "|".join(_any_case(w) for w in words) + ")$"}


def host_schema(*accepts: str) -> JsonDict:
    """A host's name, or the words of ``FLEET_WORDS`` in ``accepts`` (any case, as the server reads them)."""
    refused = [w for w in FLEET_WORDS if w not in accepts]
    schema: JsonDict = {"pattern": HOST_PATTERN}
    if refused:
        schema["not"] = _not_words(refused)
    return schema


AnyHost = Annotated[str, Field(json_schema_extra=host_schema())]
HostOrAll = Annotated[str, Field(json_schema_extra=host_schema("all"))]
HostOrAuto = Annotated[str, Field(json_schema_extra=host_schema("auto"))]


def host_field(words: str = "") -> Any:
    """The ``host`` field of a request: one host's name (``local``: this server's), or the words the route
    also takes (its type: ``HostOrAll``, ``HostOrAuto``; ``words`` says what they mean)."""
    extra = f", or {words}" if words else ""
    return Field(
        default=None,
        description=f"A fleet host's name (GET /api/hosts; local is this server's own){extra}; "
        "left out, this server's own host",
        examples=["local"],
    )


class HostRequest(BaseModel):
    model_config = _STRICT
    name: str = Field(
        description="1-63 letters, digits, '_', '.' or '-' (not local, all or auto)",
        examples=["gpu2"],
        json_schema_extra={"pattern": HOST_PATTERN, "not": _not_words(["local", *FLEET_WORDS])},
    )
    url: str = Field(
        description="Where its Ollama listens, as OLLAMA_HOST takes it",
        examples=["http://gpu2.lan:11434"],
        json_schema_extra={"pattern": f"^{HOST_URL_PATTERN}$"},
    )
    vram_gb: float | None = Field(
        default=None, ge=0, le=MAX_GB, description="Its GPU memory, used while its manager publishes none"
    )


class HostDoc(BaseModel):
    """A host of the fleet and what is known of its memory; in answers from several hosts, whether it
    answered (``reachable``) and why not (``error``)."""

    model_config = _OPEN
    name: str
    url: str
    own: bool = Field(description="This server's own host (its OLLAMA_HOST)")
    vram_gb: float | None = Field(description="The --vram it was added with")
    memory: dict[str, Any] = Field(
        description="status: detected, reported, vram, stale or unknown; known; description; the report's "
        "reported_at, age_s, heartbeat_s and available_gb"
    )
    reachable: bool | None = None
    error: dict[str, Any] | None = None


class FleetSyncResponse(BaseModel):
    """``host`` all: each host with its sync (null where it did not answer)."""

    success: Literal[True]
    hosts: list[HostDoc] = Field(description="Each host, with ``sync``: added, removed, installed")


class FleetRecommendResponse(BaseModel):
    """``host`` all: each host with its recommendation in its own memory."""

    success: Literal[True]
    priority: str
    hosts: list[HostDoc] = Field(description="Each host, with ``recommendation`` (null where it failed)")


class HostListResponse(BaseModel):
    success: Literal[True]
    hosts: list[HostDoc]
    count: int


class HostResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    host: HostDoc
    message: str
