"""The switch lease on both backends: one holder at a time, a clear answer for whoever finds it taken,
and a lease that dies with its holder (a killed process is taken over at once)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from model_manager.errors import SwitchInProgressError
from model_manager.liveness import process_token
from model_manager.store import Store
from processes import process_env

HOLDER = textwrap.dedent(
    """
    import sys, time
    from model_manager.store import Store
    store = Store(sys.argv[1])
    with store.lease("switch", ttl_s=600):
        print("held", flush=True)
        time.sleep(600)
    """
)


@contextmanager
def holder_process(location: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lease until it ends."""
    env = process_env(tmp_path / "holder-home", "http://127.0.0.1:9")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, location], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(30)


def wait_for(condition: object, timeout: float = 10.0) -> float:
    """Seconds until ``condition()`` holds; fails the test past ``timeout``."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_held_lease_is_refused_with_the_holder_named_and_the_wait_stated(
    store_location: str, tmp_path: Path
) -> None:
    store = Store(store_location)
    with holder_process(store_location, tmp_path) as holder:
        assert f"process {holder.pid} on {socket.gethostname()}" in (store.lease_holder("switch") or "")
        with pytest.raises(SwitchInProgressError) as refused, store.lease("switch", ttl_s=60, wait_s=0):
            pass
        assert refused.value.message.startswith(f"Another switch is in progress: process {holder.pid} on ")
        assert "waited" not in refused.value.message and refused.value.http_status == 409
        started = time.monotonic()
        with (
            pytest.raises(SwitchInProgressError, match=r"waited 0\.3 s$"),
            store.lease("switch", 60, wait_s=0.3),
        ):
            pass
        assert time.monotonic() - started >= 0.3  # it did wait that long, and then answered
    store.close()


def test_a_killed_holder_is_taken_over_at_once(store_location: str, tmp_path: Path) -> None:
    """kill -9 of the holder: SQLite sees its pid gone (the row stays, naming a dead process); PostgreSQL
    ends its session and the lock with it."""
    store = Store(store_location)
    with holder_process(store_location, tmp_path) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        gone = wait_for(lambda: store.lease_holder("switch") is None)
        with store.lease("switch", ttl_s=60, wait_s=0):
            assert f"process {os.getpid()} on " in (store.lease_holder("switch") or "")
    print(f"\n{store.backend}: lease free {gone * 1000:.1f} ms after kill -9 of its holder")
    assert store.lease_holder("switch") is None
    store.close()


def test_a_waiter_gets_the_lease_when_the_holder_ends(store_location: str, tmp_path: Path) -> None:
    store = Store(store_location)
    with holder_process(store_location, tmp_path) as holder:
        holder.send_signal(
            signal.SIGTERM
        )  # Python's default: the process ends, its finally blocks do not run
        with store.lease("switch", ttl_s=60, wait_s=30):
            assert holder.poll() is not None
    store.close()


def test_one_holder_at_a_time_within_a_process(store_location: str) -> None:
    first, second = Store(store_location), Store(store_location)
    with first.lease("switch", ttl_s=60, wait_s=0):
        with (
            pytest.raises(SwitchInProgressError, match=f"process {os.getpid()} on "),
            second.lease("switch", 60, wait_s=0),
        ):
            pass
        with second.lease("other", ttl_s=60, wait_s=0):  # another name, another lease
            pass
    with second.lease("switch", ttl_s=60, wait_s=0):
        pass
    first.close()
    second.close()


def test_closing_a_store_releases_its_leases(store_location: str) -> None:
    store, other = Store(store_location), Store(store_location)
    lease = store.lease("switch", ttl_s=60, wait_s=0)
    lease.__enter__()
    assert other.lease_holder("switch") is not None
    store.close()
    assert other.lease_holder("switch") is None
    with other.lease("switch", ttl_s=60, wait_s=0):
        pass
    other.close()


def _row(store: Store, **fields: object) -> None:
    value = {
        "id": "x",
        "owner": process_token(),
        "host": socket.gethostname(),
        "since": "2026-01-01T00:00:00",
    }
    store.set_state("lease:switch", json.dumps(value | {"expires": time.time() + 600} | fields))


def test_sqlite_rows_of_dead_holders_old_rows_and_other_hosts(tmp_path: Path) -> None:
    """SQLite only: what a lease row says decides. A dead pid (also in the rows written before liveness
    tokens) is taken over; a holder on another host, or in another pid namespace, is trusted until its
    time to live ends."""
    store = Store(tmp_path / "s.db")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_token(dead.pid)
    dead.wait()
    _row(store, owner=token)
    assert store.lease_holder("switch") is None
    with store.lease("switch", ttl_s=60, wait_s=0):
        pass
    store.set_state("lease:switch", f"{dead.pid}:140000:abcdef|{time.time() + 300}")  # the old form
    with store.lease("switch", ttl_s=60, wait_s=0):
        pass
    _row(store, owner="1:1", host="elsewhere.example")
    assert store.lease_holder("switch") == "process 1 on elsewhere.example since 2026-01-01T00:00:00Z"
    with pytest.raises(SwitchInProgressError), store.lease("switch", ttl_s=60, wait_s=0):
        pass
    _row(store, owner="1:1", host="elsewhere.example", expires=time.time() - 1)
    with store.lease("switch", ttl_s=60, wait_s=0):
        pass
    # A dead pid of another pid namespace (a container on this host) may be alive there: trusted too.
    _row(store, owner=token, ns="pid:[1]")
    with pytest.raises(SwitchInProgressError), store.lease("switch", ttl_s=60, wait_s=0):
        pass
    store.close()
