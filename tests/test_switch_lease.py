"""An interrupted switch never blocks the next one, and a switch in progress never makes anyone wait
long: real CLI and server processes, real signals, the Ollama double loading slowly (``load_delay_s``).

* SIGTERM or SIGHUP of a CLI ``use`` (or of the server) mid-switch releases the lease on the way out;
* kill -9 leaves a lease whose holder is gone, and the next switch takes it over at once;
* a live switch: REST answers 409 at once, the CLI after its bounded wait, both naming the holder;
* 45 REST switches at once hold no worker thread, so health and statistics answer during the switch.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from model_manager.store import Store
from model_manager.testing import OllamaDouble
from processes import process_env, server_process

A, A_TAG = "llama3.2:1b-instruct", "llama3.2:1b-instruct-q8_0"
B, B_TAG = "llama3.2:3b-instruct", "llama3.2:3b-instruct-q4_K_M"
SLOW_LOAD_S = 60.0  # longer than any test waits: the interrupted switch never completes by itself


@pytest.fixture
def two_models(ollama: OllamaDouble) -> OllamaDouble:
    ollama.install(A_TAG)
    ollama.install(B_TAG)
    return ollama


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> float:
    """Seconds until ``condition()`` is true; fails the test past ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(0.01)
    return time.monotonic() - started


def loading(ollama: OllamaDouble, tag: str) -> bool:
    """Whether the double has received the load of ``tag`` (it then waits ``load_delay_s``)."""
    return any(
        r.body and r.body.get("model") == tag and "keep_alive" not in r.body
        for r in ollama.requests_to("/api/generate")
    )


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "model_manager", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@contextmanager
def switching(env: dict[str, str], ollama: OllamaDouble, tag: str) -> Iterator[subprocess.Popen[str]]:
    """A CLI ``use`` of ``tag`` caught mid-switch: it holds the lease and waits on the slow load."""
    ollama.load_delay_s = SLOW_LOAD_S
    command = [sys.executable, "-m", "model_manager", "use", tag]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: loading(ollama, tag))
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


@pytest.fixture
def env(two_models: OllamaDouble, isolated_env: Path, backend_env: dict[str, str]) -> dict[str, str]:
    return process_env(isolated_env, two_models.url, **backend_env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_a_cli_use_mid_switch_releases_the_lease(
    two_models: OllamaDouble, env: dict[str, str], store_location: str, sig: signal.Signals
) -> None:
    store = Store(store_location)
    with switching(env, two_models, A_TAG) as use:
        assert f"process {use.pid} on " in (store.lease_holder("switch") or "")
        use.send_signal(sig)
        assert use.wait(30) == 128 + sig  # ended through its handler, as the shell reports a signal
    assert store.lease_holder("switch") is None
    if store.backend == "sqlite":
        assert store.get_state("lease:switch") is None  # released on the way out, not merely orphaned
    two_models.load_delay_s = 0
    # Nothing to wait for: a switch that may not wait at all succeeds.
    after = cli(env | {"MODEL_MANAGER_SWITCH_WAIT": "0"}, "use", B)
    assert after.returncode == 0 and after.stdout.strip() == f"Switched to {B}", after.stderr
    store.close()


def test_kill_9_of_a_cli_use_mid_switch_is_taken_over_at_once(
    two_models: OllamaDouble, env: dict[str, str], store_location: str
) -> None:
    store = Store(store_location)
    with switching(env, two_models, A_TAG) as use:
        use.kill()
        use.wait(30)
    if store.backend == "sqlite":
        assert store.get_state("lease:switch") is not None  # the row stays, naming a dead process
    freed = wait_until(lambda: store.lease_holder("switch") is None, timeout=10)
    two_models.load_delay_s = 0
    started = time.monotonic()
    after = cli(env | {"MODEL_MANAGER_SWITCH_WAIT": "0"}, "use", B)
    took = time.monotonic() - started
    assert after.returncode == 0 and after.stdout.strip() == f"Switched to {B}", after.stderr
    assert B_TAG in two_models.loaded()
    print(
        f"\n{store.backend}: lease free {freed * 1000:.0f} ms after kill -9; "
        f"the next `use` (no wait allowed) took {took:.2f} s, process start included"
    )
    store.close()


def test_a_live_switch_gets_rest_409_at_once_and_the_cli_its_bounded_wait(
    two_models: OllamaDouble, env: dict[str, str], tmp_path: Path
) -> None:
    with switching(env, two_models, A_TAG) as use, server_process(env, tmp_path / "log") as (_, url):
        started = time.monotonic()
        with httpx.Client(base_url=url, timeout=30) as http:
            refused = http.post("/api/model/switch", json={"model": B})
            not_deleted = http.request("DELETE", "/api/model/delete", json={"model": B})
        rest_s = time.monotonic() - started
        for answer in (refused, not_deleted):
            assert answer.status_code == 409
            body = answer.json()
            assert body["error"] == "switch_in_progress"
            assert body["message"].startswith(f"Another switch is in progress: process {use.pid} on ")
            assert body["solution"] == "Retry when it has finished"
        started = time.monotonic()
        waited = cli(env | {"MODEL_MANAGER_SWITCH_WAIT": "1.5"}, "use", B)
        cli_s = time.monotonic() - started
        assert waited.returncode == 1
        first = waited.stderr.splitlines()[0]
        assert first.startswith(f"Another switch is in progress: process {use.pid} on ")
        assert first.endswith("; waited 1.5 s")
        assert use.poll() is None and two_models.loaded() != [B_TAG]  # all of it during A's switch
    print(
        f"\nREST switch + delete answered 409 in {rest_s * 1000:.0f} ms; CLI use gave up after {cli_s:.2f} s"
    )


def test_45_rest_switches_at_once_never_starve_health_and_statistics(
    two_models: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    """One switch runs (a 4 s load); 44 more arrive with it. None of them waits in a worker thread, so
    /api/health and /api/model/statistics answer while the switch is still loading."""
    two_models.load_delay_s = 4.0
    env = process_env(isolated_env, two_models.url)
    answers: list[tuple[int, str | None, float]] = []
    reads: list[tuple[int, float]] = []
    gate = threading.Barrier(45)

    def switch(url: str) -> None:
        gate.wait()
        response = httpx.post(f"{url}/api/model/switch", json={"model": B}, timeout=60)
        answers.append((response.status_code, response.json().get("error"), time.monotonic()))

    with server_process(env, tmp_path / "log", "--no-access-log") as (_, url):
        httpx.get(f"{url}/api/health", timeout=30)  # warm: the first request builds the app's parts
        threads = [threading.Thread(target=switch, args=(url,)) for _ in range(45)]
        for thread in threads:
            thread.start()
        wait_until(lambda: loading(two_models, B_TAG))
        with httpx.Client(base_url=url, timeout=60) as http:
            for path in ("/api/health", "/api/model/statistics") * 10:
                started = time.monotonic()
                status = http.get(path).status_code
                reads.append((status, time.monotonic() - started))
        reads_done = time.monotonic()
        for thread in threads:
            thread.join(60)
    statuses = sorted((status, error) for status, error, _ in answers)
    assert statuses == [(200, None)] + [(409, "switch_in_progress")] * 44
    switched_at = next(at for status, _, at in answers if status == 200)
    assert all(at < switched_at for status, _, at in answers if status == 409)
    assert [status for status, _ in reads] == [200] * 20
    assert reads_done < switched_at  # every read answered while the one switch was still loading
    latencies = [s * 1000 for _, s in reads]
    print(
        f"\n44 × 409 before the switch ended; 20 reads during it: median {statistics.median(latencies):.0f} ms, "
        f"max {max(latencies):.0f} ms; the switch ended {switched_at - reads_done:.2f} s after the last read"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_the_server_mid_switch_releases_the_lease(
    two_models: OllamaDouble, env: dict[str, str], store_location: str, tmp_path: Path, sig: signal.Signals
) -> None:
    store = Store(store_location)
    two_models.load_delay_s = SLOW_LOAD_S
    log = tmp_path / "log"
    with server_process(env, log) as (server, url):
        request = threading.Thread(
            target=lambda: httpx.post(f"{url}/api/model/switch", json={"model": A}, timeout=90), daemon=True
        )
        request.start()
        wait_until(lambda: loading(two_models, A_TAG))
        assert f"process {server.pid} on " in (store.lease_holder("switch") or "")
        server.send_signal(sig)
        released = wait_until(lambda: store.lease_holder("switch") is None)
        if store.backend == "sqlite":
            assert store.get_state("lease:switch") is None  # released by the server, not orphaned
        assert "Application shutdown complete" in log.read_text()
    two_models.load_delay_s = 0
    after = cli(env | {"MODEL_MANAGER_SWITCH_WAIT": "0"}, "use", B)
    assert after.returncode == 0, after.stderr
    print(f"\n{store.backend}, {sig.name}: lease released {released:.2f} s after the signal")
    store.close()
