"""Fleets for the tests: Ollama doubles as real processes on their own loopback ports (so that a host can
be killed with a signal), three doubles in this process, and a manager with hosts added."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from model_manager import ModelManager
from model_manager.testing import OllamaDouble
from processes import SRC

GIB = 2**30
SMALL, SMALL_TAG = "llama3.2:1b-instruct", "llama3.2:1b-instruct-q8_0"
EIGHT_B, EIGHT_B_TAG = "llama3.1:8b-instruct", "llama3.1:8b-instruct-q4_K_M"
THIRTEEN_B = "llama3.1:13b-instruct"


Doubles = tuple[OllamaDouble, OllamaDouble, OllamaDouble]


@contextmanager
def three_doubles() -> Iterator[Doubles]:
    """This machine's Ollama (8 GB, the 1B model installed), gpu2 (24 GB, the 8B) and gpu3 (12 GB, both)."""
    with (
        OllamaDouble(vram_bytes=8 * GIB) as local,
        OllamaDouble(vram_bytes=24 * GIB) as gpu2,
        OllamaDouble(vram_bytes=12 * GIB) as gpu3,
    ):
        local.install(SMALL_TAG)
        gpu2.install(EIGHT_B_TAG)
        gpu3.install(SMALL_TAG)
        gpu3.install(EIGHT_B_TAG)
        yield local, gpu2, gpu3


@contextmanager
def fleet_of(doubles: Doubles, data_dir: Path) -> Iterator[ModelManager]:
    """A manager beside the first double, with the others added as gpu2 (24 GB) and gpu3 (12 GB)."""
    local, gpu2, gpu3 = doubles
    with ModelManager(host=local.url, data_dir=data_dir) as manager:
        manager.add_host("gpu2", gpu2.url, vram_gb=24)
        manager.add_host("gpu3", gpu3.url, vram_gb=12)
        yield manager


class DoubleProcess:
    """``python -m model_manager.testing`` as a process of its own: a host that can be killed."""

    def __init__(self, *args: str) -> None:
        env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "model_manager.testing", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("listening on http://"), line
        self.url = line.split()[-1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@contextmanager
def double_processes(*specs: tuple[str, ...]) -> Iterator[list[DoubleProcess]]:
    """One double process per spec (its command-line arguments), killed at the end."""
    with ExitStack() as stack:
        doubles = []
        for spec in specs:
            double = DoubleProcess(*spec)
            stack.callback(double.kill)
            doubles.append(double)
        yield doubles


def vram_args(gb: float, *install: str) -> tuple[str, ...]:
    """A double's arguments: a GPU memory budget of ``gb`` and models installed."""
    return ("--vram-bytes", str(int(gb * GIB)), *(("--install", *install) if install else ()))


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


def home(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir(parents=True, exist_ok=True)
    return path
