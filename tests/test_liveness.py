"""Owner tokens: a live process, a dead one, and a pid reused by another process."""

from __future__ import annotations

import subprocess
import sys

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


def test_malformed_tokens_are_dead_owners() -> None:
    assert not is_alive("") and not is_alive("abc:1")
