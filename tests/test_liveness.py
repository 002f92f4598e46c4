"""Owner tokens: a live process, a dead one, and a pid reused by another process."""

from __future__ import annotations

import subprocess
import sys
import time

from model_manager.liveness import is_alive, process_token


def test_this_process_is_alive() -> None:
    assert is_alive(process_token())


def test_a_process_that_ended_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_token(child.pid)
    child.wait()
    assert not is_alive(token)


def test_a_reused_pid_is_not_the_same_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid, start = process_token(child.pid).split(":")
        assert is_alive(f"{pid}:{start}")
        if start:  # where start times are known, another start time is another process
            assert not is_alive(f"{pid}:{int(start) - 1}")
    finally:
        child.kill()
        child.wait()


def test_an_exited_process_not_yet_collected_is_dead() -> None:
    """A zombie still has its pid and start time until its parent waits for it; it runs no more."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_token(child.pid)
    deadline = time.monotonic() + 30
    while _state(child.pid) != "Z":  # exited, not yet collected: this test is its parent
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert not is_alive(token)
    finally:
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rpartition(")")[2].split()[0]


def test_malformed_tokens_are_dead_owners() -> None:
    assert not is_alive("") and not is_alive("abc:1")
