"""A faithful Ollama protocol double for tests: a real HTTP server on 127.0.0.1.

Start it in a test (``with OllamaDouble() as ollama: ...``) or as a subprocess
(``python -m model_manager.testing --port 0``), then point any Ollama client at ``ollama.url``.
"""

from __future__ import annotations

from ._api import Responder, default_responder
from ._faults import Faults, RequestRecord
from ._go import human_bytes2, parse_go_duration, parse_keep_alive
from ._models import Layer, LibraryModel
from ._state import OOM_MESSAGES
from .double import DEFAULT_VERSION, OllamaDouble

__all__ = [
    "DEFAULT_VERSION",
    "OOM_MESSAGES",
    "Faults",
    "Layer",
    "LibraryModel",
    "OllamaDouble",
    "RequestRecord",
    "Responder",
    "default_responder",
    "human_bytes2",
    "parse_go_duration",
    "parse_keep_alive",
]
