"""Shared fixtures: every test gets its own data dir and no inherited Ollama or GPU settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from model_manager import ModelManager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from model_manager.testing import OllamaDouble

API_BASE = "http://127.0.0.1:8000"
"""The base URL of in-process API clients: a loopback Host, as the guard wants."""

_INHERITED = (
    "OLLAMA_HOST",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_FLASH_ATTENTION",
    "MODEL_MANAGER_VRAM_GB",
    "MODEL_MANAGER_API_TOKEN",
    "MODEL_MANAGER_KEEP_ALIVE",
    "CUDA_VISIBLE_DEVICES",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MODEL_MANAGER_HOME", str(home))
    for key in _INHERITED:
        monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def ollama() -> Iterator[OllamaDouble]:
    """A running Ollama double with an empty model store and the catalog as its registry."""
    from model_manager.testing import OllamaDouble

    with OllamaDouble() as double:
        yield double


@pytest.fixture
def manager(ollama: OllamaDouble, isolated_env: Path) -> Iterator[ModelManager]:
    with ModelManager(host=ollama.url, data_dir=isolated_env) as mm:
        yield mm


@pytest.fixture
def down_url() -> str:
    """An address where nothing listens (a port that was just freed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def client(manager: ModelManager) -> Iterator[TestClient]:
    """The REST API over ``manager``, in process."""
    from starlette.testclient import TestClient

    from model_manager.api import create_app

    with TestClient(create_app(manager), base_url=API_BASE) as c:
        yield c
