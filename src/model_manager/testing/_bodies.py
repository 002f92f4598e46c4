"""The fields each endpoint's request body accepts (``api.GenerateRequest``, ``api.ChatRequest``, …), with
the JSON kinds Go decodes into them and the Go types its errors name."""

from __future__ import annotations

from ._go import ANY, BOOL, INT, INTS, OBJECT, STR, STRINGS, Field

_THINK = Field(("bool", "string"), "api.ThinkValue")
GENERATE = {
    "model": STR,
    "prompt": STR,
    "suffix": STR,
    "system": STR,
    "template": STR,
    "context": INTS,
    "stream": BOOL,
    "raw": BOOL,
    "format": ANY,
    "keep_alive": ANY,
    "images": STRINGS,
    "options": OBJECT,
    "think": _THINK,
    "truncate": BOOL,
    "shift": BOOL,
    "logprobs": BOOL,
    "top_logprobs": INT,
}
CHAT = {
    "model": STR,
    "messages": Field(("array",), "[]api.Message", items="object"),
    "tools": Field(("array",), "[]api.Tool", items="object"),
    "stream": BOOL,
    "format": ANY,
    "keep_alive": ANY,
    "options": OBJECT,
    "think": _THINK,
    "truncate": BOOL,
    "shift": BOOL,
    "logprobs": BOOL,
    "top_logprobs": INT,
}
PULL = {"model": STR, "name": STR, "insecure": BOOL, "stream": BOOL, "username": STR, "password": STR}
SHOW = {"model": STR, "name": STR, "system": STR, "template": STR, "verbose": BOOL, "options": OBJECT}
DELETE = {"model": STR, "name": STR}
COPY = {"source": STR, "destination": STR}
EMBED = {
    "model": STR,
    "input": ANY,
    "truncate": BOOL,
    "dimensions": INT,
    "keep_alive": ANY,
    "options": OBJECT,
}
EMBEDDINGS = {"model": STR, "prompt": STR, "keep_alive": ANY, "options": OBJECT}
