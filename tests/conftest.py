"""Shared fixtures: every test gets its own data dir and no inherited Ollama or GPU settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from model_manager import ModelManager
from pg_server import BINDIR_ENV, PostgresServer, find_postgres_bin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from fleet_helpers import Doubles
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
    "MODEL_MANAGER_DATABASE_URL",
    "MODEL_MANAGER_SWITCH_WAIT",
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
def fleet_doubles() -> Iterator[Doubles]:
    """Three Ollama doubles (``fleet_helpers.three_doubles``): this machine's, gpu2's and gpu3's."""
    from fleet_helpers import three_doubles

    with three_doubles() as found:
        yield found


@pytest.fixture
def fleet_manager(
    fleet_doubles: Doubles, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelManager]:
    """A manager of 8 GB beside the first double, with gpu2 (24 GB) and gpu3 (12 GB) added."""
    from fleet_helpers import fleet_of

    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "8")
    with fleet_of(fleet_doubles, isolated_env) as mm:
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


# --- PostgreSQL: a real server the tests start in a temporary directory (see pg_server.py) ----------

REQUIRE_ENV = "MODEL_MANAGER_REQUIRE_SERVICES"
BACKENDS = ("sqlite", "postgresql")


def missing_service(message: str) -> NoReturn:
    """Skip a test whose system program is not installed; fail it when MODEL_MANAGER_REQUIRE_SERVICES=1
    (CI sets it), so that a machine that lost the program cannot pass by skipping."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


def _postgres() -> PostgresServer:
    bindir = find_postgres_bin()
    if bindir is None:
        missing_service(
            "PostgreSQL binaries not found: apt-get install postgresql, "
            f"or set {BINDIR_ENV} to the directory holding initdb and postgres"
        )
    return PostgresServer(bindir=bindir)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real server for the whole run (about 0.5 s to initdb and start)."""
    with _postgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped afterwards."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        missing_service('psycopg not installed: pip install "model-manager[postgres]"')

    if not pg_server.running:  # an earlier test stopped or killed it
        pg_server.start()
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.url_for(name)
    if not pg_server.running:
        pg_server.start()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        # FORCE disconnects the sessions a test left open (processes it killed, stores it did not close).
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_private_server() -> Iterator[PostgresServer]:
    """A server of the test's own, for tests that kill or stop it."""
    with _postgres() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, isolated_env: Path) -> str:
    """Where this test's managers keep their store, once per backend: the SQLite file in
    MODEL_MANAGER_HOME, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(isolated_env / "model_manager.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def database_url(store_location: str) -> str | None:
    """``store_location`` as a manager's ``database_url``: None for SQLite (the file in its home)."""
    return store_location if store_location.startswith("postgresql://") else None


@pytest.fixture
def backend_env(database_url: str | None) -> dict[str, str]:
    """The variables that point a manager process at this test's store."""
    return {"MODEL_MANAGER_DATABASE_URL": database_url} if database_url else {}
