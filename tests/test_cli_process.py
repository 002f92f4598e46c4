"""The CLI as users run it: ``python -m model_manager`` in a real subprocess, talking to the Ollama
double over real HTTP, with pipes, a pseudo-terminal and a real SIGINT."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_manager.testing import OllamaDouble

SRC = Path(__file__).resolve().parents[1] / "src"
PULLED = "llama3.2:1b-instruct"
PULLED_TAG = "llama3.2:1b-instruct-q8_0"


@pytest.fixture
def env(ollama: OllamaDouble, isolated_env: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    pythonpath = os.pathsep.join(p for p in (str(SRC), environment.get("PYTHONPATH", "")) if p)
    return environment | {
        "MODEL_MANAGER_HOME": str(isolated_env),
        "OLLAMA_HOST": ollama.url,
        "PYTHONPATH": pythonpath,
    }


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_manager", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_list_in_a_subprocess(env: dict[str, str], ollama: OllamaDouble) -> None:
    ollama.install("llama3.1:8b-instruct-q4_K_M")
    result = _cli(env, "list")
    assert result.returncode == 0, result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if "llama3.1:8b-instruct" in line)
    assert row[:6] == ["llama3.1:8b-instruct", "8B", "Balanced", "6GB", "4.7GB", "yes"]
    doc = json.loads(_cli(env, "--json", "list").stdout)
    assert {m["name"] for m in doc["models"] if m["installed"]} == {"llama3.1:8b-instruct"}


def test_expected_failures_never_show_a_traceback(env: dict[str, str], ollama: OllamaDouble) -> None:
    missing = _cli(env, "info", "no-such-model")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Model not found: no-such-model\nSolution: Check catalog")
    down = _cli(env | {"OLLAMA_HOST": "http://127.0.0.1:9"}, "ps")
    assert down.returncode == 1 and down.stderr.startswith("Ollama unreachable: ")
    usage = _cli(env, "recommend", "lots")
    assert usage.returncode == 2 and "usage:" in usage.stderr
    for result in (missing, down, usage):
        assert "Traceback" not in result.stderr


def test_verbose_shows_the_library_log(env: dict[str, str]) -> None:
    down = env | {"OLLAMA_HOST": "http://127.0.0.1:9"}
    assert "installed state from the store" not in _cli(down, "stats").stderr
    assert "installed state from the store" in _cli(down, "-vv", "stats").stderr


def test_rm_without_a_terminal_refuses(env: dict[str, str], ollama: OllamaDouble) -> None:
    ollama.install(PULLED_TAG)
    result = _cli(env, "rm", PULLED)
    assert result.returncode == 2
    assert "stdin is not a terminal" in result.stderr and PULLED_TAG in ollama.installed()
    assert _cli(env, "delete", "-y", PULLED).returncode == 0
    assert ollama.installed() == []


def test_model_manager_help_is_the_entry_point(env: dict[str, str]) -> None:
    result = _cli(env, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: model-manager")


def test_serve_answers_until_ctrl_c(env: dict[str, str], ollama: OllamaDouble) -> None:
    ollama.install(PULLED_TAG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_manager", "serve", "--port", "0", "--no-access-log"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()
        assert first.startswith("model-manager API listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        with urllib.request.urlopen(f"{url}/api/model/list?installed_only=true", timeout=30) as response:
            doc = json.load(response)
        assert [m["name"] for m in doc["models"]] == [PULLED]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err


def _read_pty(master: int, until: float) -> Iterator[bytes]:
    while time.monotonic() < until:
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its side
            return
        if not chunk:
            return
        yield chunk


def test_pull_draws_a_progress_bar_on_a_terminal(env: dict[str, str], ollama: OllamaDouble) -> None:
    ollama.pull_chunks = 20
    ollama.pull_delay_s = 0.05
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_manager", "pull", PULLED],
        env=env | {"TERM": "xterm-256color", "COLUMNS": "120"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    try:
        screen = b"".join(_read_pty(master, time.monotonic() + 60)).decode("utf-8", "replace")
        assert proc.wait(timeout=30) == 0, screen
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert "━" in screen  # rich's bar
    assert "\x1b[" in screen  # redrawn in place with terminal escapes, not printed line by line
    assert "/1.3 GB" in screen and "/s" in screen  # bytes, then rate
    assert f"Downloaded {PULLED} ({PULLED_TAG})" in screen
    assert PULLED_TAG in ollama.installed()


def test_ctrl_c_stops_a_pull_that_resumes(env: dict[str, str], ollama: OllamaDouble) -> None:
    ollama.pull_chunks = 200
    ollama.pull_delay_s = 0.05
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_manager", "pull", PULLED],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("pulling ") and "(10%)" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert f"Interrupted: pull of {PULLED}" in err
    assert f"Run `model-manager pull {PULLED}` again to resume" in err
    assert "Traceback" not in err and out == ""
    kept = ollama.partial_bytes(PULLED_TAG)
    assert kept > 0 and PULLED_TAG not in ollama.installed()

    ollama.pull_delay_s = 0.0
    again = _cli(env, "pull", PULLED)
    assert again.returncode == 0, again.stderr
    blob = [line for line in again.stderr.splitlines() if line.startswith("pulling ") and "/1.3GB" in line]
    assert ": 0B/" not in blob[0]  # it went on from the kept bytes
    assert PULLED_TAG in ollama.installed()
