"""What only the PostgreSQL store has to promise, on a real server the tests start and kill: a database
that goes away gives a clear StoreError and loses no acknowledged event, the store works again once the
server is back, and the URL's password shows up nowhere (output, logs, errors, /metrics)."""

from __future__ import annotations

import logging
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from model_manager import ManagerCore
from model_manager.config import load_settings
from model_manager.errors import InvalidSettingError, StoreError
from model_manager.store import Store
from model_manager.testing import OllamaDouble
from pg_server import PostgresServer
from processes import process_env, server_process

RECORDER = textwrap.dedent(
    """
    import select, sys
    from model_manager import ManagerCore
    from model_manager.errors import StoreError
    manager = ManagerCore(host="http://127.0.0.1:9")
    print("ready", flush=True)
    i = 0
    while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes our stdin
        i += 1
        try:
            manager.record_usage("kept:latest", float(i))
        except StoreError as exc:
            print("error", exc.message, flush=True)
            continue
        print("ok", i, flush=True)
    """
)


class Lines:
    """A process's stdout, read line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.ok, self.errors = proc, [], []  # type: ignore[var-annotated]

    def until(self, done: object, timeout: float = 60.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while not done():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"{len(self.ok)} ok, {len(self.errors)} errors"
            if not select.select([self.proc.stdout], [], [], 0.5)[0]:
                continue
            kind, _, rest = self.proc.stdout.readline().rstrip("\n").partition(" ")
            if kind == "ok":
                self.ok.append(float(rest))
            elif kind == "error":
                self.errors.append(rest)


def record_through_an_outage(pg: PostgresServer, home: Path, recorder: str, calls: int) -> Lines:
    """Run ``recorder`` (a program that prints "ready", then "ok N" or "error MESSAGE" per call until its
    stdin closes) on ``pg``; kill the server (SIGKILL, every backend) after ``calls`` acknowledged calls,
    start it again once three calls have failed, and stop the program after ``calls`` more. Returns its
    lines, once it has exited."""
    env = process_env(home, "http://127.0.0.1:9", MODEL_MANAGER_DATABASE_URL=pg.url)
    proc = subprocess.Popen(
        [sys.executable, "-c", recorder], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    out = Lines(proc)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        out.until(lambda: len(out.ok) >= calls)
        pg.kill()
        out.until(lambda: len(out.errors) >= 3)
        down_ok = len(out.ok)
        pg.start()
        out.until(lambda: len(out.ok) >= down_ok + calls)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)
    return out


def test_a_database_that_goes_away_loses_no_acknowledged_event(
    pg_private_server: PostgresServer, tmp_path: Path
) -> None:
    """A process records usage in a loop; the server is killed (SIGKILL, every backend) and started
    again under it. Every call that returned is in the store; every call that failed said why; the
    same process records again once the server is back, without being restarted."""
    pg = pg_private_server
    out = record_through_an_outage(pg, tmp_path / "home", RECORDER, 300)
    assert out.proc.returncode == 0
    assert all(e.startswith(f"Store error: {Store(pg.url).path}: ") for e in out.errors), out.errors[:3]
    assert not [e for e in out.errors if pg.password in e]
    store = Store(pg.url)
    stored = [seconds for _, seconds, _ in store.usage_events("kept:latest")]
    assert set(out.ok) <= set(stored)  # nothing acknowledged is lost
    assert len(stored) == len(set(stored))  # nor written twice
    stats = store.get_stats("kept:latest")
    assert stats is not None and stats.usage_count == len(stored)
    print(
        f"\n{len(out.ok)} acknowledged, {len(stored)} stored, {len(out.errors)} refused while the server "
        f"was down (first: {out.errors[0]})"
    )
    store.close()


def test_a_store_in_this_process_says_the_database_is_gone_and_carries_on_when_it_is_back(
    pg_private_server: PostgresServer,
) -> None:
    store = Store(pg_private_server.url)
    store.record_usage("m:1b", 1.0, True)
    pg_private_server.kill()
    for call in (lambda: store.record_usage("m:1b", 2.0, True), store.all_stats, store.change_marker):
        with pytest.raises(StoreError) as failed:
            call()
        assert failed.value.message.startswith(f"Store error: {store.path}: ")
        assert pg_private_server.password not in failed.value.message
    pg_private_server.start()
    store.record_usage("m:1b", 3.0, True)  # a new connection, without being asked
    # A restart while the store is idle costs not even one failed write: the closed connection is
    # noticed before it is used.
    pg_private_server.stop()
    pg_private_server.start()
    store.record_usage("m:1b", 4.0, True)
    pg_private_server.kill()
    pg_private_server.start()
    store.record_usage("m:1b", 5.0, True)
    assert [s for _, s, _ in store.usage_events("m:1b")] == [1.0, 3.0, 4.0, 5.0]
    store.close()


def test_the_integrity_check_finds_a_disabled_aggregate_trigger(pg_url: str) -> None:
    store = Store(pg_url)
    assert store.integrity_check() == "ok"
    with store.atomic() as tx:
        tx.execute("ALTER TABLE usage_events DISABLE TRIGGER usage_events_aggregate")
    assert store.integrity_check() == "the usage aggregate trigger is missing or disabled"
    store.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_password_never_shows(
    pg_private_server: PostgresServer,
    ollama: OllamaDouble,
    isolated_env: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pg, secret = pg_private_server, pg_private_server.password
    masked = Store(pg.url).path
    assert secret not in masked and masked.startswith("postgresql://mm:***@127.0.0.1:")
    wrong = pg.url.replace(secret, "pw-wrong-0123")
    down = f"postgresql://mm:{secret}@127.0.0.1:{_closed_port()}/mm"
    seen: list[str] = []

    def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = process_env(isolated_env, ollama.url, MODEL_MANAGER_DATABASE_URL=url)
        done = subprocess.run(
            [sys.executable, "-m", "model_manager", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        seen.extend((done.stdout, done.stderr))
        return done

    assert cli(pg.url, "-vv", "stats", "--all").returncode == 0
    assert cli(pg.url, "--json", "stats").returncode == 0
    for url, hidden in ((down, secret), (wrong, "pw-wrong-0123")):
        failed = cli(url, "-vv", "stats")
        assert failed.returncode == 1 and failed.stderr.startswith(
            "Store error: cannot open postgresql://mm:***@"
        )
        assert hidden not in failed.stderr
    bad_scheme = cli(f"mysql://mm:{secret}@127.0.0.1/mm", "stats")
    assert bad_scheme.returncode == 2 and "mysql://mm:***@127.0.0.1/mm" in bad_scheme.stderr

    # The REST server: its answers, /metrics and its log, with the database up and then gone.
    env = process_env(isolated_env, ollama.url, MODEL_MANAGER_DATABASE_URL=pg.url)
    log = tmp_path / "server.log"
    with server_process(env, log) as (_, url), httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/api/model/usage", json={"model": "m:1b", "inference_time": 1.0}).status_code == 200
        up = [http.get(p) for p in ("/api/health", "/metrics", "/api/model/statistics")]
        assert [r.status_code for r in up] == [200, 200, 200] and masked in up[0].text
        pg.kill()
        gone = [http.get(p) for p in ("/api/health", "/metrics", "/api/model/statistics")]
        gone.append(http.post("/api/model/usage", json={"model": "m:1b", "inference_time": 1.0}))
        assert [r.status_code for r in gone][1:] == [500, 500, 500]
        assert gone[0].json()["store"]["ok"] is False
        seen.extend(r.text for r in up + gone)
        pg.start()
    seen.append(log.read_text())

    # The Python API: errors, settings and the library's log.
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(StoreError) as refused:
            ManagerCore(host=ollama.url, data_dir=isolated_env, database_url=down)
        seen.append(str(refused.value))
        # libpq quotes a badly encoded password back in its message.
        with pytest.raises(StoreError) as garbled:
            Store(f"postgresql://mm:%zz{secret}@127.0.0.1:{_closed_port()}/mm")
        assert "invalid percent-encoded token" in str(garbled.value)
        seen.append(str(garbled.value))
        with pytest.raises(InvalidSettingError) as invalid:
            load_settings({"MODEL_MANAGER_DATABASE_URL": f"http://mm:{secret}@h/db"})
        seen.append(str(invalid.value))
        with ManagerCore(host=ollama.url, data_dir=isolated_env, database_url=pg.url) as manager:
            seen.extend((repr(manager.settings), manager.health().to_dict().__repr__()))
    seen.append(caplog.text)
    assert [text for text in seen if secret in text] == []
    assert sum(masked in text for text in seen) >= 2  # the masked URL is what names the store


@pytest.mark.parametrize("required", [False, True], ids=["skips", "fails-when-required"])
def test_a_machine_without_postgresql_skips_its_tests_unless_they_are_required(
    monkeypatch: pytest.MonkeyPatch, required: bool
) -> None:
    from conftest import REQUIRE_ENV, _postgres

    monkeypatch.setenv("MODEL_MANAGER_PG_BINDIR", "/nonexistent")  # as on a machine without the package
    if required:
        monkeypatch.setenv(REQUIRE_ENV, "1")
    else:
        monkeypatch.delenv(REQUIRE_ENV, raising=False)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="PostgreSQL binaries not found: apt-get install postgresql"):
        _postgres()
