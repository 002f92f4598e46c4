"""Fault switches and the request log: the knobs tests turn while the double is running."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_500_MESSAGE = "internal server error"
DEFAULT_MALFORMED_LINE = '{"status":"pulling manifest"'
DEFAULT_NOT_HTTP = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
"""What answers when something other than Ollama listens on the port (here: an SSH server's greeting)."""


class Faults:
    """Switches that make the double misbehave; each takes effect on the next request.

    Plain attributes, safe to set from any thread while the server runs (single attribute writes
    are atomic; ``fail_next_load`` is consumed under a lock so exactly one load sees it).

    - ``down``: stop listening and drop open connections (clients get "connection refused");
      set it back to False to listen again on the same port.
    - ``slow_s``: wait this long before answering any request.
    - ``hang_s``: accept and read the request, say nothing for this long, then close the
      connection without an answer.
    - ``http_500``: every ``/api/*`` call answers 500 ``{"error": ...}``; True uses a stock message,
      a string is used as the message.
    - ``cut_pull_after``: a pull stream is cut (connection closed mid-body, no final line) right
      after this many lines; ``0`` cuts before the first line.
    - ``malformed_line``: a pull stream sends a non-JSON line after its first line (True for a
      truncated object, or the exact text to send).
    - ``pull_error``: a pull fails in-stream with this text once the model blob has taken one step
      (or after the layer lines when every blob is already on disk); ``stream:false`` gives 500.
    - ``fail_next_load``: the next model load fails with 500 and this text, then the switch clears.
    - ``oom_next_load``: the next cold load runs out of memory as current Ollama reports it: every other
      idle model is evicted first (its retry), then 500 with this text (True: the first of
      ``OOM_MESSAGES``); then the switch clears.
    - ``missing_blob``: the registry answers 404 for a model blob: the pull fails in-stream with
      ``file does not exist`` before that blob's first line.
    - ``not_http``: every connection is answered with these bytes (True: an SSH greeting), then closed.
    - ``truncate_body``: every JSON answer of ``/api/*`` stops halfway through its body (the
      Content-Length promises all of it).
    - ``model_fields``: merged into every model entry of ``/api/tags`` and ``/api/ps`` (e.g.
      ``{"size": "big"}`` for a field of the wrong type).
    """

    def __init__(self, on_down: Callable[[bool], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._on_down = on_down
        self._down = False
        self.slow_s: float = 0.0
        self.hang_s: float = 0.0
        self.http_500: bool | str = False
        self.cut_pull_after: int | None = None
        self.malformed_line: bool | str = False
        self.pull_error: str | None = None
        self.fail_next_load: str | None = None
        self.oom_next_load: bool | str = False
        self.missing_blob = False
        self.not_http: bool | bytes = False
        self.truncate_body = False
        self.model_fields: dict[str, Any] = {}

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        with self._lock:
            changed, self._down = self._down != value, value
        if changed and self._on_down is not None:
            self._on_down(value)

    def take_fail_next_load(self) -> str | None:
        """The pending load failure, cleared so only one load fails."""
        with self._lock:
            message, self.fail_next_load = self.fail_next_load, None
            return message

    def take_oom_next_load(self, default: str) -> str | None:
        """The pending out-of-memory text (``default`` for True), cleared so only one load fails."""
        with self._lock:
            value, self.oom_next_load = self.oom_next_load, False
        if value is True:
            return default
        return value or None

    def not_http_bytes(self) -> bytes | None:
        value = self.not_http
        if value is True:
            return DEFAULT_NOT_HTTP
        return value or None

    def error_500(self) -> str | None:
        """The message for the ``http_500`` switch, or None when it is off."""
        value = self.http_500
        if value is True:
            return DEFAULT_500_MESSAGE
        return value or None

    def malformed_text(self) -> str | None:
        value = self.malformed_line
        if value is True:
            return DEFAULT_MALFORMED_LINE
        return value or None

    def reset(self) -> None:
        """Every switch off (and the server listening again if it was down)."""
        self.down = False
        with self._lock:
            self.slow_s = self.hang_s = 0.0
            self.http_500 = self.malformed_line = False
            self.cut_pull_after = None
            self.pull_error = self.fail_next_load = None
            self.oom_next_load = self.not_http = False
            self.missing_blob = self.truncate_body = False
            self.model_fields = {}


@dataclass(frozen=True)
class RequestRecord:
    """One request the double received."""

    method: str
    path: str
    body: Any
    """The JSON body decoded, None when empty, or the raw text when it is not JSON."""
    query: str = ""
